//! `PUT` and `DELETE /api/messages/{message_group_uuid}/{message_uuid}/reactions/{emoji}`:
//! a member adds or takes back a reaction. Both are idempotent (a repeat answers 200 with
//! the reactions as they are and writes nothing) and answer [`MessageReactions`].

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use messaging::Timestamp;
use messaging::reactions::Emoji;
use messaging::validate::ValidationError;

use super::json::MessageReactions;
use super::{Api, Inputs, group_in_path, message_in_path};
use crate::http::{HandlerError, caller_sub, json_response, path_parameter};

impl Api {
    /// `PUT …/reactions/{emoji}`: the caller reacts with `emoji`.
    pub(super) async fn add_reaction(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        self.change_reaction(request, true).await
    }

    /// `DELETE …/reactions/{emoji}`: the caller takes back their `emoji` reaction.
    pub(super) async fn remove_reaction(
        &self,
        request: &Request,
    ) -> Result<Response<Body>, HandlerError> {
        self.change_reaction(request, false).await
    }

    async fn change_reaction(
        &self,
        request: &Request,
        add: bool,
    ) -> Result<Response<Body>, HandlerError> {
        let sub = caller_sub(request)?;
        let ((group, uuid), emoji) = Inputs::check(group_in_path(request))
            .and(message_in_path(request))
            .and(emoji_in_path(request))
            .valid()?;
        let caller = self.registered(&sub).await?;
        let now = Timestamp::now();
        let store = self.store();
        let reacted = if add {
            store.react(&caller, group, uuid, emoji, now).await?
        } else {
            store.unreact(&caller, group, uuid, emoji, now).await?
        };
        Ok(json_response(
            StatusCode::OK,
            &MessageReactions::for_reader(&reacted.message, caller.uuid),
        ))
    }
}

/// The `{emoji}` segment, as API Gateway hands it over: already percent-decoded.
fn emoji_in_path(request: &Request) -> Result<Emoji, ValidationError> {
    Emoji::parse(path_parameter(request, "emoji").unwrap_or(""))
}
