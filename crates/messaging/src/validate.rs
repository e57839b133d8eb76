//! Input rules, each failure with the error code the frontend knows.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const MESSAGE_MAX_CHARS: usize = 1024;
pub const HANDLE_MAX_CHARS: usize = 32;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
pub const GROUP_NAME_MAX_CHARS: usize = 64;
/// The most members a group has: its creator and 49 others.
pub const MAX_GROUP_MEMBERS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("message is blank")]
    MessageBlank,
    #[error("message is longer than {MESSAGE_MAX_CHARS} characters")]
    MessageTooLong,
    #[error("handle is blank")]
    HandleBlank,
    #[error(
        "handle must be 1 to {HANDLE_MAX_CHARS} letters, digits, '_', '.' or '-', starting with a letter or digit"
    )]
    HandleInvalid,
    #[error("display name is blank")]
    DisplayNameBlank,
    #[error("display name is longer than {DISPLAY_NAME_MAX_CHARS} characters")]
    DisplayNameTooLong,
    #[error("message group uuid is blank")]
    MessageGroupUuidBlank,
    #[error("message group uuid is not a uuid")]
    MessageGroupUuidInvalid,
    #[error("the caller cannot be their own recipient")]
    ReceiverIsSelf,
    #[error("group name is blank")]
    GroupNameBlank,
    #[error("group name is longer than {GROUP_NAME_MAX_CHARS} characters")]
    GroupNameTooLong,
    #[error("no handles to put in the group")]
    GroupHandlesBlank,
    #[error("a group has at most {MAX_GROUP_MEMBERS} members")]
    GroupTooLarge,
    #[error("message uuid is not a uuid")]
    MessageUuidInvalid,
    #[error("not one of the emoji a member can react with")]
    ReactionUnknown,
}

impl ValidationError {
    /// The code sent to clients, kept from the original system where one existed
    /// (including its spelling of "reciever").
    pub fn code(self) -> &'static str {
        match self {
            Self::MessageBlank => "message_blank",
            Self::MessageTooLong => "message_exceed_max_chars_1024",
            Self::HandleBlank => "user_reciever_handle_blank",
            Self::HandleInvalid => "handle_invalid",
            Self::DisplayNameBlank => "display_name_blank",
            Self::DisplayNameTooLong => "display_name_exceed_max_chars_64",
            Self::MessageGroupUuidBlank => "message_group_uuid_blank",
            Self::MessageGroupUuidInvalid => "message_group_uuid_invalid",
            Self::ReceiverIsSelf => "user_reciever_is_self",
            Self::GroupNameBlank => "group_name_blank",
            Self::GroupNameTooLong => "group_name_exceed_max_chars_64",
            Self::GroupHandlesBlank => "group_handles_blank",
            Self::GroupTooLarge => "group_too_large",
            Self::MessageUuidInvalid => "message_uuid_invalid",
            Self::ReactionUnknown => "reaction_unknown",
        }
    }
}

