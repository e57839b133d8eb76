//! Pages of messages and of the inbox, and the cursors that join them.

use messaging::page::PageError;
use messaging::{PageRequest, StoreError, Timestamp};
use testkit::TestTable;
use time::macros::datetime;

use crate::text;

#[tokio::test]
async fn message_pages_walk_every_message_once_across_a_year_boundary() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    // 150 messages, one every ten minutes, from 2023-12-31 10:00 to 2024-01-01 10:50.
    let start = datetime!(2023-12-31 10:00 UTC);
    let sent_at: Vec<Timestamp> = (0..150)
        .map(|i| Timestamp::from_datetime(start + time::Duration::minutes(10 * i)))
        .collect();
    let group = table
        .store
        .send_to_user(&andrew, &bayko, text("m0"), sent_at[0])
        .await
        .unwrap()
        .group_uuid;
    for (i, now) in sent_at.iter().enumerate().skip(1) {
        let sender = if i % 2 == 0 { &andrew } else { &bayko };
        table
            .store
            .append_message(sender, group, text(&format!("m{i}")), *now)
            .await
            .unwrap();
    }

    table.requests.reset();
    let mut page = PageRequest::new(7, None).unwrap();
    let mut pages = Vec::new();
    loop {
        let result = table
            .store
            .list_messages(bayko.uuid, group, &page)
            .await
            .unwrap();
        assert!(
            result
                .items
                .windows(2)
                .all(|w| w[0].created_at < w[1].created_at),
            "oldest first within a page"
        );
        pages.push(result.items);
        match result.next_cursor {
            Some(cursor) => page = page.with_cursor(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(pages.len(), 150usize.div_ceil(7));
    assert_eq!(table.requests.of("Query"), pages.len() as u64);
    assert_eq!(table.requests.of("GetItem"), pages.len() as u64);
    // Pages come newest first; reversing them gives the whole conversation in order.
    let walked: Vec<String> = pages.into_iter().rev().flatten().map(|m| m.text).collect();
    let expected: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    assert_eq!(walked, expected);
}

#[tokio::test]
async fn inbox_pages_walk_every_conversation_once_newest_first() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let start = datetime!(2023-12-31 20:00 UTC);
    let mut expected = Vec::new();
    for i in 0..23 {
        let friend = table.user(&format!("friend{i}")).await;
        let now = Timestamp::from_datetime(start + time::Duration::hours(i));
        let sent = table
            .store
            .send_to_user(&friend, &andrew, text(&format!("hi {i}")), now)
            .await
            .unwrap();
        expected.push(sent.group_uuid);
    }
    expected.reverse();

    let mut page = PageRequest::new(10, None).unwrap();
    let mut walked = Vec::new();
    let mut pages = 0;
    loop {
        let result = table.store.list_inbox(andrew.uuid, &page).await.unwrap();
        pages += 1;
        walked.extend(result.items.iter().map(|row| row.group_uuid));
        match result.next_cursor {
            Some(cursor) => page = page.with_cursor(Some(cursor)),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(walked, expected);
}

#[tokio::test]
async fn cursors_from_elsewhere_or_tampered_are_refused_without_reading() {
    let table = TestTable::new().await;
    let andrew = table.user("andrewbrown").await;
    let bayko = table.user("bayko").await;
    let londo = table.user("londo").await;
    let mut groups = Vec::new();
    for other in [&bayko, &londo] {
        for i in 0..3 {
            let sent = table
                .store
                .send_to_user(&andrew, other, text(&format!("{i}")), Timestamp::now())
                .await
                .unwrap();
            groups.push(sent.group_uuid);
        }
    }
    let (with_bayko, with_londo) = (groups[0], groups[3]);
    let first_page = PageRequest::new(1, None).unwrap();
    let bayko_cursor = table
        .store
        .list_messages(andrew.uuid, with_bayko, &first_page)
        .await
        .unwrap()
        .next_cursor
        .unwrap();
    let inbox_cursor = table
        .store
        .list_inbox(andrew.uuid, &first_page)
        .await
        .unwrap()
        .next_cursor
        .unwrap();

    table.requests.reset();
    let cases = [
        // Another conversation's cursor, in a conversation the reader belongs to.
        table
            .store
            .list_messages(
                andrew.uuid,
                with_londo,
                &first_page.with_cursor(Some(bayko_cursor.clone())),
            )
            .await,
        // An inbox cursor used on a conversation.
        table
            .store
            .list_messages(
                andrew.uuid,
                with_bayko,
                &first_page.with_cursor(Some(inbox_cursor.clone())),
            )
            .await,
        // Garbage.
        table
            .store
            .list_messages(
                andrew.uuid,
                with_bayko,
                &first_page.with_cursor(Some("x".into())),
            )
            .await,
    ];
    for result in cases {
        assert!(
            matches!(result, Err(StoreError::Page(PageError::CursorInvalid))),
            "{result:?}"
        );
    }
    // Someone else's inbox cursor.
    let stolen = table
        .store
        .list_inbox(londo.uuid, &first_page.with_cursor(Some(inbox_cursor)))
        .await;
    assert!(
        matches!(stolen, Err(StoreError::Page(PageError::CursorInvalid))),
        "{stolen:?}"
    );
    assert_eq!(table.requests.total(), 0, "refused before any read");
}
