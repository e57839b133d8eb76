//! Reactions: which emoji a member may react with, and a message's reactions as counts.
//!
//! The set is bounded on purpose: eight emoji, the ones chat services offer as their quick
//! reactions. A message stores one entry per (member, emoji) in one string set
//! (`items::reaction_entry`), so the bound is what keeps the largest set, and with it the
//! message item every reaction rewrites, small: 50 members × 8 emoji = 400 entries of at
//! most 36 + 1 + 8 bytes, about 18 KB (see ARCHITECTURE, "Reactions").
//!
//! The emoji arrives as a path segment (`…/reactions/{emoji}`), percent-encoded UTF-8 on
//! the wire (`%F0%9F%91%8D`). API Gateway decodes it once before the function sees it
//! ("API Gateway decodes URL-encoded request parameters before passing them to your
//! backend integration",
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html>),
//! and so does the local server (axum's `Path`): [`Emoji::parse`] takes the decoded text and
//! decodes nothing more, so a client's double encoding stays unknown instead of meaning two
//! things.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::model::Reaction;
use crate::validate::ValidationError;

/// Every emoji a member can react with, in the order clients show them. `❤️` is stored
/// with its emoji presentation selector (U+FE0F), as keyboards type it.
pub const EMOJI: [&str; 8] = ["👍", "👎", "❤️", "😂", "😮", "😢", "🎉", "🙏"];

/// Longer input is refused without looking at it: the longest emoji above is 6 bytes,
/// and a path segment can be kilobytes.
const MAX_INPUT_BYTES: usize = 32;

/// U+FE0F VARIATION SELECTOR-16 (emoji presentation) and U+FE0E (text presentation):
/// they say how to draw a character, not which one it is, so `❤` and `❤️` are one reaction.
const PRESENTATION_SELECTORS: [char; 2] = ['\u{FE0F}', '\u{FE0E}'];

/// One of [`EMOJI`], in its stored spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Emoji(&'static str);

impl Emoji {
    /// The emoji `text` names, presentation selectors aside; anything else is
    /// [`ValidationError::ReactionUnknown`] (whose code lists nothing).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        if text.len() > MAX_INPUT_BYTES {
            return Err(ValidationError::ReactionUnknown);
        }
        let bare: String = text
            .chars()
            .filter(|c| !PRESENTATION_SELECTORS.contains(c))
            .collect();
        EMOJI
            .into_iter()
            .find(|emoji| {
                emoji
                    .chars()
                    .filter(|c| !PRESENTATION_SELECTORS.contains(c))
                    .eq(bare.chars())
            })
            .map(Self)
            .ok_or(ValidationError::ReactionUnknown)
    }

    /// The stored spelling: what `reactions` entries, `change_emoji` and answers carry.
    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Every emoji of the set.
    pub fn all() -> impl Iterator<Item = Emoji> {
        EMOJI.into_iter().map(Self)
    }
}

impl std::fmt::Display for Emoji {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// How many members reacted with each emoji (only emoji someone reacted with).
pub fn counts(reactions: &[Reaction]) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for reaction in reactions {
        *counts.entry(reaction.emoji.clone()).or_insert(0) += 1;
    }
    counts
}

/// The emoji `member` reacted with, in the set's order.
pub fn of_member(reactions: &[Reaction], member: Uuid) -> Vec<String> {
    let mut mine: Vec<&str> = reactions
        .iter()
        .filter(|reaction| reaction.member == member)
        .map(|reaction| reaction.emoji.as_str())
        .collect();
    mine.sort_by_key(|emoji| {
        EMOJI
            .iter()
            .position(|known| known == emoji)
            .unwrap_or(EMOJI.len())
    });
    mine.dedup();
    mine.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_emoji_of_the_set_parses_to_itself() {
        for emoji in EMOJI {
            assert_eq!(Emoji::parse(emoji).unwrap().as_str(), emoji);
        }
        assert_eq!(Emoji::all().count(), EMOJI.len());
    }

    #[test]
    fn a_heart_without_its_selector_is_the_same_reaction() {
        let bare = "\u{2764}";
        let with_selector = "\u{2764}\u{FE0F}";
        assert_eq!(Emoji::parse(bare), Emoji::parse(with_selector));
        assert_eq!(Emoji::parse(bare).unwrap().as_str(), with_selector);
        // The text presentation selector names the same character too.
        assert_eq!(
            Emoji::parse("\u{2764}\u{FE0E}").unwrap().as_str(),
            with_selector
        );
        // A selector after an emoji that never has one changes nothing either.
        assert_eq!(Emoji::parse("👍\u{FE0F}").unwrap().as_str(), "👍");
    }

    #[test]
    fn anything_else_is_unknown() {
        for other in [
            "",
            " ",
            "\u{FE0F}",
            "👍👍",
            " 👍",
            "👍🏽", // a skin tone is another emoji, not in the set
            "💩",
            "+1",
            "thumbs_up",
            // Still encoded: API Gateway decodes once, and so does the local server.
            "%F0%9F%91%8D",
            &"👍".repeat(1000),
        ] {
            assert_eq!(
                Emoji::parse(other),
                Err(ValidationError::ReactionUnknown),
                "{other:?}"
            );
        }
        assert_eq!(ValidationError::ReactionUnknown.code(), "reaction_unknown");
    }

    #[test]
    fn the_set_is_small_enough_to_bound_a_message() {
        // Entries are `<uuid>#<emoji>`: 50 members reacting with everything stays far
        // below DynamoDB's 400 KB item (see ARCHITECTURE, "Reactions").
        let longest = EMOJI.iter().map(|emoji| emoji.len()).max().unwrap();
        assert!(longest <= MAX_INPUT_BYTES);
        assert!(50 * EMOJI.len() * (36 + 1 + longest) < 20 * 1024);
    }

    #[test]
    fn counts_and_the_members_own() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let reaction = |emoji: &str, member| Reaction {
            emoji: emoji.to_owned(),
            member,
        };
        let reactions = vec![
            reaction("🎉", a),
            reaction("👍", a),
            reaction("👍", b),
            reaction("❤️", b),
        ];
        let counts = counts(&reactions);
        assert_eq!(counts.get("👍"), Some(&2));
        assert_eq!(counts.get("🎉"), Some(&1));
        assert_eq!(counts.get("❤️"), Some(&1));
        assert_eq!(counts.len(), 3);
        assert_eq!(of_member(&reactions, a), ["👍", "🎉"]);
        assert_eq!(of_member(&reactions, b), ["👍", "❤️"]);
        assert!(of_member(&reactions, Uuid::from_u128(3)).is_empty());
    }
}
