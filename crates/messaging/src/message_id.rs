//! Message uuids that say where the message is.
//!
//! A message is stored at `MSG#<group>` / `<created_at>`, and the API addresses it as
//! `{message_group_uuid}/{message_uuid}`. So that finding it from that address is one
//! `GetItem` with nothing more written per send, a message's uuid is a UUIDv7 carrying its
//! `created_at` to the microsecond (RFC 9562, section 5.7, with the sub-millisecond
//! fraction in `rand_a` as section 6.2, "Method 3", allows:
//! https://www.rfc-editor.org/rfc/rfc9562#section-6.2): 48 bits of Unix milliseconds,
//! 12 bits of fraction (4096 steps per millisecond, so every microsecond has its own
//! value), then 62 random bits. The uuid stays opaque to clients, sorts by time like the
//! messages themselves, and is as unguessable as the 62 random bits make it (which the
//! API does not rely on: every read and write checks membership).
//!
//! The original system's messages (and any written before this scheme) carry UUIDv4s;
//! [`location`] says nothing about them, and the store finds them by reading their
//! conversation (see `Store::find_message`).

use time::OffsetDateTime;
use uuid::{Builder, Uuid, Variant, Version};

use crate::timestamp::Timestamp;

const MICROS_PER_MILLI: u64 = 1_000;
const FRACTION_STEPS: u64 = 4_096;

/// A fresh message uuid for a message written at `at`. Instants before 1970 or beyond
/// the 48-bit millisecond range (year 10889) cannot be carried: they get a UUIDv4.
pub fn message_uuid_at(at: Timestamp) -> Uuid {
    let micros = at.as_datetime().unix_timestamp_nanos() / 1_000;
    let Ok(micros) = u64::try_from(micros) else {
        return Uuid::new_v4();
    };
    let millis = micros / MICROS_PER_MILLI;
    if millis >= 1 << 48 {
        return Uuid::new_v4();
    }
    let fraction = (micros % MICROS_PER_MILLI) * FRACTION_STEPS / MICROS_PER_MILLI;
    let mut bytes = *Uuid::new_v4().as_bytes();
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    let fraction = u16::try_from(fraction).unwrap_or(0).to_be_bytes();
    bytes[6] = fraction[0];
    bytes[7] = fraction[1];
    Builder::from_bytes(bytes)
        .with_variant(Variant::RFC4122)
        .with_version(Version::SortRand)
        .into_uuid()
}

/// The `created_at` a message uuid of this scheme carries; `None` for any other uuid.
pub fn location(uuid: Uuid) -> Option<Timestamp> {
    if uuid.get_version() != Some(Version::SortRand) {
        return None;
    }
    let bytes = uuid.as_bytes();
    let mut millis = [0u8; 8];
    millis[2..].copy_from_slice(&bytes[..6]);
    let millis = u64::from_be_bytes(millis);
    let fraction = u64::from(u16::from_be_bytes([bytes[6], bytes[7]]) & 0x0fff);
    // The inverse of `fraction = floor(micro * 4096 / 1000)`: each step is 0.244 µs wide,
    // so exactly one whole microsecond maps to a given step, the smallest not below it.
    let micro = (fraction * MICROS_PER_MILLI).div_ceil(FRACTION_STEPS);
    if micro >= MICROS_PER_MILLI {
        return None;
    }
    let nanos = i128::from(millis * MICROS_PER_MILLI + micro) * 1_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .map(Timestamp::from_datetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_microsecond_of_a_millisecond_round_trips() {
        let base = Timestamp::parse("2026-12-01T06:00:00.123000+00:00").unwrap();
        let mut at = base;
        for _ in 0..1_000 {
            let uuid = message_uuid_at(at);
            assert_eq!(uuid.get_version(), Some(Version::SortRand));
            assert_eq!(uuid.get_variant(), Variant::RFC4122);
            assert_eq!(location(uuid), Some(at), "{uuid} for {at}");
            at = at.next_micro();
        }
    }

    #[test]
    fn the_stored_text_of_the_instant_comes_back() {
        let text = "2023-03-21T23:04:53.017981+00:00";
        let uuid = message_uuid_at(Timestamp::parse(text).unwrap());
        assert_eq!(location(uuid).unwrap().to_string(), text);
    }

    #[test]
    fn uuids_of_one_instant_differ_and_later_instants_sort_later() {
        let at = Timestamp::parse("2026-12-01T06:00:00.999999+00:00").unwrap();
        assert_ne!(message_uuid_at(at), message_uuid_at(at));
        assert!(message_uuid_at(at) < message_uuid_at(at.next_micro()));
    }

    #[test]
    fn other_uuids_have_no_location() {
        assert_eq!(location(Uuid::new_v4()), None);
        assert_eq!(location(Uuid::nil()), None);
        // A v7 whose fraction is beyond the last microsecond's step was not made here.
        let forged = Builder::from_bytes([0, 0, 0, 0, 0, 1, 0x0f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0])
            .with_variant(Variant::RFC4122)
            .with_version(Version::SortRand)
            .into_uuid();
        assert_eq!(location(forged), None);
    }

    #[test]
    fn instants_before_1970_get_a_v4() {
        let at = Timestamp::parse("1969-12-31T23:59:59.000000+00:00").unwrap();
        assert_eq!(message_uuid_at(at).get_version(), Some(Version::Random));
    }
}
