//! `cruddur ddb migrate` as an operator runs it: CSV in, summary out, against DynamoDB Local.

use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use testkit::{TestTable, endpoint};

const ANDREW: &str = "5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
const BAYKO: &str = "b02d00ce-df83-4373-9710-9868564a0809";
const GROUP: &str = "11111111-0000-4000-8000-000000000001";

/// `\copy users to 'users.csv' csv header` of the original's schema (more columns than
/// the migration reads, in the database's order).
const USERS_CSV: &str = "uuid,display_name,handle,email,cognito_user_id,created_at\n\
    5ae290ed-55d1-47a0-bc6d-fe2bc2700399,Andrew Brown,andrewbrown,andrew@example.com,sub-andrew,2023-03-01 10:00:00\n\
    b02d00ce-df83-4373-9710-9868564a0809,Andrew Bayko,bayko,bayko@example.com,sub-bayko,2023-03-01 10:00:00\n";

fn migrate(table: &TestTable, csv: &str, extra: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("cruddur-migrate-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users.csv");
    std::fs::write(&users, csv).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cruddur"))
        .args([
            "--endpoint-url",
            &endpoint(),
            "--table",
            table.store.table(),
        ])
        .args(["ddb", "migrate", "--users"])
        .arg(&users)
        .args(extra)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn original_conversation(table: &TestTable) {
    for (me, other, handle) in [(ANDREW, BAYKO, "bayko"), (BAYKO, ANDREW, "andrewbrown")] {
        let item = [
            ("pk", format!("GRP#{me}")),
            ("sk", "2023-03-20T10:00:00.123456-04:00".to_owned()),
            ("message_group_uuid", GROUP.to_owned()),
            ("message", "this is a filler message".to_owned()),
            ("user_uuid", other.to_owned()),
            ("user_display_name", handle.to_owned()),
            ("user_handle", handle.to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), AttributeValue::S(value)))
        .collect();
        table.put_raw(item).await.unwrap();
    }
}

#[tokio::test]
async fn dry_run_then_run_then_rerun() {
    let table = TestTable::new().await;
    original_conversation(&table).await;
    let before = table.store.scan_all().await.unwrap().len();

    let dry = migrate(&table, USERS_CSV, &["--dry-run", "--segments", "2"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("dry run: would make 7 conditional writes"),
        "{}",
        text(&dry)
    );
    assert_eq!(
        table.store.scan_all().await.unwrap().len(),
        before,
        "wrote nothing"
    );

    let run = migrate(&table, USERS_CSV, &[]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("done: 7 writes"), "{}", text(&run));
    // 3 items per user (uuid, handle, sub), 2 memberships, 1 pair; the 2 rows completed
    // in place.
    assert_eq!(table.store.scan_all().await.unwrap().len(), before + 9);

    let again = migrate(&table, USERS_CSV, &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to write: the table is already migrated"),
        "{}",
        text(&again)
    );
}

#[tokio::test]
async fn handles_differing_only_by_case_stop_it_before_anything_is_written() {
    let table = TestTable::new().await;
    original_conversation(&table).await;
    let csv = format!(
        "{USERS_CSV}99999999-0000-4000-8000-000000000009,Other,BAYKO,o@example.com,sub-o,x\n"
    );

    let output = migrate(&table, &csv, &[]);

    assert!(!output.status.success());
    assert!(text(&output).contains("bayko / BAYKO"), "{}", text(&output));
    assert_eq!(table.store.scan_all().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_csv_without_a_needed_column_is_refused_with_its_name() {
    let table = TestTable::new().await;
    let output = migrate(&table, "uuid,handle,display_name\n", &[]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("cognito_user_id"),
        "{}",
        text(&output)
    );
}
