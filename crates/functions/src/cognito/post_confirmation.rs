//! `cognito-post-confirmation`: registers a confirmed sign-up in the user directory.

use aws_lambda_events::cognito::CognitoEventUserPoolsPostConfirmation;
use messaging::store::{NewUser, Registration};
use messaging::{Store, StoreError, Timestamp};

use super::{Profile, SignUpError, attribute, trigger_source, user_name};

/// The only trigger source this function acts on. The same trigger also fires on
/// `PostConfirmation_ConfirmForgotPassword` (a password reset): that user is registered
/// already, and their attributes say nothing new.
pub const CONFIRM_SIGN_UP: &str = "PostConfirmation_ConfirmSignUp";

/// What the user's attributes say, before registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp(pub NewUser);

impl TryFrom<&CognitoEventUserPoolsPostConfirmation> for SignUp {
    type Error = SignUpError;

    fn try_from(event: &CognitoEventUserPoolsPostConfirmation) -> Result<Self, Self::Error> {
        let attributes = &event.request.user_attributes;
        let Profile {
            handle,
            display_name,
        } = Profile::from_attributes(attributes)?;
        Ok(Self(NewUser {
            cognito_sub: attribute(attributes, "sub")?.to_owned(),
            handle,
            display_name,
        }))
    }
}

/// Registers the user of a confirmed sign-up, claiming the handle its pre sign-up reserved
/// for the event's Cognito user name, and gives back the event exactly as received, as
/// Cognito requires. Replays of the same confirmation succeed without writing twice. Any
/// other trigger source (a password reset) is given back untouched, without a read.
#[tracing::instrument(skip_all, fields(trigger = trigger_source(&event).unwrap_or("?")))]
pub async fn post_confirmation(
    store: &Store,
    event: serde_json::Value,
) -> Result<serde_json::Value, SignUpError> {
    if let Some(source) = trigger_source(&event).filter(|source| *source != CONFIRM_SIGN_UP) {
        tracing::info!(source, "not a sign-up confirmation: nothing to register");
        return Ok(event);
    }
    let typed: CognitoEventUserPoolsPostConfirmation = serde_json::from_value(event.clone())
        .map_err(|error| SignUpError::NotAnEvent {
            trigger: "post-confirmation",
            reason: error.to_string(),
        })?;
    let SignUp(new_user) = SignUp::try_from(&typed)?;
    let username = user_name(
        typed.cognito_event_user_pools_header.user_name.as_deref(),
        "post-confirmation",
    )?;
    match store
        .register_signed_up_user(new_user, &username, Timestamp::now())
        .await
    {
        Ok(Registration::Created(user)) => {
            tracing::info!(user = %user.uuid, handle = %user.handle, "user registered");
        }
        Ok(Registration::AlreadyRegistered(user)) => {
            tracing::info!(user = %user.uuid, handle = %user.handle, "user already registered");
        }
        Err(StoreError::HandleTaken(handle)) | Err(StoreError::SubRegistered { handle, .. }) => {
            // Only a confirmation more than a day late, after another sign-up reserved the
            // handle its reservation no longer held, gets here: the account exists now and
            // needs an operator (README, "Users without a profile").
            tracing::warn!(%handle, "confirmed user not registered: handle taken");
            return Err(SignUpError::HandleTaken(handle));
        }
        Err(error) => {
            tracing::error!(%error, "confirmed user not registered");
            return Err(SignUpError::Unavailable(error));
        }
    }
    Ok(event)
}
