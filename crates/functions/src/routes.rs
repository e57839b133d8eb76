//! The HTTP API's routes: the one table the Lambda functions, the local stack's router, the
//! template test (`tests/template.rs`) and `events/` are all checked against. A new route
//! is a row here, a handler in `api.rs`, a function in `template.yaml` and an event in
//! `events/`.

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the template sets the route's authorizer to `NONE`.
    Public,
    /// Callers with a valid Cognito token: the HTTP API's default JWT authorizer runs first
    /// and hands the function the claims.
    Jwt,
}

/// One route of the HTTP API, served by the Lambda function of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ListMessageGroups,
    ListMessages,
    CreateMessage,
    GetUserShort,
    CreateMessageGroup,
    ListMessageGroupMembers,
    AddMessageGroupMembers,
    LeaveMessageGroup,
    MarkMessageGroupRead,
    BlockUser,
    UnblockUser,
    ListBlocks,
    AddReaction,
    RemoveReaction,
    UpdateMessage,
    DeleteMessage,
}

impl Route {
    pub const ALL: [Route; 16] = [
        Self::ListMessageGroups,
        Self::ListMessages,
        Self::CreateMessage,
        Self::GetUserShort,
        Self::CreateMessageGroup,
        Self::ListMessageGroupMembers,
        Self::AddMessageGroupMembers,
        Self::LeaveMessageGroup,
        Self::MarkMessageGroupRead,
        Self::BlockUser,
        Self::UnblockUser,
        Self::ListBlocks,
        Self::AddReaction,
        Self::RemoveReaction,
        Self::UpdateMessage,
        Self::DeleteMessage,
    ];

    /// The table: route key, function, access.
    const fn row(self) -> (&'static str, &'static str, Access) {
        use Access::{Jwt, Public};
        match self {
            Self::ListMessageGroups => ("GET /api/message_groups", "list-message-groups", Jwt),
            Self::ListMessages => (
                "GET /api/messages/{message_group_uuid}",
                "list-messages",
                Jwt,
            ),
            Self::CreateMessage => ("POST /api/messages", "create-message", Jwt),
            // A path variable fills a whole segment in API Gateway: the frontend's
            // `/api/users/@handle/short` arrives with the `@` in `handle`.
            Self::GetUserShort => ("GET /api/users/{handle}/short", "get-user-short", Public),
            Self::CreateMessageGroup => ("POST /api/message_groups", "create-message-group", Jwt),
            Self::ListMessageGroupMembers => (
                "GET /api/message_groups/{message_group_uuid}/members",
                "list-message-group-members",
                Jwt,
            ),
            Self::AddMessageGroupMembers => (
                "POST /api/message_groups/{message_group_uuid}/members",
                "add-message-group-members",
                Jwt,
            ),
            Self::LeaveMessageGroup => (
                "POST /api/message_groups/{message_group_uuid}/leave",
                "leave-message-group",
                Jwt,
            ),
            Self::MarkMessageGroupRead => (
                "POST /api/message_groups/{message_group_uuid}/read",
                "mark-message-group-read",
                Jwt,
            ),
            // `handle` arrives with its `@`, as in `GetUserShort`.
            Self::BlockUser => ("POST /api/users/{handle}/block", "block-user", Jwt),
            Self::UnblockUser => ("DELETE /api/users/{handle}/block", "unblock-user", Jwt),
            Self::ListBlocks => ("GET /api/blocks", "list-blocks", Jwt),
            // `emoji` arrives decoded from its percent-encoded UTF-8, as API Gateway decodes
            // every path parameter (see `messaging::reactions`).
            Self::AddReaction => (
                "PUT /api/messages/{message_group_uuid}/{message_uuid}/reactions/{emoji}",
                "add-reaction",
                Jwt,
            ),
            Self::RemoveReaction => (
                "DELETE /api/messages/{message_group_uuid}/{message_uuid}/reactions/{emoji}",
                "remove-reaction",
                Jwt,
            ),
            Self::UpdateMessage => (
                "PATCH /api/messages/{message_group_uuid}/{message_uuid}",
                "update-message",
                Jwt,
            ),
            Self::DeleteMessage => (
                "DELETE /api/messages/{message_group_uuid}/{message_uuid}",
                "delete-message",
                Jwt,
            ),
        }
    }

    /// The route key, as in `template.yaml` and in the event's `routeKey`: `METHOD /path`.
    pub const fn key(self) -> &'static str {
        self.row().0
    }

    /// The HTTP method of the route key.
    pub fn method(self) -> &'static str {
        self.key_parts().0
    }

    /// The path of the route key, path variables in braces (`{message_group_uuid}`).
    pub fn path(self) -> &'static str {
        self.key_parts().1
    }

    /// The name of the Lambda function that serves it, [`crate::Function::Api`] of the
    /// route: its `Handler` in `template.yaml`.
    pub const fn function(self) -> &'static str {
        self.row().1
    }

    pub const fn access(self) -> Access {
        self.row().2
    }

    /// Whether the JWT authorizer guards it.
    pub fn protected(self) -> bool {
        self.access() == Access::Jwt
    }

    fn key_parts(self) -> (&'static str, &'static str) {
        // Every key has a space: the unit tests below check each one.
        self.key().split_once(' ').unwrap_or(("", self.key()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_key_is_a_method_and_a_path() {
        for route in Route::ALL {
            assert!(
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&route.method()),
                "{}",
                route.key()
            );
            assert!(route.path().starts_with("/api/"), "{}", route.key());
            assert_eq!(format!("{} {}", route.method(), route.path()), route.key());
        }
    }

    #[test]
    fn keys_and_functions_are_unique() {
        let keys: BTreeSet<_> = Route::ALL.iter().map(|route| route.key()).collect();
        let functions: BTreeSet<_> = Route::ALL.iter().map(|route| route.function()).collect();
        assert_eq!(keys.len(), Route::ALL.len());
        assert_eq!(functions.len(), Route::ALL.len());
    }
}
