//! The user pool's triggers. Cognito owns identities; the directory owns handles.
//!
//! - [`pre_signup`] (`cognito-pre-signup`) refuses a sign-up whose handle is invalid, taken,
//!   or held by another sign-up in progress *before* Cognito creates the account, and
//!   reserves the handle for this sign-up's Cognito user name (expiring after
//!   [`messaging::store::HANDLE_RESERVATION_SECONDS`]);
//! - [`post_confirmation`] (`cognito-post-confirmation`) registers the confirmed user in the
//!   directory, claiming the handle its sign-up reserved, on `PostConfirmation_ConfirmSignUp`
//!   only.
//!
//! So of two people signing up for one handle at the same moment, exactly one gets past the
//! form, and nobody ends up confirmed without a profile (unless a confirmation comes more
//! than a day late and someone else reserved the handle meanwhile).
//!
//! A trigger's error message is what the person signing up sees: Cognito answers the sign-up
//! with "PreSignUp failed with error <message>." (and likewise for PostConfirmation), so
//! [`SignUpError`]'s messages are written for them, and carry no trailing period.

mod post_confirmation;
mod pre_signup;

use std::collections::HashMap;

pub use post_confirmation::{CONFIRM_SIGN_UP, SignUp, post_confirmation};
pub use pre_signup::pre_signup;

use messaging::StoreError;
use messaging::validate::{DisplayName, Handle, ValidationError};

/// Why a sign-up is refused. Returned to Cognito as the trigger's error, so the sign-up
/// fails visibly with this message.
#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("the event is not a Cognito {trigger} event: {reason}")]
    NotAnEvent {
        trigger: &'static str,
        reason: String,
    },
    #[error("the user has no {0} attribute")]
    MissingAttribute(&'static str),
    /// The validation rule's own words ("handle must be 1 to 32 letters, …") are what the
    /// form shows; the attribute is kept for the log.
    #[error("{reason}")]
    InvalidAttribute {
        attribute: &'static str,
        reason: String,
    },
    /// Taken, or held by another sign-up in progress: the person is told the same either way.
    #[error("the handle {0:?} is already taken, choose another one")]
    HandleTaken(String),
    /// The directory could not answer (throttling, network). The details go to the log; the
    /// person is asked to try again.
    #[error("sign-up is unavailable for a moment, try again")]
    Unavailable(#[source] StoreError),
}

/// The profile a sign-up asks for: the handle (`preferred_username`) and the display name
/// (`name`), checked by the same rules the directory applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub handle: Handle,
    pub display_name: DisplayName,
}

impl Profile {
    pub fn from_attributes(attributes: &HashMap<String, String>) -> Result<Self, SignUpError> {
        Ok(Self {
            handle: Handle::parse(attribute(attributes, "preferred_username")?)
                .map_err(invalid("preferred_username"))?,
            display_name: DisplayName::parse(attribute(attributes, "name")?)
                .map_err(invalid("name"))?,
        })
    }
}

/// A user attribute that is present and not blank.
fn attribute<'a>(
    attributes: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<&'a str, SignUpError> {
    attributes
        .get(name)
        .map(String::as_str)
        .filter(|value| !value.trim().is_empty())
        .ok_or(SignUpError::MissingAttribute(name))
}

fn invalid(attribute: &'static str) -> impl Fn(ValidationError) -> SignUpError {
    move |error| SignUpError::InvalidAttribute {
        attribute,
        reason: error.to_string(),
    }
}

/// The Cognito user name of a trigger's event (with email as the username attribute, the
/// generated one, which is also the `sub`): what a handle's reservation is tied to.
fn user_name(header_user_name: Option<&str>, trigger: &'static str) -> Result<String, SignUpError> {
    header_user_name
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| SignUpError::NotAnEvent {
            trigger,
            reason: "no userName".into(),
        })
}

/// The event's `triggerSource`, read before the event is typed: each trigger's typed event
/// knows only the sources that exist today, and an unknown one must not fail a sign-in.
fn trigger_source(event: &serde_json::Value) -> Option<&str> {
    event
        .get("triggerSource")
        .and_then(serde_json::Value::as_str)
}
