//! `cognito-post-confirmation`: registers a confirmed sign-up in the user directory.

use aws_lambda_events::cognito::CognitoEventUserPoolsPostConfirmation;
use messaging::store::{NewUser, Registration};
use messaging::validate::{DisplayName, Handle};
use messaging::{Store, StoreError, Timestamp};

/// Why a sign-up cannot be registered. Returned to Cognito as the trigger's error, so the
/// sign-up fails visibly with this message.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("the event is not a Cognito post-confirmation event: {0}")]
    NotAnEvent(String),
    #[error("the user has no {0} attribute")]
    MissingAttribute(&'static str),
    #[error("{attribute} is invalid: {reason}")]
    InvalidAttribute {
        attribute: &'static str,
        reason: String,
    },
    #[error("the handle {0:?} is already taken")]
    HandleTaken(String),
    #[error(transparent)]
    Store(StoreError),
}

/// What the user's attributes say, before registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp(pub NewUser);

impl TryFrom<&CognitoEventUserPoolsPostConfirmation> for SignUp {
    type Error = SignUpError;

    fn try_from(event: &CognitoEventUserPoolsPostConfirmation) -> Result<Self, Self::Error> {
        let attribute = |name: &'static str| {
            event
                .request
                .user_attributes
                .get(name)
                .map(String::as_str)
                .filter(|value| !value.trim().is_empty())
                .ok_or(SignUpError::MissingAttribute(name))
        };
        let invalid = |attribute: &'static str| {
            move |error: messaging::validate::ValidationError| SignUpError::InvalidAttribute {
                attribute,
                reason: error.to_string(),
            }
        };
        Ok(Self(NewUser {
            cognito_sub: attribute("sub")?.to_owned(),
            handle: Handle::parse(attribute("preferred_username")?)
                .map_err(invalid("preferred_username"))?,
            display_name: DisplayName::parse(attribute("name")?).map_err(invalid("name"))?,
        }))
    }
}

/// Registers the user and gives back the event exactly as received, as Cognito requires.
/// Replays of the same confirmation succeed without writing twice.
#[tracing::instrument(skip_all)]
pub async fn post_confirmation(
    store: &Store,
    event: serde_json::Value,
) -> Result<serde_json::Value, SignUpError> {
    let typed: CognitoEventUserPoolsPostConfirmation = serde_json::from_value(event.clone())
        .map_err(|error| SignUpError::NotAnEvent(error.to_string()))?;
    let SignUp(new_user) = SignUp::try_from(&typed)?;
    match store.register_user(new_user, Timestamp::now()).await {
        Ok(Registration::Created(user)) => {
            tracing::info!(user = %user.uuid, handle = %user.handle, "user registered");
        }
        Ok(Registration::AlreadyRegistered(user)) => {
            tracing::info!(user = %user.uuid, handle = %user.handle, "user already registered");
        }
        Err(StoreError::HandleTaken(handle)) | Err(StoreError::SubRegistered { handle, .. }) => {
            return Err(SignUpError::HandleTaken(handle));
        }
        Err(error) => return Err(SignUpError::Store(error)),
    }
    Ok(event)
}
