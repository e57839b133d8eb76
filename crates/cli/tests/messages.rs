//! `cruddur messages send|edit|delete` as a developer runs them, against DynamoDB Local.

use std::process::{Command, Output};

use testkit::{TestTable, endpoint};

fn cruddur(table: &TestTable, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cruddur"))
        .args([
            "--endpoint-url",
            &endpoint(),
            "--table",
            table.store.table(),
            "messages",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// `sent <uuid> in <group> at <created_at>` → (uuid, group).
fn sent(line: &str) -> (String, String) {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (words[0], words[2], words[4]),
        ("sent", "in", "at"),
        "{line}"
    );
    (words[1].to_owned(), words[3].to_owned())
}

#[tokio::test]
async fn send_named_then_edit_then_delete() {
    let table = TestTable::new().await;
    table.user("andrewbrown").await;
    table.user("bayko").await;
    let id = uuid::Uuid::new_v4().to_string();
    let send = [
        "send",
        "--as",
        "andrewbrown",
        "--to",
        "bayko",
        "--client-message-id",
        &id,
        "Helo",
    ];

    let first = stdout(&cruddur(&table, &send));
    let repeat = stdout(&cruddur(&table, &send));

    assert_eq!(first, repeat, "a repeat answers the first send");
    let (message, group) = sent(&first);
    let messages = table
        .store
        .conversation_messages(
            group.parse().unwrap(),
            &messaging::PageRequest::new(10, None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(messages.items.len(), 1, "written once");
    // The same id for another text is refused.
    let mut other = send;
    other[7] = "Hi";
    assert!(!cruddur(&table, &other).status.success());

    let edited = stdout(&cruddur(
        &table,
        &["edit", "--as", "andrewbrown", &group, &message, "Hello"],
    ));
    assert!(
        edited.starts_with(&format!("{message}  revision 1")),
        "{edited}"
    );
    assert!(edited.contains("(edited) Hello"), "{edited}");

    // Only the sender: bayko's delete is refused and changes nothing.
    let refused = cruddur(&table, &["delete", "--as", "bayko", &group, &message]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no message"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let deleted = stdout(&cruddur(
        &table,
        &["delete", "--as", "andrewbrown", &group, &message],
    ));
    assert!(
        deleted.starts_with(&format!("{message}  revision 2")),
        "{deleted}"
    );
    assert!(deleted.trim_end().ends_with("(deleted)"), "{deleted}");
}
