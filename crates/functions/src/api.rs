//! The HTTP API's routes, as plain async functions of the request. Each Lambda binary
//! serves one of them; the local stack serves all of them through the same functions.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::model::ConversationKind;
use messaging::page::{PageError, PageRequest};
use messaging::store::{MarkedRead, Member, ReadUpTo};
use messaging::validate::{
    GroupName, Handle, MAX_GROUP_MEMBERS, MessageText, ValidationError, group_handles,
    parse_group_uuid,
};
use messaging::{InboxEntry, Message, Store, StoreError, Timestamp, User};
use serde::{Deserialize, Serialize};

use crate::directory::Directory;
use crate::http::{
    ApiError, HandlerError, caller_sub, json_body, json_response, page_response, path_parameter,
    query_parameter, respond,
};

/// A message of a conversation, in the original frontend's shape (`uuid` is the
/// message's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListItem {
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
}

/// A conversation of the inbox: the original frontend's shape (`uuid` is the
/// conversation's; for a direct conversation `display_name` and `handle` are the other
/// member's) plus fields it ignores. A group shows its name as `display_name` and its
/// last sender's handle as `handle`, and carries `name` and `member_count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
    pub kind: ConversationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<u32>,
    /// Messages from others since the caller last read the conversation.
    pub unread: u32,
}

impl From<InboxEntry> for InboxItem {
    fn from(row: InboxEntry) -> Self {
        let group = row.kind == ConversationKind::Group;
        Self {
            uuid: row.group_uuid.to_string(),
            display_name: match (&row.name, group) {
                (Some(name), true) => name.clone(),
                _ => row.other.display_name,
            },
            handle: row.other.handle,
            message: row.last_message,
            created_at: row.last_message_at,
            kind: row.kind,
            name: row.name.filter(|_| group),
            member_count: row.member_count.filter(|_| group),
            unread: row.unread,
        }
    }
}

/// One member, as `GET /api/message_groups/{id}/members` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub uuid: String,
    pub handle: String,
    pub display_name: String,
    pub joined_at: String,
}

impl From<Member> for GroupMember {
    fn from(member: Member) -> Self {
        Self {
            uuid: member.uuid.to_string(),
            handle: member.handle,
            display_name: member.display_name,
            joined_at: member.joined_at,
        }
    }
}

impl From<Message> for ListItem {
    fn from(message: Message) -> Self {
        Self {
            uuid: message.uuid.to_string(),
            display_name: message.sender.display_name,
            handle: message.sender.handle,
            message: message.text,
            created_at: message.created_at,
        }
    }
}

/// The answer to `POST /api/messages`: the new message, `uuid` being the message's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedMessage {
    pub message_group_uuid: String,
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
}

impl From<Message> for CreatedMessage {
    fn from(message: Message) -> Self {
        Self {
            message_group_uuid: message.group_uuid.to_string(),
            uuid: message.uuid.to_string(),
            display_name: message.sender.display_name,
            handle: message.sender.handle,
            message: message.text,
            created_at: message.created_at,
        }
    }
}

/// `GET /api/users/@{handle}/short`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserShort {
    pub uuid: String,
    pub handle: String,
    pub display_name: String,
}

/// `POST /api/messages` body: `{message, message_group_uuid}` appends to a conversation,
/// `{message, handle}` messages a user (when both are given, the conversation wins).
#[derive(Debug, Default, Deserialize)]
struct CreateMessageBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_group_uuid: Option<String>,
    #[serde(default)]
    handle: Option<String>,
}

/// `POST /api/message_groups` body.
#[derive(Debug, Default, Deserialize)]
struct CreateGroupBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    handles: Option<Vec<String>>,
    #[serde(default)]
    message: Option<String>,
}

/// `POST /api/message_groups/{id}/members` body.
#[derive(Debug, Default, Deserialize)]
struct AddMembersBody {
    #[serde(default)]
    handles: Option<Vec<String>>,
}

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
        let short = UserShort {
            uuid: user.uuid.to_string(),
            handle: user.handle.to_string(),
            display_name: user.display_name.to_string(),
        };
        Ok(json_response(StatusCode::OK, &short))
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
