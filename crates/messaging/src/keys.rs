//! Every key of the single table, built in one place.
//!
//! | item            | pk                          | sk                 |
//! |-----------------|-----------------------------|--------------------|
//! | message         | `MSG#<group>`               | `<created_at>`     |
//! | inbox row       | `GRP#<owner>`               | `<last_message_at>`|
//! | membership      | `MBR#<group>`               | `USER#<member>`    |
//! | group ended     | `MBR#<group>`               | `ENDED`            |
//! | group departures| `MBR#<group>`               | `DEPARTURES`       |
//! | pair (1:1 dedup)| `PAIR#<lower uuid>#<higher>`| `PAIR`             |
//! | user profile    | `USER#<uuid>`               | `PROFILE`          |
//! | handle claim    | `HANDLE#<lowercased handle>`| `HANDLE`           |
//! | handle reserved | `HANDLE#<lowercased handle>`| `RESERVATION`      |
//! | Cognito sub     | `SUB#<sub>`                 | `SUB`              |
//! | connection      | `CONN#<user>`               | `<connection id>`  |
//! | block           | `BLOCK#<blocker>`           | `USER#<blocked>`   |
//! | rate-limit window | `LIMIT#<user>`            | `<limit>#<window ms>#<start ms>` |
//! | send record     | `IDEM#<sender>`             | `<client_message_id>` |
//! | presence watch  | `WATCH#<watched user>`      | `<watcher's connection id>` |
//!
//! Only message items start with `MSG#`, which is what the stream filter keys on; only inbox
//! rows carry a `message_group_uuid` attribute, which keeps the GSI sparse.

use uuid::Uuid;

use crate::validate::Handle;

pub const MESSAGE_PREFIX: &str = "MSG#";
pub const INBOX_PREFIX: &str = "GRP#";
pub const MEMBERSHIP_PREFIX: &str = "MBR#";
pub const PAIR_PREFIX: &str = "PAIR#";
pub const USER_PREFIX: &str = "USER#";
pub const HANDLE_PREFIX: &str = "HANDLE#";
pub const SUB_PREFIX: &str = "SUB#";
/// A user's open WebSocket connections: one partition per user, so fan-out finds all of a
/// member's connections with one Query.
pub const CONNECTION_PREFIX: &str = "CONN#";
/// A user's rate-limit windows (`store/limits.rs`): one item per limit and window.
pub const LIMIT_PREFIX: &str = "LIMIT#";
/// The users one user blocked: one partition per blocker, so their list is one Query and
/// each direction of a pair is one key a transaction can `ConditionCheck`.
pub const BLOCK_PREFIX: &str = "BLOCK#";
/// A user's sends by `client_message_id` (`store/idempotency.rs`): one item per id, put in
/// the send's own transaction, so a repeat is refused by the key alone.
pub const SEND_RECORD_PREFIX: &str = "IDEM#";
/// Who watches a user's presence (`store/presence.rs`): one item per watching connection,
/// under the watched user, so their `$connect`/`$disconnect` finds the watchers with one
/// Query.
pub const WATCH_PREFIX: &str = "WATCH#";

pub const PAIR_SK: &str = "PAIR";
pub const PROFILE_SK: &str = "PROFILE";
pub const HANDLE_SK: &str = "HANDLE";
/// Beside a handle's claim: a sign-up in progress holds the handle until it is confirmed
/// (or its reservation expires).
pub const HANDLE_RESERVATION_SK: &str = "RESERVATION";
pub const SUB_SK: &str = "SUB";
/// Beside a group's memberships: the group's last member left, so nobody will ever be a
/// member again (adding takes a member).
pub const GROUP_ENDED_SK: &str = "ENDED";
/// Beside a group's memberships: how many leaves the group has seen. Every leave rewrites
/// it, conditioned on the value it read, so two leaves never both decide on one reading
/// of who remains (the last member's leave ends the group).
pub const GROUP_DEPARTURES_SK: &str = "DEPARTURES";
/// Beside a group's memberships: how far each member has read (`store/reads.rs`). Not on
/// the membership itself, so that the push's stream filter can take exactly the reads
/// (a stream record carries the whole item: a receipt on the membership would come back
/// with every other write to it).
pub const READ_RECEIPT_PREFIX: &str = "READ#";