/// The text of a message: not blank, at most 1024 characters (Unicode scalar values, not
/// bytes: "é" and "🙂" count one each). Stored as typed, not trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: impl Into<String>) -> Result<Self, ValidationError> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(ValidationError::MessageBlank);
        }
        if text.chars().count() > MESSAGE_MAX_CHARS {
            return Err(ValidationError::MessageTooLong);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A user handle as typed (case preserved for display). Uniqueness and lookup use
/// [`Handle::normalized`], so `AndrewBrown` and `andrewbrown` are the same handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Handle(String);

impl Handle {
    /// Accepts an optional leading `@` (the frontend's `/@handle` routes).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        let text = text.strip_prefix('@').unwrap_or(text);
        if text.is_empty() {
            return Err(ValidationError::HandleBlank);
        }
        let valid_chars = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let starts_well = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !valid_chars || !starts_well || text.len() > HANDLE_MAX_CHARS {
            return Err(ValidationError::HandleInvalid);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn normalized(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn same_as(&self, other: &Handle) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A user's display name: trimmed, not blank, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ValidationError::DisplayNameBlank);
        }
        if text.chars().count() > DISPLAY_NAME_MAX_CHARS {
            return Err(ValidationError::DisplayNameTooLong);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A group conversation's name: trimmed, not blank, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ValidationError::GroupNameBlank);
        }
        if text.chars().count() > GROUP_NAME_MAX_CHARS {
            return Err(ValidationError::GroupNameTooLong);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The handles of the people to put in a group besides the caller: at least one, at most
/// 49 once duplicates (case-insensitive) collapse, the caller not among them.
pub fn group_handles(
    texts: &[String],
    caller: Option<&Handle>,
    max_others: usize,
) -> Result<Vec<Handle>, ValidationError> {
    let mut handles: Vec<Handle> = Vec::with_capacity(texts.len());
    for text in texts {
        let handle = Handle::parse(text)?;
        if !handles.iter().any(|seen| seen.same_as(&handle)) {
            handles.push(handle);
        }
    }
    if handles.is_empty() {
        return Err(ValidationError::GroupHandlesBlank);
    }
    if caller.is_some_and(|caller| handles.iter().any(|h| h.same_as(caller))) {
        return Err(ValidationError::ReceiverIsSelf);
    }
    if handles.len() > max_others {
        return Err(ValidationError::GroupTooLarge);
    }
    Ok(handles)
}

/// A conversation id from a client (path segment or JSON field).
pub fn parse_group_uuid(text: &str) -> Result<uuid::Uuid, ValidationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ValidationError::MessageGroupUuidBlank);
    }
    uuid::Uuid::parse_str(text).map_err(|_| ValidationError::MessageGroupUuidInvalid)
}

/// A message id from a client (path segment).
pub fn parse_message_uuid(text: &str) -> Result<uuid::Uuid, ValidationError> {
    uuid::Uuid::parse_str(text.trim()).map_err(|_| ValidationError::MessageUuidInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_length_counts_characters_not_bytes() {
        let accents = "é".repeat(MESSAGE_MAX_CHARS);
        assert!(accents.len() > MESSAGE_MAX_CHARS);
        assert!(MessageText::parse(accents.clone()).is_ok());
        let emoji = "🙂".repeat(MESSAGE_MAX_CHARS);
        assert_eq!(emoji.len(), 4 * MESSAGE_MAX_CHARS);
        assert!(MessageText::parse(emoji.clone()).is_ok());
        assert_eq!(
            MessageText::parse(format!("{emoji}🙂")),
            Err(ValidationError::MessageTooLong)
        );
        assert_eq!(
            MessageText::parse("a".repeat(MESSAGE_MAX_CHARS + 1)),
            Err(ValidationError::MessageTooLong)
        );
    }

    #[test]
    fn blank_messages_are_refused_and_others_kept_verbatim() {
        for blank in ["", " ", "\n\t ", "\u{3000}"] {
            assert_eq!(
                MessageText::parse(blank),
                Err(ValidationError::MessageBlank)
            );
        }
        assert_eq!(MessageText::parse("  hi  ").unwrap().as_str(), "  hi  ");
    }

    #[test]
    fn error_codes_are_the_frontends() {
        assert_eq!(ValidationError::MessageBlank.code(), "message_blank");
        assert_eq!(
            ValidationError::MessageTooLong.code(),
            "message_exceed_max_chars_1024"
        );
        assert_eq!(
            ValidationError::HandleBlank.code(),
            "user_reciever_handle_blank"
        );
        assert_eq!(
            ValidationError::MessageGroupUuidBlank.code(),
            "message_group_uuid_blank"
        );
    }

    #[test]
    fn handles_are_case_insensitive_and_strict() {
        let handle = Handle::parse("@AndrewBrown").unwrap();
        assert_eq!(handle.as_str(), "AndrewBrown");
        assert_eq!(handle.normalized(), "andrewbrown");
        assert!(handle.same_as(&Handle::parse("andrewbrown").unwrap()));
        assert_eq!(Handle::parse("  "), Err(ValidationError::HandleBlank));
        assert_eq!(Handle::parse("@"), Err(ValidationError::HandleBlank));
        for bad in [
            "_x",
            "a b",
            "naïve",
            "x/y",
            &"a".repeat(HANDLE_MAX_CHARS + 1),
        ] {
            assert_eq!(
                Handle::parse(bad),
                Err(ValidationError::HandleInvalid),
                "{bad}"
            );
        }
        assert!(Handle::parse("londo.mollari-2_b").is_ok());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Londo Mollari ").unwrap().as_str(),
            "Londo Mollari"
        );
        assert_eq!(
            DisplayName::parse(" "),
            Err(ValidationError::DisplayNameBlank)
        );
        assert!(DisplayName::parse(&"ß".repeat(DISPLAY_NAME_MAX_CHARS)).is_ok());
        assert_eq!(
            DisplayName::parse(&"ß".repeat(DISPLAY_NAME_MAX_CHARS + 1)),
            Err(ValidationError::DisplayNameTooLong)
        );
    }

    #[test]
    fn group_names_are_trimmed_and_bounded() {
        assert_eq!(GroupName::parse(" Bootcamp ").unwrap().as_str(), "Bootcamp");
        assert_eq!(GroupName::parse(" "), Err(ValidationError::GroupNameBlank));
        assert!(GroupName::parse(&"é".repeat(GROUP_NAME_MAX_CHARS)).is_ok());
        let long = GroupName::parse(&"é".repeat(GROUP_NAME_MAX_CHARS + 1));
        assert_eq!(long, Err(ValidationError::GroupNameTooLong));
        assert_eq!(
            ValidationError::GroupNameTooLong.code(),
            "group_name_exceed_max_chars_64"
        );
    }

    #[test]
    fn group_handles_collapse_duplicates_and_are_bounded() {
        let texts = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let me = Handle::parse("andrewbrown").unwrap();
        let handles = group_handles(&texts(&["bayko", "@Bayko", "londo"]), Some(&me), 49).unwrap();
        let names: Vec<&str> = handles.iter().map(Handle::as_str).collect();
        assert_eq!(names, ["bayko", "londo"]);
        assert_eq!(
            group_handles(&[], Some(&me), 49),
            Err(ValidationError::GroupHandlesBlank)
        );
        assert_eq!(
            group_handles(&texts(&["bayko", "AndrewBrown"]), Some(&me), 49),
            Err(ValidationError::ReceiverIsSelf)
        );
        let many: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
        assert_eq!(
            group_handles(&many, Some(&me), 49),
            Err(ValidationError::GroupTooLarge)
        );
        assert_eq!(group_handles(&many[..49], Some(&me), 49).unwrap().len(), 49);
        assert_eq!(
            group_handles(&texts(&["bad handle"]), None, 49),
            Err(ValidationError::HandleInvalid)
        );
    }

    #[test]
    fn group_uuids_are_checked() {
        assert_eq!(
            parse_group_uuid(" "),
            Err(ValidationError::MessageGroupUuidBlank)
        );
        assert_eq!(
            parse_group_uuid("5ae290ed"),
            Err(ValidationError::MessageGroupUuidInvalid)
        );
        assert!(parse_group_uuid("5ae290ed-55d1-47a0-bc6d-fe2bc2700399").is_ok());
    }
}
