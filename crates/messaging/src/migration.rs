//! Bringing a table written by the original Cruddur into service.
//!
//! The original wrote only messages (`MSG#`) and inbox rows (`GRP#`), kept users in
//! PostgreSQL, and had bugs that show up in real tables. This module decides, from what a
//! scan of the table found and the users exported as CSV, what this system needs written:
//! the user directory, memberships, pairs, and on inbox rows the `last_message_at` and
//! `member_count` the fan-out relies on. It is pure; `Store::apply_migration` writes the
//! plan with conditions, so a plan made from a stale scan can never overwrite anything.
//!
//! Never planned: rewriting or deleting a message, changing a row's key.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use crate::items::{InboxRowItem, MembershipItem, PairItem, UserItem};
use crate::keys::{self, Key};
use crate::model::User;
use crate::timestamp::Timestamp;
use crate::validate::{DisplayName, Handle};

/// A row of the original's PostgreSQL `users` table, as exported to CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyUser {
    pub uuid: String,
    pub handle: String,
    pub display_name: String,
    pub cognito_user_id: String,
}

/// What a scan of the table found that matters to the migration.
#[derive(Debug, Default)]
pub struct Found {
    pub items: usize,
    pub messages: usize,
    pub inbox_rows: Vec<InboxRowItem>,
    /// Inbox rows that cannot be read (missing attributes, a group id that is no uuid).
    pub unreadable_rows: Vec<Key>,
    pub memberships: HashSet<(Uuid, Uuid)>,
    pub pairs: HashSet<String>,
    pub profiles: HashSet<Uuid>,
}

impl Found {
    /// What two scans (segments of one scan) found together.
    pub fn merge(mut self, other: Found) -> Found {
        self.items += other.items;
        self.messages += other.messages;
        self.inbox_rows.extend(other.inbox_rows);
        self.unreadable_rows.extend(other.unreadable_rows);
        self.memberships.extend(other.memberships);
        self.pairs.extend(other.pairs);
        self.profiles.extend(other.profiles);
        self
    }

    /// Takes note of one scanned item.
    pub fn add(&mut self, item: HashMap<String, AttributeValue>) {
        self.items += 1;
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(value)) => value.clone(),
            _ => String::new(),
        };
        let (pk, sk) = (text("pk"), text("sk"));
        if pk.starts_with(keys::MESSAGE_PREFIX) {
            self.messages += 1;
        } else if pk.starts_with(keys::INBOX_PREFIX) {
            match serde_dynamo::from_item::<_, InboxRowItem>(item) {
                Ok(row) => self.inbox_rows.push(row),
                Err(_) => self.unreadable_rows.push(Key::new(pk, sk)),
            }
        } else if pk.starts_with(keys::MEMBERSHIP_PREFIX) {
            if let Ok(membership) = serde_dynamo::from_item::<_, MembershipItem>(item) {
                self.memberships
                    .insert((membership.group_uuid, membership.user_uuid));
            }
        } else if pk.starts_with(keys::PAIR_PREFIX) {
            self.pairs.insert(pk);
        } else if pk.starts_with(keys::USER_PREFIX)
            && sk == keys::PROFILE_SK
            && let Ok(profile) = serde_dynamo::from_item::<_, UserItem>(item)
        {
            self.profiles.insert(profile.user_uuid);
        }
    }
}

/// Why the migration refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Handles are unique regardless of case here; the original allowed these.
    #[error("handles that differ only by case: {}", format_groups(.0))]
    CaseDuplicateHandles(Vec<Vec<String>>),
}