/// A primary key of the table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

pub fn message_pk(group: Uuid) -> String {
    format!("{MESSAGE_PREFIX}{group}")
}

pub fn inbox_pk(owner: Uuid) -> String {
    format!("{INBOX_PREFIX}{owner}")
}

pub fn membership(group: Uuid, member: Uuid) -> Key {
    Key::new(
        format!("{MEMBERSHIP_PREFIX}{group}"),
        format!("{USER_PREFIX}{member}"),
    )
}

pub fn read_receipt(group: Uuid, member: Uuid) -> Key {
    Key::new(
        membership_pk(group),
        format!("{READ_RECEIPT_PREFIX}{member}"),
    )
}

pub fn group_ended(group: Uuid) -> Key {
    Key::new(membership_pk(group), GROUP_ENDED_SK)
}

pub fn group_departures(group: Uuid) -> Key {
    Key::new(membership_pk(group), GROUP_DEPARTURES_SK)
}

pub fn membership_pk(group: Uuid) -> String {
    format!("{MEMBERSHIP_PREFIX}{group}")
}

/// The same key whichever of the two starts the conversation, so that a condition on it
/// decides which of two simultaneous "start" requests creates the conversation.
pub fn pair(a: Uuid, b: Uuid) -> Key {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    Key::new(format!("{PAIR_PREFIX}{low}#{high}"), PAIR_SK)
}

pub fn user_profile(user: Uuid) -> Key {
    Key::new(format!("{USER_PREFIX}{user}"), PROFILE_SK)
}

pub fn handle_claim(handle: &Handle) -> Key {
    Key::new(format!("{HANDLE_PREFIX}{}", handle.normalized()), HANDLE_SK)
}

/// In the claim's partition, so one `dynamodb:LeadingKeys` grant covers both.
pub fn handle_reservation(handle: &Handle) -> Key {
    Key::new(
        format!("{HANDLE_PREFIX}{}", handle.normalized()),
        HANDLE_RESERVATION_SK,
    )
}

pub fn cognito_sub(sub: &str) -> Key {
    Key::new(format!("{SUB_PREFIX}{sub}"), SUB_SK)
}

/// One WebSocket connection of `user`, by API Gateway's connection id.
pub fn connection(user: Uuid, connection_id: &str) -> Key {
    Key::new(connections_pk(user), connection_id)
}

pub fn connections_pk(user: Uuid) -> String {
    format!("{CONNECTION_PREFIX}{user}")
}

/// The connection `connection_id` watching `watched`'s presence.
pub fn watch(watched: Uuid, connection_id: &str) -> Key {
    Key::new(watches_pk(watched), connection_id)
}

pub fn watches_pk(watched: Uuid) -> String {
    format!("{WATCH_PREFIX}{watched}")
}

/// One rate-limit window of `user` (`window`: the limit's name, length and start).
pub fn rate_limit(user: Uuid, window: String) -> Key {
    Key::new(format!("{LIMIT_PREFIX}{user}"), window)
}

/// `blocker` blocked `blocked` (one direction; the other is `block(blocked, blocker)`).
pub fn block(blocker: Uuid, blocked: Uuid) -> Key {
    Key::new(blocks_pk(blocker), format!("{USER_PREFIX}{blocked}"))
}

pub fn blocks_pk(blocker: Uuid) -> String {
    format!("{BLOCK_PREFIX}{blocker}")
}

/// The blocked user's id inside a block item's `sk`, if it is one.
pub fn blocked_of_sk(sk: &str) -> Option<Uuid> {
    sk.strip_prefix(USER_PREFIX)
        .and_then(|uuid| Uuid::parse_str(uuid).ok())
}

/// `sender`'s send named `client_message_id` (ids are the client's, so per sender).
pub fn send_record(sender: Uuid, client_message_id: Uuid) -> Key {
    Key::new(
        format!("{SEND_RECORD_PREFIX}{sender}"),
        client_message_id.to_string(),
    )
}

