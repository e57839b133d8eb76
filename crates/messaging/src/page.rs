//! Paging through a partition: a bounded limit and an opaque cursor.
//!
//! A cursor is the key of the last item returned, base64url-encoded JSON. It is opaque to
//! clients but not secret: what makes it safe is that the store checks that it names the
//! very partition being read (the caller's inbox, or a conversation the caller belongs to)
//! before using it, so a cursor from elsewhere or an edited one is refused, never followed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
/// A real cursor is ~120 characters; anything far longer is not ours.
const MAX_CURSOR_LEN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("limit must be a whole number from 1 to {MAX_LIMIT}")]
    LimitInvalid,
    #[error("cursor is not valid for this list")]
    CursorInvalid,
}

impl PageError {
    pub fn code(self) -> &'static str {
        match self {
            Self::LimitInvalid => "limit_invalid",
            Self::CursorInvalid => "cursor_invalid",
        }
    }
}

/// What a caller asked for: how many items, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

impl PageRequest {
    pub fn new(limit: u32, cursor: Option<String>) -> Result<Self, PageError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::LimitInvalid);
        }
        Ok(Self { limit, cursor })
    }

    /// From query-string values: `limit` absent means the default, empty `cursor` means none.
    pub fn from_query(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, PageError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => text.trim().parse().map_err(|_| PageError::LimitInvalid)?,
        };
        let cursor = cursor.filter(|c| !c.is_empty()).map(str::to_owned);
        Self::new(limit, cursor)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    pub fn with_cursor(&self, cursor: Option<String>) -> Self {
        Self {
            limit: self.limit,
            cursor,
        }
    }
}

/// One page of a list, and the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorBody {
    pk: String,
    sk: String,
}

/// Encodes the key of the last item of a page.
pub fn encode_cursor(pk: &str, sk: &str) -> String {
    let body = CursorBody {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
    };
    let json = serde_json::to_vec(&body).expect("a struct of two strings serializes");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a cursor for partition `expected_pk`, returning the sort key to continue after.
/// Refuses anything not produced by [`encode_cursor`] for that same partition.
pub fn decode_cursor(cursor: &str, expected_pk: &str) -> Result<String, PageError> {
    if cursor.len() > MAX_CURSOR_LEN {
        return Err(PageError::CursorInvalid);
    }
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| PageError::CursorInvalid)?;
    let body: CursorBody = serde_json::from_slice(&json).map_err(|_| PageError::CursorInvalid)?;
    // Bound to the partition: that is what keeps a cursor inside what the caller may
    // read. The sort key is not checked further: rows written by the original system may
    // hold keys that are not RFC 3339, and a cursor we issued must work.
    if body.pk != expected_pk || body.sk.is_empty() {
        return Err(PageError::CursorInvalid);
    }
    Ok(body.sk)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "GRP#11111111-1111-4111-8111-111111111111";
    const SK: &str = "2023-12-31T23:59:59.999999+00:00";

    #[test]
    fn cursor_round_trips_for_its_own_partition() {
        let cursor = encode_cursor(PK, SK);
        assert_eq!(decode_cursor(&cursor, PK).unwrap(), SK);
    }

    #[test]
    fn cursors_of_rows_with_naive_or_suffixed_keys_work() {
        for sk in [
            "2023-02-01T12:00:00.123456",
            "2024-01-01T00:00:00.000000+00:00#1",
        ] {
            assert_eq!(decode_cursor(&encode_cursor(PK, sk), PK).unwrap(), sk);
        }
    }

    #[test]
    fn cursor_of_another_partition_is_refused() {
        let cursor = encode_cursor("GRP#22222222-2222-4222-8222-222222222222", SK);
        assert_eq!(decode_cursor(&cursor, PK), Err(PageError::CursorInvalid));
    }

    #[test]
    fn tampered_cursors_are_refused() {
        let cursor = encode_cursor(PK, SK);
        let mut flipped = cursor.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let empty_key = encode_cursor(PK, "");
        let extra_field = URL_SAFE_NO_PAD.encode(format!(r#"{{"pk":"{PK}","sk":"{SK}","x":1}}"#));
        for bad in [
            flipped.as_str(),
            "",
            "!!!",
            "e30",
            &empty_key,
            &extra_field,
            &"A".repeat(2000),
        ] {
            assert_eq!(
                decode_cursor(bad, PK),
                Err(PageError::CursorInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_are_bounded_and_defaulted() {
        assert_eq!(
            PageRequest::from_query(None, None).unwrap().limit(),
            DEFAULT_LIMIT
        );
        assert_eq!(
            PageRequest::from_query(Some("7"), Some("")).unwrap(),
            PageRequest::new(7, None).unwrap()
        );
        for bad in ["0", "101", "-1", "ten", "1.5", ""] {
            assert_eq!(
                PageRequest::from_query(Some(bad), None),
                Err(PageError::LimitInvalid),
                "{bad}"
            );
        }
    }
}
