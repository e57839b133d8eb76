//! `cognito-pre-signup`: refuses a sign-up whose handle is invalid, taken or held by another
//! sign-up in progress, before Cognito creates the account, and reserves the handle for this
//! one. Cognito does not keep `preferred_username` unique; the directory does, and asked
//! only after the account was confirmed, it would be too late to say no.

use aws_lambda_events::cognito::CognitoEventUserPoolsPreSignup;
use messaging::store::HandleReservation;
use messaging::{Store, Timestamp};

use super::{Profile, SignUpError, trigger_source, user_name};

/// Checks the profile a sign-up asks for (every source: self sign-up, an administrator's
/// `AdminCreateUser`, a federated first sign-in), reserves its handle for the event's
/// Cognito user name, and gives back the event exactly as received, so Cognito's own
/// confirmation and verification flow is unchanged. The post-confirmation trigger claims
/// the handle; a sign-up never confirmed lets it go when the reservation expires. Cognito
/// retrying this trigger finds its own reservation and passes.
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
    let username = user_name(
        typed.cognito_event_user_pools_header.user_name.as_deref(),
        "pre sign-up",
    )?;
    match store
        .reserve_handle(&profile.handle, &username, Timestamp::now())
        .await
    {
        Ok(HandleReservation::Reserved) => {
            tracing::info!(handle = %profile.handle, %username, "sign-up allowed: handle reserved");
            Ok(event)
        }
        Ok(HandleReservation::Taken) => {
            tracing::info!(handle = %profile.handle, "sign-up refused: handle taken");
            Err(SignUpError::HandleTaken(profile.handle.to_string()))
        }
        Ok(HandleReservation::ReservedByAnother) => {
            tracing::info!(handle = %profile.handle, "sign-up refused: another sign-up holds the handle");
            Err(SignUpError::HandleTaken(profile.handle.to_string()))
        }
        Err(error) => {
            tracing::error!(%error, "sign-up refused: the directory did not answer");
            Err(SignUpError::Unavailable(error))
        }
    }
}
