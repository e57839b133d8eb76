//! The sender's changes of a message: `PATCH` (edit) and `DELETE` (for everyone) of
//! `/api/messages/{message_group_uuid}/{message_uuid}`. Both answer the message as it now
//! is, in the shape a send answers with; anything the caller may not change is `404
//! ["message_not_found"]`, never 403, so message ids cannot be probed.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::Timestamp;
use messaging::validate::MessageText;

use super::json::{CreatedMessage, EditMessageBody};
use super::{Api, Inputs, group_in_path, message_in_path};
use crate::http::{HandlerError, caller_sub, json_body, json_response};

impl Api {
    /// `PATCH /api/messages/{message_group_uuid}/{message_uuid}` `{"message": "..."}`: the
    /// sender replaces the text (the send's validation); the message gains `edited_at`.
    pub(super) async fn update_message(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let body: EditMessageBody = json_body(request)?;
        let ((group, message), text) = Inputs::check(group_in_path(request))
            .and(message_in_path(request))
            .and(MessageText::parse(body.message.unwrap_or_default()))
            .valid()?;
        let editor = self.registered(&sub).await?;
        let edited = self
            .store()
            .edit_message(&editor, group, message, text, Timestamp::now())
            .await?;
        Ok(json_response(StatusCode::OK, &CreatedMessage::from(edited)))
    }

    /// `DELETE /api/messages/{message_group_uuid}/{message_uuid}`: the sender deletes the
    /// message for everyone; it stays in its place as `{"deleted": true, "message": "", …}`.
    /// Deleting again answers the same.
    pub(super) async fn delete_message(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let (group, message) = Inputs::check(group_in_path(request))
            .and(message_in_path(request))
            .valid()?;
        let editor = self.registered(&sub).await?;
        let deleted = self
            .store()
            .delete_message(&editor, group, message, Timestamp::now())
            .await?;
        Ok(json_response(
            StatusCode::OK,
            &CreatedMessage::from(deleted),
        ))
    }
}
