//! Demo data: the original course's users, two conversations and a group. Idempotent: users
//! that exist are kept, conversations that exist are not written again.

use messaging::coalesce::Newest;
use messaging::store::{NewUser, Registration, RowPositions};
use messaging::validate::{DisplayName, GroupName, Handle, MessageText};
use messaging::{Store, Timestamp, User};

/// Seeded users: handle, display name, Cognito sub (fixed, so local dev tokens for them
/// are stable across reseeds).
pub const DEMO_USERS: [(&str, &str, &str); 3] = [
    (
        "andrewbrown",
        "Andrew Brown",
        "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e01",
    ),
    (
        "bayko",
        "Andrew Bayko",
        "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e02",
    ),
    (
        "londo",
        "Londo Mollari",
        "5f8e3b52-0b4c-4d8e-9b0a-6f2a1c9d7e03",
    ),
];

/// Stable conversation ids, so the request events in `events/` find the demo data. The
/// first is the original seed script's.
const WITH_BAYKO_GROUP: uuid::Uuid = uuid::uuid!("5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
const WITH_LONDO_GROUP: uuid::Uuid = uuid::uuid!("a7f3c9d2-1b4e-4f6a-9c8d-2e5f7a1b3c4d");
/// The demo group of all three (`events/api-*-message-group*.json` name it).
pub const BOOTCAMP_GROUP: uuid::Uuid = uuid::uuid!("b7e4c2a9-3f1d-4e8b-a6c5-9d0e1f2a3b4c");
const BOOTCAMP_NAME: &str = "Bootcamp";

/// (sender: index into the demo users; minutes before now; text)
const BOOTCAMP: [(usize, i64, &str); 4] = [
    (
        0,
        50,
        "Welcome to the bootcamp group: everyone's inbox shows it, with how much is unread.",
    ),
    (1, 45, "Group conversations at last. Does it scale?"),
    (
        2,
        40,
        "Fifty of us, Mr. Brown, all moved in one transaction per batch.",
    ),
    (
        0,
        20,
        "And reading the newest page marks it read. Open it to clear the count.",
    ),
];

/// (sender: 0 = andrewbrown, 1 = the other member; minutes before now; text)
const WITH_BAYKO: [(usize, i64, &str); 6] = [
    (
        0,
        95,
        "Bayko, did the messaging tables survive the migration to Rust?",
    ),
    (
        1,
        90,
        "They did. Every inbox row moves in one transaction now, delete and put together.",
    ),
    (
        0,
        84,
        "And last year's conversations? The old year filter hid them every January.",
    ),
    (
        1,
        80,
        "Gone. Pages walk the whole history with a cursor, no begins_with on the year.",
    ),
    (
        0,
        62,
        "What happens when two of us write in the same microsecond?",
    ),
    (
        1,
        61,
        "The second message takes the next microsecond. Nothing is overwritten.",
    ),
];

const WITH_LONDO: [(usize, i64, &str); 3] = [
    (
        1,
        30,
        "Mr. Brown, I hear your messages now arrive in order. Even on the first of January.",
    ),
    (
        0,
        25,
        "They do, Londo. The stream keeps every inbox in step with the newest message.",
    ),
    (
        1,
        12,
        "Then I shall write more often. Expect a great many messages.",
    ),
];

pub async fn run(store: &Store) -> anyhow::Result<()> {
    store.create_table_if_missing().await?;
    let mut users = Vec::with_capacity(DEMO_USERS.len());
    for (handle, display_name, sub) in DEMO_USERS {
        let new = NewUser {
            handle: Handle::parse(handle)?,
            display_name: DisplayName::parse(display_name)?,
            cognito_sub: sub.to_owned(),
        };
        let registration = store.register_user(new, Timestamp::now()).await?;
        if let Registration::Created(user) = &registration {
            println!("user {} added ({})", user.handle, user.uuid);
        }
        users.push(registration.user().clone());
    }
    for (other, group, script) in [
        (1, WITH_BAYKO_GROUP, &WITH_BAYKO[..]),
        (2, WITH_LONDO_GROUP, &WITH_LONDO[..]),
    ] {
        let (a, b) = (&users[0], &users[other]);
        if let Some(group) = store.conversation_between(a.uuid, b.uuid, true).await? {
            println!("conversation {} ↔ {} exists ({group})", a.handle, b.handle);
            continue;
        }
        let group = write_conversation(store, [a, b], group, script).await?;
        println!("conversation {} ↔ {} added ({group})", a.handle, b.handle);
    }
    if store.is_member(BOOTCAMP_GROUP, users[0].uuid).await? {
        println!("group {BOOTCAMP_NAME} exists ({BOOTCAMP_GROUP})");
    } else {
        write_group(store, &users).await?;
        println!(
            "group {BOOTCAMP_NAME} of {} added ({BOOTCAMP_GROUP})",
            users.len()
        );
    }
    Ok(())
}

async fn write_group(store: &Store, users: &[User]) -> anyhow::Result<()> {
    let now = Timestamp::now().as_datetime();
    let at = |minutes: i64| Timestamp::from_datetime(now - time::Duration::minutes(minutes));
    let (creator, first_minutes, first_text) = BOOTCAMP[0];
    let others: Vec<User> = users
        .iter()
        .filter(|user| user.uuid != users[creator].uuid)
        .cloned()
        .collect();
    let first = store
        .create_group_as(
            &users[creator],
            &GroupName::parse(BOOTCAMP_NAME)?,
            &others,
            MessageText::parse(first_text)?,
            at(first_minutes),
            BOOTCAMP_GROUP,
        )
        .await?;
    let mut messages = vec![first];
    for &(sender, minutes, text) in &BOOTCAMP[1..] {
        let message = store
            .append_message(
                &users[sender],
                BOOTCAMP_GROUP,
                MessageText::parse(text)?,
                at(minutes),
            )
            .await?;
        messages.push(message);
    }
    if let Some(batch) = Newest::of(messages) {
        store
            .advance_conversation(&batch, &RowPositions::disabled())
            .await?;
    }
    Ok(())
}

async fn write_conversation(
    store: &Store,
    pair: [&User; 2],
    group: uuid::Uuid,
    script: &[(usize, i64, &str)],
) -> anyhow::Result<uuid::Uuid> {
    let now = Timestamp::now().as_datetime();
    let speaker = |index: usize| pair[index];
    let at = |minutes: i64| Timestamp::from_datetime(now - time::Duration::minutes(minutes));
    let (first_sender, first_minutes, first_text) = script[0];
    let first_recipient = pair[1 - first_sender];
    let first = store
        .send_to_user_or_create(
            speaker(first_sender),
            first_recipient,
            MessageText::parse(first_text)?,
            at(first_minutes),
            group,
        )
        .await?;
    let group = first.group_uuid;
    let mut messages = vec![first];
    for &(sender, minutes, text) in &script[1..] {
        let message = store
            .append_message(
                speaker(sender),
                group,
                MessageText::parse(text)?,
                at(minutes),
            )
            .await?;
        messages.push(message);
    }
    // No stream runs during seeding: apply the messages as one batch here, which moves the
    // inbox rows to the last one and counts the others' messages as unread.
    if let Some(batch) = Newest::of(messages) {
        store
            .advance_conversation(&batch, &RowPositions::disabled())
            .await?;
    }
    Ok(group)
}
