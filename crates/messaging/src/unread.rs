//! Unread counts: the messages of a conversation its member has not read, each counted
//! exactly once whatever the stream's retries, replays and late deliveries do.
//!
//! Plain logic over [`UnreadState`], the part of an inbox row that counting and reading
//! change. The row ([`crate::items::InboxRowItem`]) supplies the rest: whose it is, and the
//! time of the last message it shows (its position).

use uuid::Uuid;

use crate::model::Message;

/// How many of a row's unread messages it names by time (`unread_at`): enough to recognise
/// a message counted before (a replay, or a message committed after a newer one) and to
/// mark read exactly up to a message. The count itself (`unread`) has no bound.
pub const UNREAD_TIMES_KEPT: usize = 20;

/// A message as unread counts need it: when it was sent, and by whom (the owner's own
/// messages never count).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arrival {
    pub created_at: String,
    pub sender: Uuid,
}

impl From<&Message> for Arrival {
    fn from(message: &Message) -> Self {
        Self {
            created_at: message.created_at.clone(),
            sender: message.sender.uuid,
        }
    }
}

/// What a row knows of its owner's unread messages (the attributes of the same names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnreadState {
    /// Messages from others since the owner last read the conversation.
    pub unread: u32,
    /// `created_at` of the newest [`UNREAD_TIMES_KEPT`] of those messages, oldest first.
    pub unread_at: Vec<String>,
    /// `created_at` of the newest message the owner has read: nothing at or before it
    /// counts; empty when nothing is read yet. `None` until the row is first read or
    /// counted; until then the row's position stands for it, so history older than unread
    /// counts never counts.
    pub read_through: Option<String>,
}

impl UnreadState {
    /// Counts the messages of `arrivals` that are unread for `owner` and not counted yet;
    /// returns how many. `position` is the time of the last message the row shows, as
    /// read (before the row moves).
    ///
    /// A message counts if another member sent it after what the owner has read, and this
    /// row has not counted it before. Counted messages are named in `unread_at` until read,
    /// so a message is recognised as counted even when it is older than the row's position
    /// (a replayed batch, or a message committed after a newer one and so delivered in a
    /// later batch). Only when more than [`UNREAD_TIMES_KEPT`] messages are unread can an
    /// old message be unnamed: then one older than every named one is taken as counted,
    /// which can miss an increment but never double one.
    pub fn count(&mut self, owner: Option<Uuid>, position: &str, arrivals: &[Arrival]) -> usize {
        let read_through = self
            .read_through
            .clone()
            .unwrap_or_else(|| position.to_owned());
        let all_named = self.unread as usize <= self.unread_at.len();
        let oldest_named = self.unread_at.first().cloned();
        let mut counted: Vec<String> = Vec::new();
        for arrival in arrivals {
            let at = &arrival.created_at;
            if Some(arrival.sender) == owner
                || *at <= read_through
                || self.unread_at.contains(at)
                || counted.contains(at)
            {
                continue;
            }
            let not_counted_before = at.as_str() > position
                || all_named
                || oldest_named.as_ref().is_some_and(|oldest| at > oldest);
            if not_counted_before {
                counted.push(at.clone());
            }
        }
        // From now on the read mark is explicit: the position moves, what was read does not.
        self.read_through = Some(read_through);
        let added = counted.len();
        self.unread = self
            .unread
            .saturating_add(u32::try_from(added).unwrap_or(u32::MAX));
        self.unread_at.extend(counted);
        self.unread_at.sort();
        self.unread_at.dedup();
        let excess = self.unread_at.len().saturating_sub(UNREAD_TIMES_KEPT);
        self.unread_at.drain(..excess);
        added
    }

    /// The state once the owner has read the conversation up to the message created at
    /// `through`, or `None` if that changes nothing. Messages after `through` stay unread.
    /// `position` is the time of the last message the row shows.
    pub fn read_up_to(&self, position: &str, through: &str) -> Option<Self> {
        let read_through = match &self.read_through {
            Some(read) if read.as_str() > through => read.clone(),
            _ => through.to_owned(),
        };
        let still_unread: Vec<String> = self
            .unread_at
            .iter()
            .filter(|at| at.as_str() > through)
            .cloned()
            .collect();
        let unnamed = (self.unread as usize).saturating_sub(self.unread_at.len());
        let unread = if through >= position {
            // Everything this row counted is at or before its position.
            0
        } else if unnamed == 0
            || self
                .unread_at
                .first()
                .is_some_and(|oldest| through >= oldest.as_str())
        {
            // Unnamed messages are older than every named one, so read too.
            u32::try_from(still_unread.len()).unwrap_or(u32::MAX)
        } else {
            // Read up to a point older than every named message: the unnamed ones may be
            // on either side of it, so the count stays (an over-count, never a loss).
            self.unread
        };
        let unread_at = if unread == 0 {
            Vec::new()
        } else {
            still_unread
        };
        let read = Self {
            unread,
            unread_at,
            read_through: Some(read_through),
        };
        (read != *self).then_some(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);

    fn at(second: u32) -> String {
        format!("2025-01-01T00:00:{second:02}.000000+00:00")
    }

    fn from(sender: Uuid, second: u32) -> Arrival {
        Arrival {
            created_at: at(second),
            sender,
        }
    }

    /// The owner's row as counting sees it: its unread state and its position.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Row {
        state: UnreadState,
        position: String,
    }

