//! `cruddur ddb migrate`: the original's users (CSV) and table → what this system serves.

use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use messaging::migration::{LegacyUser, Plan, plan};
use messaging::store::{Applied, Wrote};
use messaging::{Store, Timestamp};

/// The CSV columns read, by header name (`\copy users to 'users.csv' csv header`).
const COLUMNS: [&str; 4] = ["uuid", "handle", "display_name", "cognito_user_id"];

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The original's PostgreSQL `users` table as CSV with a header; `-` reads stdin.
    #[arg(long)]
    users: PathBuf,
    /// Parallel scan segments.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    segments: u32,
    /// Report what would be written, and write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(store: &Store, args: MigrateArgs) -> anyhow::Result<()> {
    let users = read_users(&args.users)?;
    let scanning = progress("scanned {pos} items {spinner}");
    let found = store
        .scan_for_migration(args.segments, &|items| scanning.inc(items as u64))
        .await?;
    scanning.finish_and_clear();
    let now = Timestamp::now();
    let plan = plan(&users, &found, now).context("the migration cannot start")?;

    let mut summary = format!(
        "scanned {} items ({} messages, {} inbox rows) of table {}\n",
        found.items,
        found.messages,
        found.inbox_rows.len(),
        store.table()
    );
    describe(&mut summary, &plan);
    if args.dry_run {
        writeln!(
            summary,
            "dry run: would make {} conditional writes; wrote nothing",
            plan.writes()
        )?;
        print!("{summary}");
        return Ok(());
    }
    if plan.writes() == 0 {
        writeln!(summary, "nothing to write: the table is already migrated")?;
        print!("{summary}");
        return Ok(());
    }
    let writing = progress("written {pos}/{len} {wide_bar} skipped {msg}");
    writing.set_length(plan.writes() as u64);
    let skipped = std::sync::atomic::AtomicU64::new(0);
    let applied = store
        .apply_migration(&plan, now, &|wrote| {
            if wrote == Wrote::Skipped {
                let n = skipped.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                writing.set_message(n.to_string());
            }
            writing.inc(1);
        })
        .await?;
    writing.finish_and_clear();
    report_applied(&mut summary, &applied)?;
    print!("{summary}");
    Ok(())
}

/// A progress line on stderr when it is a terminal (indicatif draws nothing otherwise).
fn progress(template: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn read_users(path: &PathBuf) -> anyhow::Result<Vec<LegacyUser>> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    }
    parse_users(&text).with_context(|| format!("{}", path.display()))
}

/// Reads the export: columns found by header name, others ignored.
pub fn parse_users(text: &str) -> anyhow::Result<Vec<LegacyUser>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut indexes = [0; 4];
    for (index, name) in indexes.iter_mut().zip(COLUMNS) {
        match column(name) {
            Some(found) => *index = found,
            None => bail!("no column {name:?} in the header (found: {headers:?})"),
        }
    }
    let mut users = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("record {}", line + 1))?;
        let field = |i: usize| record.get(indexes[i]).unwrap_or_default().to_owned();
        users.push(LegacyUser {
            uuid: field(0),
            handle: field(1),
            display_name: field(2),
            cognito_user_id: field(3),
        });
    }
    Ok(users)
}

fn describe(out: &mut String, plan: &Plan) {
    let r = &plan.report;
    let _ = writeln!(
        out,
        "users: {} in the CSV, {} registered before, {} to register, {} refused",
        r.users_in_csv,
        r.users_registered_before,
        plan.users.len(),
        r.users_refused.len()
    );
    for (handle, why) in &r.users_refused {
        let _ = writeln!(out, "  refused {handle:?}: {why}");
    }
    let _ = writeln!(
        out,
        "conversations: {} found, {} left as they are (a member not in the CSV), {} more than one between the same two people (all kept; the pair names the newest)",
        r.conversations,
        r.conversations_with_unknown_members.len(),
        r.extra_conversations_between_same_pair
    );
    for (group, unknown) in &r.conversations_with_unknown_members {
        let unknown: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  left {group}: unknown {}", unknown.join(", "));
    }
    let _ = writeln!(
        out,
        "timestamps: {} rows without a fraction or with a local offset (read as what they are), {} unreadable (kept as written)",
        r.rows_with_odd_timestamps, r.rows_with_unreadable_timestamps
    );
    if !r.unreadable_rows.is_empty() {
        let _ = writeln!(
            out,
            "unreadable inbox rows (left alone): {}",
            r.unreadable_rows.len()
        );
        for key in &r.unreadable_rows {
            let _ = writeln!(out, "  {} / {}", key.pk, key.sk);
        }
    }
    let _ = writeln!(
        out,
        "to write: {} users, {} memberships, {} pairs, {} row completions (last_message_at, member_count), {} lost rows restored",
        plan.users.len(),
        plan.memberships.len(),
        plan.pairs.len(),
        plan.row_updates.len(),
        plan.restored_rows.len()
    );
}

fn report_applied(out: &mut String, applied: &Applied) -> std::fmt::Result {
    for (kind, outcomes) in [
        ("users", applied.users),
        ("memberships", applied.memberships),
        ("restored rows", applied.restored_rows),
        ("row completions", applied.row_updates),
        ("pairs", applied.pairs),
    ] {
        writeln!(
            out,
            "wrote {} {kind} ({} already there or changed since the scan)",
            outcomes.written, outcomes.skipped
        )?;
    }
    for (handle, why) in &applied.user_conflicts {
        writeln!(out, "  not registered {handle:?}: {why}")?;
    }
    writeln!(out, "done: {} writes", applied.written())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name_and_others_ignored() {
        let text = "id,cognito_user_id,email,display_name,handle,uuid,created_at\n\
                    1,sub-1,a@b.c,Andrew Brown,andrewbrown,5ae290ed-55d1-47a0-bc6d-fe2bc2700399,2023-01-01\n";
        let users = parse_users(text).unwrap();
        assert_eq!(
            users,
            vec![LegacyUser {
                uuid: "5ae290ed-55d1-47a0-bc6d-fe2bc2700399".into(),
                handle: "andrewbrown".into(),
                display_name: "Andrew Brown".into(),
                cognito_user_id: "sub-1".into(),
            }]
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let error = parse_users("uuid,handle,display_name\n").unwrap_err();
        assert!(error.to_string().contains("cognito_user_id"), "{error}");
    }
}
