//! The HTTP API's routes, as plain async functions of the request. Each Lambda binary
//! serves one of them; the local stack serves all of them through the same functions.

mod json;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::model::MAX_GROUP_MEMBERS;
use messaging::page::{PageError, PageRequest};
use messaging::store::{MarkedRead, ReadUpTo};
use messaging::validate::{
    GroupName, Handle, MessageText, ValidationError, group_handles, parse_group_uuid,
};
use messaging::{Store, StoreError, Timestamp, User};

use self::json::{AddMembersBody, CreateGroupBody, CreateMessageBody};
pub use self::json::{CreatedMessage, GroupMember, InboxItem, ListItem, UserShort};
use crate::directory::Directory;
use crate::http::{
    ApiError, HandlerError, caller_sub, json_body, json_response, page_response, path_parameter,
    query_parameter, respond,
};

/// Others a group can have besides the caller.
const MAX_OTHERS: usize = MAX_GROUP_MEMBERS - 1;

/// The API's dependencies, built once per execution environment.
#[derive(Debug, Clone)]
pub struct Api {
    directory: Directory,
}

impl Api {
    pub fn new(directory: Directory) -> Self {
        Self { directory }
    }

    pub fn store(&self) -> &Store {
        self.directory.store()
    }

    /// `GET /api/message_groups`: the caller's inbox, newest first.
    #[tracing::instrument(skip_all, fields(route = "list-message-groups"))]
    pub async fn list_message_groups(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.list_message_groups_inner(&request).await)
    }

    async fn list_message_groups_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        // Who asks comes first, as the authorizer would; then the input; then the I/O.
        let sub = caller_sub(request)?;
        let page = page_request(request)?;
        let caller = self.registered(&sub).await?;
        let inbox = self.store().list_inbox(caller.uuid, &page).await?;
        let items: Vec<InboxItem> = inbox.items.into_iter().map(InboxItem::from).collect();
        Ok(page_response(&items, inbox.next_cursor.as_deref()))
    }

    /// `GET /api/messages/{message_group_uuid}`: a page of a conversation the caller
    /// belongs to, oldest first within the page, newest page first. The newest page (no
    /// cursor) marks the conversation read up to its newest message.
    #[tracing::instrument(skip_all, fields(route = "list-messages"))]
    pub async fn list_messages(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.list_messages_inner(&request).await)
    }

    async fn list_messages_inner(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = parse_group_uuid(path_parameter(request, "message_group_uuid").unwrap_or(""))?;
        let page = page_request(request)?;
        let caller = self.registered(&sub).await?;
        let messages = self
            .store()
            .read_messages(caller.uuid, group, &page)
            .await?;
        let items: Vec<ListItem> = messages.items.into_iter().map(ListItem::from).collect();
        Ok(page_response(&items, messages.next_cursor.as_deref()))
    }

    /// `POST /api/messages`.
    #[tracing::instrument(skip_all, fields(route = "create-message"))]
    pub async fn create_message(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.create_message_inner(&request).await)
    }

    async fn create_message_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        // Who asks comes first: an anonymous request learns nothing about its body.
        let sub = caller_sub(request)?;
        let body: CreateMessageBody = json_body(request)?;
        let text = MessageText::parse(body.message.unwrap_or_default());
        let target = match (&body.message_group_uuid, &body.handle) {
            (Some(group), _) => parse_group_uuid(group).map(Target::Conversation),
            (None, Some(handle)) => Handle::parse(handle).map(Target::User),
            (None, None) => Err(ValidationError::HandleBlank),
        };
        let (text, target) = match (text, target) {
            (Ok(text), Ok(target)) => (text, target),
            (text, target) => {
                let codes = [text.err(), target.err()]
                    .into_iter()
                    .flatten()
                    .map(ValidationError::code);
                return Err(ApiError::Validation(codes.collect()).into());
            }
        };
        let sender = self.registered(&sub).await?;
        let now = Timestamp::now();
        let message = match target {
            Target::Conversation(group) => {
                self.store()
                    .append_message(&sender, group, text, now)
                    .await?
            }
            Target::User(handle) => {
                let recipient = self
                    .directory
                    .by_handle(&handle)
                    .await?
                    .ok_or(ApiError::NotFound("user_reciever_not_found"))?;
                self.store()
                    .send_to_user(&sender, &recipient, text, now)
                    .await?
            }
        };
        Ok(json_response(
            StatusCode::OK,
            &CreatedMessage::from(message),
        ))
    }

    /// `POST /api/message_groups`: a named conversation of the caller and the listed users,
    /// with its first message; answers like `POST /api/messages`.
    #[tracing::instrument(skip_all, fields(route = "create-message-group"))]
    pub async fn create_message_group(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.create_message_group_inner(&request).await)
    }

    async fn create_message_group_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let body: CreateGroupBody = json_body(request)?;
        let name = GroupName::parse(body.name.as_deref().unwrap_or(""));
        let handles = group_handles(body.handles.as_deref().unwrap_or(&[]), None, MAX_OTHERS);
        let text = MessageText::parse(body.message.unwrap_or_default());
        let (name, handles, text) = match (name, handles, text) {
            (Ok(name), Ok(handles), Ok(text)) => (name, handles, text),
            (name, handles, text) => {
                let codes = [name.err(), handles.err(), text.err()]
                    .into_iter()
                    .flatten()
                    .map(ValidationError::code);
                return Err(ApiError::Validation(codes.collect()).into());
            }
        };
        let creator = self.registered(&sub).await?;
        let others = self.users_to_add(&creator, &handles).await?;
        let message = self
            .store()
            .create_group(&creator, &name, &others, text, Timestamp::now())
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &CreatedMessage::from(message),
        ))
    }

    /// `GET /api/message_groups/{message_group_uuid}/members`: members only.
    #[tracing::instrument(skip_all, fields(route = "list-message-group-members"))]
    pub async fn list_message_group_members(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(
            &request,
            self.list_message_group_members_inner(&request).await,
        )
    }

    async fn list_message_group_members_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = group_in_path(request)?;
        let caller = self.registered(&sub).await?;
        self.members_response(caller.uuid, group).await
    }

    /// `POST /api/message_groups/{message_group_uuid}/members` `{"handles": [...]}`: a
    /// member adds people (up to 50 members in all); answers with the members.
    #[tracing::instrument(skip_all, fields(route = "add-message-group-members"))]
    pub async fn add_message_group_members(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(
            &request,
            self.add_message_group_members_inner(&request).await,
        )
    }

    async fn add_message_group_members_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let body: AddMembersBody = json_body(request)?;
        let group = parse_group_uuid(path_parameter(request, "message_group_uuid").unwrap_or(""));
        let handles = group_handles(body.handles.as_deref().unwrap_or(&[]), None, MAX_OTHERS);
        let (group, handles) = match (group, handles) {
            (Ok(group), Ok(handles)) => (group, handles),
            (group, handles) => {
                let codes = [group.err(), handles.err()]
                    .into_iter()
                    .flatten()
                    .map(ValidationError::code);
                return Err(ApiError::Validation(codes.collect()).into());
            }
        };
        let caller = self.registered(&sub).await?;
        let users = self.users_to_add(&caller, &handles).await?;
        self.store()
            .add_members(caller.uuid, group, &users, Timestamp::now())
            .await?;
        self.members_response(caller.uuid, group).await
    }

    /// `POST /api/message_groups/{message_group_uuid}/leave`: the caller's membership and
    /// inbox row go; a direct conversation cannot be left. `204` without a body.
    #[tracing::instrument(skip_all, fields(route = "leave-message-group"))]
    pub async fn leave_message_group(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.leave_message_group_inner(&request).await)
    }

    async fn leave_message_group_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = group_in_path(request)?;
        let caller = self.registered(&sub).await?;
        self.store().leave_group(caller.uuid, group).await?;
        Ok(no_content())
    }

    /// `POST /api/message_groups/{message_group_uuid}/read`: the caller has read the
    /// conversation as far as their inbox shows it; `204` without a body.
    #[tracing::instrument(skip_all, fields(route = "mark-message-group-read"))]
    pub async fn mark_message_group_read(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.mark_message_group_read_inner(&request).await)
    }

    async fn mark_message_group_read_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = group_in_path(request)?;
        let caller = self.registered(&sub).await?;
        match self
            .store()
            .mark_read(caller.uuid, group, &ReadUpTo::Row)
            .await?
        {
            MarkedRead::Marked { .. } | MarkedRead::AlreadyRead => Ok(no_content()),
            // No row in the index: a stranger, or a member whose row is moments old.
            MarkedRead::NoRow => {
                if self.store().is_member(group, caller.uuid).await? {
                    Err(HandlerError::Busy(StoreError::IndexLagging {
                        group,
                        seen: 0,
                        expected: 1,
                    }))
                } else {
                    Err(StoreError::NotMember(group).into())
                }
            }
        }
    }

    /// The users `handles` name, none of them `caller`; an unknown handle is a 404.
    async fn users_to_add(
        &self,
        caller: &User,
        handles: &[Handle],
    ) -> Result<Vec<User>, HandlerError> {
        if handles.iter().any(|handle| handle.same_as(&caller.handle)) {
            return Err(ApiError::from(ValidationError::ReceiverIsSelf).into());
        }
        let found = self.directory.by_handles(handles).await?;
        handles
            .iter()
            .map(|handle| {
                found
                    .get(&handle.normalized())
                    .cloned()
                    .ok_or_else(|| ApiError::NotFound("user_reciever_not_found").into())
            })
            .collect()
    }

    async fn members_response(
        &self,
        reader: uuid::Uuid,
        group: uuid::Uuid,
    ) -> Result<Response<Body>, HandlerError> {
        let members: Vec<GroupMember> = self
            .store()
            .group_members(reader, group)
            .await?
            .into_iter()
            .map(GroupMember::from)
            .collect();
        Ok(json_response(StatusCode::OK, &members))
    }

    /// `GET /api/users/@{handle}/short` (route `/api/users/{handle}/short`): public.
    #[tracing::instrument(skip_all, fields(route = "get-user-short"))]
    pub async fn get_user_short(
        &self,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        respond(&request, self.get_user_short_inner(&request).await)
    }

    async fn get_user_short_inner(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let not_found = ApiError::NotFound("user_not_found");
        // The route is `/api/users/{handle}/short` and the frontend calls it with `@handle`:
        // without the `@` it is not this route. A handle that cannot exist is not found.
        let handle = path_parameter(request, "handle")
            .and_then(|segment| segment.strip_prefix('@'))
            .and_then(|handle| Handle::parse(handle).ok())
            .ok_or_else(|| not_found.clone())?;
        let user = self.directory.by_handle(&handle).await?.ok_or(not_found)?;
        Ok(json_response(StatusCode::OK, &UserShort::from(user)))
    }

    async fn registered(&self, sub: &str) -> Result<User, HandlerError> {
        Ok(self
            .directory
            .by_sub(sub)
            .await?
            .ok_or(ApiError::NotFound("user_not_registered"))?)
    }
}

enum Target {
    Conversation(uuid::Uuid),
    User(Handle),
}

fn group_in_path(request: &Request) -> Result<uuid::Uuid, ValidationError> {
    parse_group_uuid(path_parameter(request, "message_group_uuid").unwrap_or(""))
}

fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn page_request(request: &Request) -> Result<PageRequest, PageError> {
    PageRequest::from_query(
        query_parameter(request, "limit"),
        query_parameter(request, "cursor"),
    )
}
