//! The HTTP API's routes, as plain async functions of the request. Each Lambda binary
//! serves one of them; the local stack serves all of them through the same functions.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::page::{PageError, PageRequest};
use messaging::validate::{Handle, MessageText, ValidationError, parse_group_uuid};
use messaging::{InboxEntry, Message, Store, Timestamp, User};
use serde::{Deserialize, Serialize};

use crate::directory::Directory;
use crate::http::{
    ApiError, HandlerError, caller_sub, json_body, json_response, page_response, path_parameter,
    query_parameter, respond,
};

/// A row of a list, in the original frontend's shape. In an inbox `uuid` is the
/// conversation; in a conversation it is the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListItem {
    pub uuid: String,
    pub display_name: String,
    pub handle: String,
    pub message: String,
    pub created_at: String,
}

impl From<InboxEntry> for ListItem {
    fn from(row: InboxEntry) -> Self {
        Self {
            uuid: row.group_uuid.to_string(),
            display_name: row.other.display_name,
            handle: row.other.handle,
            message: row.last_message,
            created_at: row.last_message_at,
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
        let items: Vec<ListItem> = inbox.items.into_iter().map(ListItem::from).collect();
        Ok(page_response(&items, inbox.next_cursor.as_deref()))
    }

    /// `GET /api/messages/{message_group_uuid}`: a page of a conversation the caller
    /// belongs to, oldest first within the page, newest page first.
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
            .list_messages(caller.uuid, group, &page)
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

fn page_request(request: &Request) -> Result<PageRequest, PageError> {
    PageRequest::from_query(
        query_parameter(request, "limit"),
        query_parameter(request, "cursor"),
    )
}
