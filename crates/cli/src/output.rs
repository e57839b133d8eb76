//! Readable terminal output, in the spirit of the original pattern scripts.

use messaging::model::ConversationKind;
use messaging::{InboxEntry, Message};

/// Messages and previews are cut to this many characters on one line.
const PREVIEW_CHARS: usize = 48;

pub fn preview(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= PREVIEW_CHARS {
        one_line
    } else {
        let cut: String = one_line.chars().take(PREVIEW_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// `2024-05-01T10:00:00.000000+00:00` → `2024-05-01 10:00 UTC`.
pub fn short_time(at: &str) -> String {
    match messaging::Timestamp::parse(at) {
        Ok(at) => {
            let at = at.as_datetime();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute()
            )
        }
        Err(_) => at.to_owned(),
    }
}

pub fn message_line(message: &Message) -> String {
    let changed = match (&message.life.deleted_at, &message.life.edited_at) {
        (Some(_), _) => "(deleted) ",
        (None, Some(_)) => "(edited) ",
        (None, None) => "",
    };
    format!(
        "{:<16}{:<22}{changed}{}",
        message.sender.handle,
        short_time(&message.created_at),
        preview(&message.text)
    )
}

/// A conversation: its id, who (the other member, or a group's name, size and last sender),
/// when, how many unread, and the last message.
pub fn inbox_line(row: &InboxEntry) -> String {
    let who = match (row.kind, &row.name) {
        (ConversationKind::Group, Some(name)) => format!(
            "#{name} ({}) {}",
            row.member_count.unwrap_or_default(),
            row.other.handle
        ),
        _ => row.other.handle.clone(),
    };
    let unread = match row.unread {
        0 => String::new(),
        n => format!("[{n}] "),
    };
    format!(
        "{}  {:<15} {:<22}{unread}{}",
        row.group_uuid,
        who,
        short_time(&row.last_message_at),
        preview(&row.last_message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_one_line_and_bounded() {
        assert_eq!(preview("hello\n  there"), "hello there");
        let long = "é".repeat(100);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn times_are_shortened() {
        assert_eq!(
            short_time("2024-05-01T10:07:00.000000+00:00"),
            "2024-05-01 10:07 UTC"
        );
        assert_eq!(short_time("junk"), "junk");
    }

    #[test]
    fn inbox_lines_name_groups_and_count_unread() {
        let mut row = InboxEntry {
            group_uuid: uuid::Uuid::nil(),
            kind: ConversationKind::Direct,
            name: None,
            member_count: Some(2),
            other: messaging::UserSummary {
                uuid: uuid::Uuid::nil(),
                handle: "bayko".into(),
                display_name: "Andrew Bayko".into(),
            },
            last_message: "hi".into(),
            last_message_at: "2024-05-01T10:07:00.000000+00:00".into(),
            unread: 0,
            seen: None,
            edited_at: None,
            deleted: false,
        };
        assert!(inbox_line(&row).ends_with("bayko           2024-05-01 10:07 UTC  hi"));
        row.kind = ConversationKind::Group;
        row.name = Some("Bootcamp".into());
        row.member_count = Some(3);
        row.unread = 2;
        assert!(
            inbox_line(&row).contains("#Bootcamp (3) bayko 2024-05-01 10:07 UTC  [2] hi"),
            "{}",
            inbox_line(&row)
        );
    }
}
