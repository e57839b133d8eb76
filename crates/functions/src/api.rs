//! The HTTP API's routes. [`Api::serve`] is the one entry: it runs the route's handler and
//! turns its outcome into the Lambda's answer ([`respond`]). Each Lambda binary serves one
//! route; the local stack serves all of them through the same entry.

mod edits;
mod json;
mod reactions;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::page::{PageError, PageRequest};
use messaging::store::{ClientMessageId, MarkedRead, ReadUpTo};
use messaging::validate::{
    GroupName, Handle, MAX_GROUP_MEMBERS, MessageText, ValidationError, group_handles,
    parse_group_uuid,
};
use messaging::{Store, StoreError, Timestamp, User};

use self::json::{AddMembersBody, CreateGroupBody, CreateMessageBody};
pub use self::json::{
    BlockedItem, CreatedMessage, GroupMember, InboxItem, ListItem, MessageReactions, UserShort,
};
use crate::directory::Directory;
use crate::http::{
    ApiError, HandlerError, caller_sub, json_body, json_response, page_response, path_parameter,
    query_parameter, respond,
};
use crate::routes::Route;

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

    /// Answers `request` as `route`'s function: refusals (4xx) and a busy table (503) are
    /// responses, infrastructure failures are `Err` (Lambda reports them; API Gateway
    /// answers 500).
    #[tracing::instrument(skip_all, fields(route = route.function()))]
    pub async fn serve(
        &self,
        route: Route,
        request: Request,
    ) -> Result<Response<Body>, lambda_http::Error> {
        let outcome = match route {
            Route::ListMessageGroups => self.list_message_groups(&request).await,
            Route::ListMessages => self.list_messages(&request).await,
            Route::CreateMessage => self.create_message(&request).await,
            Route::GetUserShort => self.get_user_short(&request).await,
            Route::CreateMessageGroup => self.create_message_group(&request).await,
            Route::ListMessageGroupMembers => self.list_message_group_members(&request).await,
            Route::AddMessageGroupMembers => self.add_message_group_members(&request).await,
            Route::LeaveMessageGroup => self.leave_message_group(&request).await,
            Route::MarkMessageGroupRead => self.mark_message_group_read(&request).await,
            Route::BlockUser => self.block_user(&request).await,
            Route::UnblockUser => self.unblock_user(&request).await,
            Route::ListBlocks => self.list_blocks(&request).await,
            Route::AddReaction => self.add_reaction(&request).await,
            Route::RemoveReaction => self.remove_reaction(&request).await,
            Route::UpdateMessage => self.update_message(&request).await,
            Route::DeleteMessage => self.delete_message(&request).await,
        };
        respond(&request, outcome)
    }

    /// `GET /api/message_groups`: the caller's inbox, newest first.
    async fn list_message_groups(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
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
    async fn list_messages(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = group_in_path(request)?;
        let page = page_request(request)?;
        let caller = self.registered(&sub).await?;
        let messages = self.store().read_messages(&caller, group, &page).await?;
        let items: Vec<ListItem> = messages
            .items
            .into_iter()
            .map(|message| ListItem::for_reader(message, caller.uuid))
            .collect();
        Ok(page_response(&items, messages.next_cursor.as_deref()))
    }

    /// `POST /api/messages`.
    async fn create_message(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        // Who asks comes first: an anonymous request learns nothing about its body.
        let sub = caller_sub(request)?;
        let body: CreateMessageBody = json_body(request)?;
        let target = match (&body.message_group_uuid, &body.handle) {
            (Some(group), _) => parse_group_uuid(group).map(Target::Conversation),
            (None, Some(handle)) => Handle::parse(handle).map(Target::User),
            (None, None) => Err(ValidationError::HandleBlank),
        };
        let ((text, target), client_id) =
            Inputs::check(MessageText::parse(body.message.unwrap_or_default()))
                .and(target)
                .and_code(client_message_id(body.client_message_id.as_deref()))
                .valid()?;
        // What a repeat must ask for again: the target as named and the text.
        let client_id = client_id.map(|id| {
            let target = match &target {
                Target::Conversation(group) => format!("message_group_uuid:{group}"),
                Target::User(handle) => format!("handle:{}", handle.normalized()),
            };
            ClientMessageId::new(id, &["POST /api/messages", &target, text.as_str()])
        });
        let sender = self.registered(&sub).await?;
        let now = Timestamp::now();
        let store = self.store();
        let message = match (target, &client_id) {
            (Target::Conversation(group), None) => {
                store.append_message(&sender, group, text, now).await?
            }
            (Target::Conversation(group), Some(id)) => {
                store
                    .append_message_once(&sender, group, text, now, id)
                    .await?
            }
            (Target::User(handle), client_id) => {
                let recipient = self
                    .directory
                    .by_handle(&handle)
                    .await?
                    .ok_or(ApiError::NotFound("user_reciever_not_found"))?;
                match client_id {
                    None => store.send_to_user(&sender, &recipient, text, now).await?,
                    Some(id) => {
                        store
                            .send_to_user_once(&sender, &recipient, text, now, id)
                            .await?
                    }
                }
            }
        };
        Ok(json_response(
            StatusCode::OK,
            &CreatedMessage::from(message),
        ))
    }

    /// `POST /api/message_groups`: a named conversation of the caller and the listed users,
    /// with its first message; answers like `POST /api/messages`.
    async fn create_message_group(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let body: CreateGroupBody = json_body(request)?;
        let (((name, handles), text), client_id) =
            Inputs::check(GroupName::parse(body.name.as_deref().unwrap_or("")))
                .and(group_handles(
                    body.handles.as_ref().map_or(&[][..], |handles| &handles.0),
                    None,
                    MAX_OTHERS,
                ))
                .and(MessageText::parse(body.message.unwrap_or_default()))
                .and_code(client_message_id(body.client_message_id.as_deref()))
                .valid()?;
        // What a repeat must ask for again: the name, the people (as listed) and the text.
        let client_id = client_id.map(|id| {
            let handles: Vec<String> = handles.iter().map(Handle::normalized).collect();
            ClientMessageId::new(
                id,
                &[
                    "POST /api/message_groups",
                    name.as_str(),
                    &handles.join(" "),
                    text.as_str(),
                ],
            )
        });
        let creator = self.registered(&sub).await?;
        let others = self.users_to_add(&creator, &handles).await?;
        let now = Timestamp::now();
        let message = match &client_id {
            None => {
                self.store()
                    .create_group(&creator, &name, &others, text, now)
                    .await?
            }
            Some(id) => {
                self.store()
                    .create_group_once(&creator, &name, &others, text, now, id)
                    .await?
            }
        };
        Ok(json_response(
            StatusCode::OK,
            &CreatedMessage::from(message),
        ))
    }

    /// `GET /api/message_groups/{message_group_uuid}/members`: members only.
    async fn list_message_group_members(
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
    async fn add_message_group_members(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let body: AddMembersBody = json_body(request)?;
        let (group, handles) = Inputs::check(group_in_path(request))
            .and(group_handles(
                body.handles.as_ref().map_or(&[][..], |handles| &handles.0),
                None,
                MAX_OTHERS,
            ))
            .valid()?;
        let caller = self.registered(&sub).await?;
        let users = self.users_to_add(&caller, &handles).await?;
        self.store()
            .add_members(caller.uuid, group, &users, Timestamp::now())
            .await?;
        self.members_response(caller.uuid, group).await
    }

    /// `POST /api/message_groups/{message_group_uuid}/leave`: the caller's membership and
    /// inbox row go; a direct conversation cannot be left. `204` without a body.
    async fn leave_message_group(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = group_in_path(request)?;
        let caller = self.registered(&sub).await?;
        self.store()
            .leave_group(caller.uuid, group, Timestamp::now())
            .await?;
        Ok(no_content())
    }

    /// `POST /api/message_groups/{message_group_uuid}/read`: the caller has read the
    /// conversation as far as their inbox shows it; `204` without a body.
    async fn mark_message_group_read(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let group = group_in_path(request)?;
        let caller = self.registered(&sub).await?;
        match self
            .store()
            .mark_read(&caller, group, &ReadUpTo::Row)
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

    /// `GET /api/users/@{handle}/short` (route `/api/users/{handle}/short`): public.
    async fn get_user_short(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
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

    /// `POST /api/users/@{handle}/block` (route `/api/users/{handle}/block`): until lifted,
    /// neither the caller nor that user can message the other directly or make a group
    /// with the other. `204`, also when already blocked (nothing changes).
    async fn block_user(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let handle = handle_in_path(request)?;
        let caller = self.registered(&sub).await?;
        let blocked = self.block_target(&caller, &handle).await?;
        self.store()
            .block(&caller, &blocked, Timestamp::now())
            .await?;
        Ok(no_content())
    }

    /// `DELETE /api/users/@{handle}/block`: lifts the caller's block (the other's, if
    /// any, stays). `204`, also when there was none.
    async fn unblock_user(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let handle = handle_in_path(request)?;
        let caller = self.registered(&sub).await?;
        let blocked = self.block_target(&caller, &handle).await?;
        self.store().unblock(caller.uuid, blocked.uuid).await?;
        Ok(no_content())
    }

    /// `GET /api/blocks`: the users the caller blocked, paged like every list.
    async fn list_blocks(&self, request: &Request) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let page = page_request(request)?;
        let caller = self.registered(&sub).await?;
        let blocks = self.store().list_blocks(caller.uuid, &page).await?;
        let items: Vec<BlockedItem> = blocks.items.into_iter().map(BlockedItem::from).collect();
        Ok(page_response(&items, blocks.next_cursor.as_deref()))
    }

    /// The user a block names: not the caller (400 before any lookup), and known (404
    /// `user_not_found`, as the user card answers).
    async fn block_target(&self, caller: &User, handle: &Handle) -> Result<User, HandlerError> {
        if handle.same_as(&caller.handle) {
            return Err(ApiError::BadRequest("user_blocks_self").into());
        }
        Ok(self
            .directory
            .by_handle(handle)
            .await?
            .ok_or(ApiError::NotFound("user_not_found"))?)
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

    async fn registered(&self, sub: &str) -> Result<User, HandlerError> {
        Ok(self
            .directory
            .by_sub(sub)
            .await?
            .ok_or(ApiError::NotFound("user_not_registered"))?)
    }
}

/// A request's inputs, each checked on its own: a client gets every invalid field's code
/// in one answer (in the order checked), not one per attempt.
struct Inputs<T>(Result<T, Vec<&'static str>>);

impl<T> Inputs<T> {
    fn check(input: Result<T, ValidationError>) -> Self {
        Self(input.map_err(|error| vec![error.code()]))
    }

    fn and<U>(self, next: Result<U, ValidationError>) -> Inputs<(T, U)> {
        Inputs(match (self.0, next) {
            (Ok(valid), Ok(next)) => Ok((valid, next)),
            (earlier, next) => {
                let mut codes = earlier.err().unwrap_or_default();
                codes.extend(next.err().map(ValidationError::code));
                Err(codes)
            }
        })
    }

    /// As [`Inputs::and`], for a field checked here rather than in `messaging::validate`.
    fn and_code<U>(self, next: Result<U, &'static str>) -> Inputs<(T, U)> {
        Inputs(match (self.0, next) {
            (Ok(valid), Ok(next)) => Ok((valid, next)),
            (earlier, next) => {
                let mut codes = earlier.err().unwrap_or_default();
                codes.extend(next.err());
                Err(codes)
            }
        })
    }

    fn valid(self) -> Result<T, ApiError> {
        self.0.map_err(ApiError::Validation)
    }
}

enum Target {
    Conversation(uuid::Uuid),
    User(Handle),
}

/// The optional `client_message_id`: a UUID in any of its usual spellings (taken in its
/// canonical form, so `ABC…` and `abc…` are the same id); anything else is 422
/// `client_message_id_invalid`.
fn client_message_id(raw: Option<&str>) -> Result<Option<uuid::Uuid>, &'static str> {
    raw.map(|id| uuid::Uuid::try_parse(id).map_err(|_| "client_message_id_invalid"))
        .transpose()
}

fn group_in_path(request: &Request) -> Result<uuid::Uuid, ValidationError> {
    parse_group_uuid(path_parameter(request, "message_group_uuid").unwrap_or(""))
}

/// The `{message_uuid}` segment of the routes that change a message.
fn message_in_path(request: &Request) -> Result<uuid::Uuid, ValidationError> {
    messaging::validate::parse_message_uuid(path_parameter(request, "message_uuid").unwrap_or(""))
}

/// The `@handle` path segment of the user routes. Without the `@` it is not the route, and
/// a handle that cannot exist is nobody: both are 404 `user_not_found`, as the card answers.
fn handle_in_path(request: &Request) -> Result<Handle, ApiError> {
    path_parameter(request, "handle")
        .and_then(|segment| segment.strip_prefix('@'))
        .and_then(|handle| Handle::parse(handle).ok())
        .ok_or(ApiError::NotFound("user_not_found"))
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