fn format_groups(groups: &[Vec<String>]) -> String {
    groups
        .iter()
        .map(|group| group.join(" / "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `last_message_at` and `member_count` for a row the original wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowUpdate {
    pub key: Key,
    pub group: Uuid,
    pub last_message_at: String,
    pub member_count: u32,
}

/// What to write.
#[derive(Debug, Default)]
pub struct Plan {
    pub users: Vec<User>,
    pub memberships: Vec<MembershipItem>,
    pub pairs: Vec<PairItem>,
    pub row_updates: Vec<RowUpdate>,
    /// Rows of members the original lost (its delete-then-put was not atomic).
    pub restored_rows: Vec<InboxRowItem>,
    pub report: Report,
}

impl Plan {
    pub fn writes(&self) -> usize {
        self.users.len()
            + self.memberships.len()
            + self.pairs.len()
            + self.row_updates.len()
            + self.restored_rows.len()
    }
}

/// What the plan found, for the summary. Every bug of the original is counted here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub users_in_csv: usize,
    pub users_registered_before: usize,
    /// Users that cannot be registered (invalid handle or name, no Cognito id, a Cognito id
    /// shared with another user, not a uuid), with why.
    pub users_refused: Vec<(String, String)>,
    pub conversations: usize,
    /// Conversations with a member not in the CSV (or refused): left as they are.
    pub conversations_with_unknown_members: Vec<(Uuid, Vec<Uuid>)>,
    /// Further conversations between two people who already have one (the original
    /// created one per "new message"); all stay readable, the pair names the newest.
    pub extra_conversations_between_same_pair: usize,
    /// Row times without a fraction or with a non-UTC offset, read as what they are.
    pub rows_with_odd_timestamps: usize,
    /// Row times that are not RFC 3339 at all; kept as written.
    pub rows_with_unreadable_timestamps: usize,
    pub unreadable_rows: Vec<Key>,
}

/// Decides what to write. Fails only when users collide by case.
pub fn plan(users: &[LegacyUser], found: &Found, now: Timestamp) -> Result<Plan, PlanError> {
    refuse_case_duplicates(users)?;
    let mut plan = Plan::default();
    plan.report.users_in_csv = users.len();
    plan.report.unreadable_rows = found.unreadable_rows.clone();

    let known = known_users(users, found, &mut plan);

    let mut by_group: BTreeMap<Uuid, Vec<&InboxRowItem>> = BTreeMap::new();
    for row in &found.inbox_rows {
        by_group
            .entry(row.message_group_uuid)
            .or_default()
            .push(row);
    }
    plan.report.conversations = by_group.len();

    let mut planner = Planner {
        found,
        known,
        now,
        plan,
        pair_candidates: BTreeMap::new(),
    };
    for (group, rows) in by_group {
        planner.add_conversation(group, &rows);
    }
    Ok(planner.with_pairs())
}

/// The plan while it is made, conversation by conversation.
struct Planner<'f> {
    found: &'f Found,
    known: HashMap<Uuid, User>,
    now: Timestamp,
    plan: Plan,
    /// Per pair of people, their conversations: (newest message time, conversation,
    /// oldest message time) each.
    pair_candidates: BTreeMap<String, Vec<(String, Uuid, String)>>,
}

impl Planner<'_> {
    /// Plans what one conversation needs, unless it names someone not known.
    fn add_conversation(&mut self, group: Uuid, rows: &[&InboxRowItem]) {
        let mut members: BTreeSet<Uuid> = BTreeSet::new();
        let mut owners: BTreeSet<Uuid> = BTreeSet::new();
        for row in rows {
            if let Some(owner) = row.owner() {
                owners.insert(owner);
                members.insert(owner);
            }
            members.insert(row.user_uuid);
        }
        let unknown: Vec<Uuid> = members
            .iter()
            .filter(|member| !self.known.contains_key(member))
            .copied()
            .collect();
        if !unknown.is_empty() {
            self.plan
                .report
                .conversations_with_unknown_members
                .push((group, unknown));
            return;
        }
        let member_count = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let times: Vec<String> = rows
            .iter()
            .map(|row| read_time(row, &mut self.plan.report))
            .collect();
        let newest = rows
            .iter()
            .zip(&times)
            .max_by(|a, b| a.1.cmp(b.1))
            .map(|(row, at)| (*row, at.clone()));
        let oldest = times
            .iter()
            .min()
            .cloned()
            .unwrap_or_else(|| self.now.to_string());

        self.complete_rows(group, rows, &times, member_count);
        for member in &members {
            if !self.found.memberships.contains(&(group, *member)) {
                self.plan
                    .memberships
                    .push(MembershipItem::new(group, *member, &oldest));
            }
        }
        if let Some((newest_row, newest_at)) = &newest {
            self.restore_lost_rows(
                group,
                &members,
                &owners,
                newest_row,
                newest_at,
                member_count,
            );
        }
        if members.len() == 2 {
            let mut pair = members.iter();
            if let (Some(&a), Some(&b), Some((_, newest_at))) = (pair.next(), pair.next(), &newest)
            {
                let key = keys::pair(a, b);
                self.pair_candidates.entry(key.pk).or_default().push((
                    newest_at.clone(),
                    group,
                    oldest.clone(),
                ));
            }
        }
    }

    /// Rows lacking `last_message_at` or `member_count` get them (`times` are the rows'
    /// times, in the order of `rows`).
    fn complete_rows(
        &mut self,
        group: Uuid,
        rows: &[&InboxRowItem],
        times: &[String],
        member_count: u32,
    ) {
        for (row, at) in rows.iter().zip(times) {
            if row.last_message_at.is_none() || row.member_count.is_none() {
                self.plan.row_updates.push(RowUpdate {
                    key: Key::new(&row.pk, &row.sk),
                    group,
                    last_message_at: row.last_message_at.clone().unwrap_or_else(|| at.clone()),
                    member_count: row.member_count.unwrap_or(member_count),
                });
            }
        }
    }

    /// A member with no row of the conversation (the original deleted the old row, then
    /// crashed before the put) gets one at the newest message, or the fan-out would wait
    /// for it forever.
    fn restore_lost_rows(
        &mut self,
        group: Uuid,
        members: &BTreeSet<Uuid>,
        owners: &BTreeSet<Uuid>,
        newest: &InboxRowItem,
        newest_at: &str,
        member_count: u32,
    ) {
        for member in members.difference(owners) {
            // In a conversation of two, the other member is the one who still has a row.
            let Some(other) = members
                .iter()
                .find(|m| *m != member)
                .and_then(|m| self.known.get(m))
            else {
                continue;
            };
            self.plan.restored_rows.push(InboxRowItem {
                pk: keys::inbox_pk(*member),
                sk: newest_at.to_owned(),
                message_group_uuid: group,
                message: newest.message.clone(),
                user_uuid: other.uuid,
                user_display_name: other.display_name.as_str().to_owned(),
                user_handle: other.handle.as_str().to_owned(),
                last_message_at: Some(newest_at.to_owned()),
                member_count: Some(member_count),
                ..InboxRowItem::default()
            });
        }
    }

    /// The plan, with a pair for every two people who have no pair yet, naming their
    /// conversation with the newest message.
    fn with_pairs(mut self) -> Plan {
        for (pk, mut candidates) in self.pair_candidates {
            self.plan.report.extra_conversations_between_same_pair += candidates.len() - 1;
            if self.found.pairs.contains(&pk) {
                continue;
            }
            candidates.sort();
            if let Some((_, group, created_at)) = candidates.pop() {
                self.plan.pairs.push(PairItem {
                    pk,
                    sk: keys::PAIR_SK.to_owned(),
                    group_uuid: group,
                    created_at,
                });
            }
        }
        self.plan
    }
}