/// The conversation id inside a message item's `pk`, if it is one.
pub fn group_of_message_pk(pk: &str) -> Option<Result<Uuid, uuid::Error>> {
    pk.strip_prefix(MESSAGE_PREFIX).map(Uuid::parse_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);
    const B: Uuid = Uuid::from_u128(0x2222_2222_2222_4222_8222_2222_2222_2222);

    #[test]
    fn message_and_inbox_keys_match_the_original_system() {
        assert_eq!(message_pk(A), "MSG#11111111-1111-4111-8111-111111111111");
        assert_eq!(inbox_pk(B), "GRP#22222222-2222-4222-8222-222222222222");
    }

    #[test]
    fn pair_key_ignores_who_starts() {
        assert_eq!(pair(A, B), pair(B, A));
        assert_eq!(
            pair(B, A).pk,
            "PAIR#11111111-1111-4111-8111-111111111111#22222222-2222-4222-8222-222222222222"
        );
    }

    #[test]
    fn handle_claim_is_case_insensitive() {
        let lower = Handle::parse("andrewbrown").unwrap();
        let mixed = Handle::parse("AndrewBrown").unwrap();
        assert_eq!(handle_claim(&lower), handle_claim(&mixed));
        assert_eq!(handle_claim(&mixed).pk, "HANDLE#andrewbrown");
    }

    #[test]
    fn a_handle_reservation_sits_beside_its_claim() {
        let mixed = Handle::parse("AndrewBrown").unwrap();
        let reservation = handle_reservation(&mixed);
        assert_eq!(
            reservation.pk,
            handle_claim(&mixed).pk,
            "one LeadingKeys grant"
        );
        assert_eq!(reservation.sk, "RESERVATION");
        assert_ne!(
            reservation,
            handle_claim(&mixed),
            "two items of one transaction"
        );
    }

    #[test]
    fn group_is_read_back_from_message_pk() {
        assert_eq!(group_of_message_pk(&message_pk(A)).unwrap().unwrap(), A);
        assert!(group_of_message_pk("MSG#not-a-uuid").unwrap().is_err());
        assert!(group_of_message_pk(&inbox_pk(A)).is_none());
    }

    #[test]
    fn connections_are_keyed_by_user() {
        let key = connection(A, "L0SM9cOFvHcCIhw=");
        assert_eq!(key.pk, "CONN#11111111-1111-4111-8111-111111111111");
        assert_eq!(key.pk, connections_pk(A));
        assert_eq!(key.sk, "L0SM9cOFvHcCIhw=");
        assert!(
            !key.pk.starts_with(MESSAGE_PREFIX),
            "never reaches the stream filter"
        );
    }

    #[test]
    fn a_block_is_one_key_per_direction() {
        assert_eq!(
            block(A, B),
            Key::new(
                "BLOCK#11111111-1111-4111-8111-111111111111",
                "USER#22222222-2222-4222-8222-222222222222"
            )
        );
        assert_ne!(block(A, B), block(B, A));
        assert_eq!(block(A, B).pk, blocks_pk(A));
        assert_eq!(blocked_of_sk(&block(A, B).sk), Some(B));
        assert_eq!(blocked_of_sk("USER#not-a-uuid"), None);
    }

    #[test]
    fn send_records_are_per_sender() {
        let id = Uuid::from_u128(0x3333_3333_3333_4333_8333_3333_3333_3333);
        assert_eq!(
            send_record(A, id),
            Key::new(
                "IDEM#11111111-1111-4111-8111-111111111111",
                "33333333-3333-4333-8333-333333333333"
            )
        );
        assert_ne!(send_record(A, id), send_record(B, id));
    }

    #[test]
    fn key_families_never_share_a_prefix() {
        let prefixes = [
            MESSAGE_PREFIX,
            INBOX_PREFIX,
            MEMBERSHIP_PREFIX,
            PAIR_PREFIX,
            USER_PREFIX,
            HANDLE_PREFIX,
            SUB_PREFIX,
            CONNECTION_PREFIX,
            LIMIT_PREFIX,
            BLOCK_PREFIX,
            SEND_RECORD_PREFIX,
            WATCH_PREFIX,
        ];
        for a in prefixes {
            for b in prefixes {
                if a != b {
                    assert!(!a.starts_with(b), "{a} starts with {b}");
                }
            }
        }
    }
}
