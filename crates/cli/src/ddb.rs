//! `cruddur ddb …`: the table, its items, and the seeds' pattern scripts.

use anyhow::{Context, bail};
use clap::Subcommand;
use messaging::store::{TableStatus, list_tables};
use messaging::validate::parse_group_uuid;
use messaging::{PageRequest, Store};

use crate::output::{inbox_line, message_line};
use crate::{migrate, seed};

#[derive(Debug, Subcommand)]
pub enum DdbCommand {
    /// Create the table (keys, GSI, stream) unless it exists; wait until ACTIVE.
    SchemaLoad,
    /// Delete the table and everything in it.
    Drop {
        /// Required with --prod.
        #[arg(long)]
        yes: bool,
    },
    /// List the tables.
    ListTables,
    /// Print every item as JSON, one per line.
    Scan,
    /// Load demo users and conversations (idempotent).
    Seed,
    /// Print the messages of a conversation, oldest first.
    GetConversation {
        message_group_uuid: String,
        /// How many of the newest messages.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Bring a table written by the original Cruddur into service (idempotent; see
    /// docs/MIGRATING.md).
    Migrate(migrate::MigrateArgs),
    /// Print a user's inbox, newest first.
    ListConversations {
        handle: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

pub async fn run(store: &Store, command: DdbCommand, prod: bool) -> anyhow::Result<()> {
    match command {
        DdbCommand::SchemaLoad => {
            let status = store.create_table_if_missing().await?;
            let verb = match status {
                TableStatus::Created => "created",
                TableStatus::AlreadyExisted => "already exists",
            };
            println!("table {} {verb}", store.table());
        }
        DdbCommand::Drop { yes } => {
            if prod && !yes {
                bail!("refusing to drop a production table without --yes");
            }
            if store.drop_table().await? {
                println!("table {} dropped", store.table());
            } else {
                println!("table {} did not exist", store.table());
            }
        }
        DdbCommand::ListTables => {
            for name in list_tables(store.client()).await? {
                println!("{name}");
            }
        }
        DdbCommand::Scan => {
            for item in store.scan_all().await? {
                let json: serde_json::Value =
                    serde_dynamo::from_item(item).context("item is not representable as JSON")?;
                println!("{json}");
            }
        }
        DdbCommand::Seed => seed::run(store).await?,
        DdbCommand::Migrate(args) => migrate::run(store, args).await?,
        DdbCommand::GetConversation {
            message_group_uuid,
            limit,
        } => {
            let group = parse_group_uuid(&message_group_uuid)
                .with_context(|| format!("{message_group_uuid:?}"))?;
            let page = store
                .conversation_messages(group, &PageRequest::new(limit, None)?)
                .await?;
            if page.items.is_empty() {
                println!("no messages in conversation {group}");
            }
            for message in &page.items {
                println!("{}", message_line(message));
            }
        }
        DdbCommand::ListConversations { handle, limit } => {
            let user = crate::users::user(store, &handle).await?;
            let page = store
                .list_inbox(user.uuid, &PageRequest::new(limit, None)?)
                .await?;
            if page.items.is_empty() {
                println!("{} has no conversations", user.handle);
            }
            for row in &page.items {
                println!("{}", inbox_line(row));
            }
        }
    }
    Ok(())
}