fn refuse_case_duplicates(users: &[LegacyUser]) -> Result<(), PlanError> {
    let mut by_lowercase: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for user in users {
        by_lowercase
            .entry(user.handle.trim().to_lowercase())
            .or_default()
            .push(user.handle.clone());
    }
    let collisions: Vec<Vec<String>> = by_lowercase
        .into_values()
        .filter(|handles| handles.len() > 1)
        .collect();
    if collisions.is_empty() {
        Ok(())
    } else {
        Err(PlanError::CaseDuplicateHandles(collisions))
    }
}

/// Users a migrated conversation may name: the CSV's valid ones, by uuid. Registers those
/// the table does not have yet.
fn known_users(users: &[LegacyUser], found: &Found, plan: &mut Plan) -> HashMap<Uuid, User> {
    let mut known = HashMap::new();
    let mut subs: HashMap<String, String> = HashMap::new();
    for legacy in users {
        let user = match to_user(legacy) {
            Ok(user) => user,
            Err(reason) => {
                plan.report
                    .users_refused
                    .push((legacy.handle.clone(), reason));
                continue;
            }
        };
        if let Some(first) = subs.get(&user.cognito_sub) {
            plan.report.users_refused.push((
                legacy.handle.clone(),
                format!("cognito_user_id is also {first}'s"),
            ));
            continue;
        }
        subs.insert(user.cognito_sub.clone(), legacy.handle.clone());
        if found.profiles.contains(&user.uuid) {
            plan.report.users_registered_before += 1;
        } else {
            plan.users.push(user.clone());
        }
        known.insert(user.uuid, user);
    }
    known
}