    impl Row {
        fn count(&mut self, arrivals: &[Arrival]) -> usize {
            self.state.count(Some(OWNER), &self.position, arrivals)
        }

        fn read_up_to(&self, through: &str) -> Option<Row> {
            let state = self.state.read_up_to(&self.position, through)?;
            Some(Row {
                state,
                position: self.position.clone(),
            })
        }
    }

    /// The owner's row at `second`, nothing unread, read mark as the row's position.
    fn row(second: u32) -> Row {
        Row {
            state: UnreadState::default(),
            position: at(second),
        }
    }

    #[test]
    fn only_others_messages_after_the_read_mark_count() {
        let mut item = row(10);
        let added = item.count(&[from(OTHER, 11), from(OWNER, 12), from(OTHER, 13)]);
        assert_eq!(added, 2);
        assert_eq!(item.state.unread, 2);
        assert_eq!(item.state.unread_at, [at(11), at(13)]);
        // History older than the row's first count never counts.
        assert_eq!(item.state.read_through.as_deref(), Some(at(10).as_str()));
    }

    #[test]
    fn a_message_counted_once_is_never_counted_again() {
        let mut item = row(10);
        item.count(&[from(OTHER, 11), from(OTHER, 12)]);
        // The row moved to 12; the same batch again, and then a message committed after
        // a newer one (so delivered later) that is older than the row's position.
        item.position = at(12);
        let before = item.clone();
        assert_eq!(item.count(&[from(OTHER, 11), from(OTHER, 12)]), 0);
        assert_eq!(item, before);
        let mut late = item.clone();
        let mut late_arrival = from(OTHER, 11);
        late_arrival.created_at = "2025-01-01T00:00:11.500000+00:00".into();
        assert_eq!(late.count(&[late_arrival]), 1, "late, not counted yet");
        assert_eq!(late.state.unread, 3);
    }

    #[test]
    fn a_late_message_older_than_every_named_one_is_taken_as_counted_once_names_overflow() {
        let mut item = row(0);
        let many: Vec<Arrival> = (1..=UNREAD_TIMES_KEPT as u32 + 5)
            .map(|s| from(OTHER, s))
            .collect();
        assert_eq!(item.count(&many), UNREAD_TIMES_KEPT + 5);
        assert_eq!(item.state.unread_at.len(), UNREAD_TIMES_KEPT);
        item.position = at(UNREAD_TIMES_KEPT as u32 + 5);
        // Second 3 is counted but no longer named: a replay must not count it again.
        assert_eq!(item.count(&[from(OTHER, 3)]), 0);
    }

    #[test]
    fn reading_up_to_a_message_keeps_only_later_ones_unread() {
        let mut item = row(10);
        item.count(&[from(OTHER, 11), from(OTHER, 12), from(OTHER, 13)]);
        item.position = at(13);
        let read = item.read_up_to(&at(12)).unwrap();
        assert_eq!(
            (read.state.unread, read.state.unread_at.clone()),
            (1, vec![at(13)])
        );
        assert_eq!(read.state.read_through.as_deref(), Some(at(12).as_str()));
        // A message the page showed but the row has not reached yet never counts later.
        let mut ahead = item.read_up_to(&at(15)).unwrap();
        assert_eq!(ahead.state.unread, 0);
        assert_eq!(ahead.count(&[from(OTHER, 14), from(OTHER, 16)]), 1);
        // Reading again changes nothing.
        assert!(read.read_up_to(&at(12)).is_none());
        assert!(read.read_up_to(&at(11)).is_none(), "never unread");
    }

    #[test]
    fn reading_before_every_named_message_keeps_an_unnamed_count() {
        let mut item = row(0);
        let many: Vec<Arrival> = (1..=UNREAD_TIMES_KEPT as u32 + 5)
            .map(|s| from(OTHER, s))
            .collect();
        item.count(&many);
        item.position = at(UNREAD_TIMES_KEPT as u32 + 5);
        let total = item.state.unread;
        // Read up to second 2: names start at 6, so what the five unnamed are is unknown.
        let read = item.read_up_to(&at(2)).unwrap();
        assert_eq!(read.state.unread, total, "an over-count, never a loss");
        // Up to the oldest named one: every unnamed one is older, so read as well.
        let read = item.read_up_to(&at(6)).unwrap();
        assert_eq!(read.state.unread as usize, UNREAD_TIMES_KEPT - 1);
        // Up to the row's position: everything.
        assert_eq!(item.read_up_to(&at(25)).unwrap().state.unread, 0);
    }
}
