//! `cognito-pre-signup`: refuses a sign-up whose handle is invalid or taken, before Cognito
//! creates the account. Cognito does not keep `preferred_username` unique; the directory
//! does, and until now it was asked only after the account was confirmed, too late to say no.

use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;
use messaging::Store;

use super::{Profile, SignUpError, trigger_source};

/// Checks the profile a sign-up asks for (every source: self sign-up, an administrator's
/// `AdminCreateUser`, a federated first sign-in) and gives back the event exactly as
/// received, so Cognito's own confirmation and verification flow is unchanged. Only reads:
/// the handle is claimed by the post-confirmation trigger.
#[tracing::instrument(skip_all, fields(trigger = trigger_source(&event).unwrap_or("?")))]
pub async fn pre_signup(
    store: &Store,
    event: serde_json::Value,
) -> Result<serde_json::Value, SignUpError> {
    let typed: CognitoEventUserPoolsPreSignup =
        serde_json::from_value(event.clone()).map_err(|error| SignUpError::NotAnEvent {
            trigger: "pre sign-up",
            reason: error.to_string(),
        })?;
    let profile = match Profile::from_attributes(&typed.request.user_attributes) {
        Ok(profile) => profile,
        Err(refusal) => {
            tracing::info!(%refusal, "sign-up refused");
            return Err(refusal);
        }
    };
    match store.handle_taken(&profile.handle).await {
        Ok(false) => {
            tracing::info!(handle = %profile.handle, "sign-up allowed");
            Ok(event)
        }
        Ok(true) => {
            tracing::info!(handle = %profile.handle, "sign-up refused: handle taken");
            Err(SignUpError::HandleTaken(profile.handle.to_string()))
        }
        Err(error) => {
            tracing::error!(%error, "sign-up refused: the directory did not answer");
            Err(SignUpError::Unavailable(error))
        }
    }
}