fn to_user(legacy: &LegacyUser) -> Result<User, String> {
    let uuid = Uuid::parse_str(legacy.uuid.trim()).map_err(|_| "uuid is not a uuid".to_owned())?;
    let handle = Handle::parse(legacy.handle.trim()).map_err(|err| format!("handle: {err}"))?;
    let display_name =
        DisplayName::parse(legacy.display_name.trim()).map_err(|err| format!("name: {err}"))?;
    let cognito_sub = legacy.cognito_user_id.trim();
    if cognito_sub.is_empty() {
        return Err("no cognito_user_id".into());
    }
    Ok(User {
        uuid,
        handle,
        display_name,
        cognito_sub: cognito_sub.to_owned(),
    })
}

/// The row's time in this system's format. The original wrote `isoformat()` of local or
/// naive times: without a fraction when it was zero, with the machine's offset.
fn read_time(row: &InboxRowItem, report: &mut Report) -> String {
    let raw = row.last_message_at.as_deref().unwrap_or(&row.sk);
    match Timestamp::parse(raw) {
        Ok(at) => {
            let canonical = at.to_string();
            if canonical != raw {
                report.rows_with_odd_timestamps += 1;
            }
            canonical
        }
        Err(_) => {
            report.rows_with_unreadable_timestamps += 1;
            raw.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(uuid: u128, handle: &str) -> LegacyUser {
        LegacyUser {
            uuid: Uuid::from_u128(uuid).to_string(),
            handle: handle.into(),
            display_name: format!("Name {handle}"),
            cognito_user_id: format!("sub-{handle}"),
        }
    }

    fn row(owner: u128, other: u128, group: u128, sk: &str) -> InboxRowItem {
        InboxRowItem {
            pk: keys::inbox_pk(Uuid::from_u128(owner)),
            sk: sk.into(),
            message_group_uuid: Uuid::from_u128(group),
            message: format!("last of {group}"),
            user_uuid: Uuid::from_u128(other),
            user_display_name: "Other".into(),
            user_handle: "other".into(),
            last_message_at: None,
            member_count: None,
            ..InboxRowItem::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00.000000+00:00").unwrap()
    }

    fn found(rows: Vec<InboxRowItem>) -> Found {
        Found {
            inbox_rows: rows,
            ..Found::default()
        }
    }

    #[test]
    fn handles_that_differ_only_by_case_stop_the_migration_and_are_listed() {
        let users = [legacy(1, "Bayko"), legacy(2, "bayko"), legacy(3, "londo")];
        let error = plan(&users, &Found::default(), now()).unwrap_err();
        assert_eq!(
            error,
            PlanError::CaseDuplicateHandles(vec![vec!["Bayko".into(), "bayko".into()]])
        );
        assert!(error.to_string().contains("Bayko / bayko"));
    }

    #[test]
    fn a_conversation_gets_memberships_counts_times_and_its_pair() {
        let users = [legacy(1, "andrew"), legacy(2, "bayko")];
        let rows = vec![
            row(1, 2, 10, "2023-03-20T10:00:00.123456-04:00"),
            row(2, 1, 10, "2023-03-20T10:00:00.123456-04:00"),
        ];
        let plan = plan(&users, &found(rows), now()).unwrap();
        assert_eq!(plan.users.len(), 2);
        assert_eq!(plan.memberships.len(), 2);
        assert_eq!(plan.pairs.len(), 1);
        assert_eq!(plan.pairs[0].group_uuid, Uuid::from_u128(10));
        assert_eq!(plan.row_updates.len(), 2);
        // A local offset is read as what it is: 10:00 at -04:00 is 14:00 UTC.
        assert_eq!(
            plan.row_updates[0].last_message_at,
            "2023-03-20T14:00:00.123456+00:00"
        );
        assert_eq!(plan.row_updates[0].member_count, 2);
        assert_eq!(plan.report.rows_with_odd_timestamps, 2);
        assert!(plan.restored_rows.is_empty());
    }

    #[test]
    fn the_pair_names_the_conversation_with_the_newest_message() {
        let users = [legacy(1, "andrew"), legacy(2, "bayko")];
        let rows = vec![
            row(1, 2, 10, "2023-03-20T10:00:00+00:00"),
            row(2, 1, 10, "2023-03-20T10:00:00+00:00"),
            row(1, 2, 11, "2023-05-01T09:00:00+00:00"),
            row(2, 1, 11, "2023-05-01T09:00:00+00:00"),
            row(1, 2, 12, "2023-04-01T09:00:00+00:00"),
            row(2, 1, 12, "2023-04-01T09:00:00+00:00"),
        ];
        let plan = plan(&users, &found(rows), now()).unwrap();
        assert_eq!(plan.pairs.len(), 1);
        assert_eq!(plan.pairs[0].group_uuid, Uuid::from_u128(11));
        assert_eq!(plan.report.extra_conversations_between_same_pair, 2);
        assert_eq!(
            plan.memberships.len(),
            6,
            "every conversation stays readable"
        );
    }

    #[test]
    fn a_conversation_with_someone_not_in_the_csv_is_left_as_it_is() {
        let users = [legacy(1, "andrew")];
        let rows = vec![row(1, 2, 10, "2023-03-20T10:00:00+00:00")];
        let plan = plan(&users, &found(rows), now()).unwrap();
        assert_eq!(plan.writes(), 1, "only the user: {plan:?}");
        assert_eq!(
            plan.report.conversations_with_unknown_members,
            vec![(Uuid::from_u128(10), vec![Uuid::from_u128(2)])]
        );
    }

    #[test]
    fn refused_users_are_reported_with_why() {
        let mut no_sub = legacy(3, "londo");
        no_sub.cognito_user_id = " ".into();
        let mut shared = legacy(4, "vir");
        shared.cognito_user_id = "sub-andrew".into();
        let mut bad_handle = legacy(5, "g'kar");
        bad_handle.handle = "g kar".into();
        let users = [legacy(1, "andrew"), no_sub, shared, bad_handle];
        let plan = plan(&users, &Found::default(), now()).unwrap();
        assert_eq!(plan.users.len(), 1);
        let refused: Vec<&str> = plan
            .report
            .users_refused
            .iter()
            .map(|(handle, _)| handle.as_str())
            .collect();
        assert_eq!(refused, ["londo", "vir", "g kar"]);
    }

    #[test]
    fn a_second_plan_over_the_migrated_table_writes_nothing() {
        let users = [legacy(1, "andrew"), legacy(2, "bayko")];
        let rows = vec![
            row(1, 2, 10, "2023-03-20T10:00:00+00:00"),
            row(2, 1, 10, "2023-03-20T10:00:00+00:00"),
        ];
        let first = plan(&users, &found(rows.clone()), now()).unwrap();
        let mut after = found(
            rows.into_iter()
                .map(|mut row| {
                    row.last_message_at = Some("2023-03-20T10:00:00.000000+00:00".into());
                    row.member_count = Some(2);
                    row
                })
                .collect(),
        );
        after.profiles = first.users.iter().map(|user| user.uuid).collect();
        after.memberships = first
            .memberships
            .iter()
            .map(|m| (m.group_uuid, m.user_uuid))
            .collect();
        after.pairs = first.pairs.iter().map(|p| p.pk.clone()).collect();
        let second = plan(&users, &after, now()).unwrap();
        assert_eq!(second.writes(), 0, "{second:?}");
        assert_eq!(second.report.users_registered_before, 2);
    }

    #[test]
    fn a_member_whose_row_the_original_lost_gets_it_back() {
        let users = [legacy(1, "andrew"), legacy(2, "bayko")];
        // Only Andrew's row survived; Bayko's was deleted and never re-put.
        let rows = vec![row(1, 2, 10, "2023-03-20T10:00:00+00:00")];
        let plan = plan(&users, &found(rows), now()).unwrap();
        assert_eq!(plan.restored_rows.len(), 1);
        let restored = &plan.restored_rows[0];
        assert_eq!(restored.pk, keys::inbox_pk(Uuid::from_u128(2)));
        assert_eq!(restored.user_uuid, Uuid::from_u128(1));
        assert_eq!(restored.user_handle, "andrew");
        assert_eq!(restored.sk, "2023-03-20T10:00:00.000000+00:00");
        assert_eq!(restored.member_count, Some(2));
        assert_eq!(plan.memberships.len(), 2);
    }
}
