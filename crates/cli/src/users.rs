//! `cruddur users …`: the user directory.

use anyhow::Context;
use clap::Subcommand;
use messaging::store::{Blocking, NewUser, Registration, Unblocking};
use messaging::validate::{DisplayName, Handle};
use messaging::{PageRequest, Store, Timestamp, User};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Register a user (what the Cognito post-confirmation trigger does).
    Add {
        #[arg(long)]
        handle: String,
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        cognito_sub: String,
    },
    /// List every user.
    List,
    /// Block a user on someone's behalf (what `POST /api/users/@{handle}/block` does):
    /// neither can then message the other directly or make a group with the other.
    Block {
        /// Who blocks.
        #[arg(long = "as", value_name = "HANDLE")]
        blocker: String,
        /// Who is blocked.
        handle: String,
    },
    /// Lift someone's block of a user (`DELETE /api/users/@{handle}/block`).
    Unblock {
        #[arg(long = "as", value_name = "HANDLE")]
        blocker: String,
        handle: String,
    },
    /// The users someone blocked (`GET /api/blocks`, every page).
    Blocks {
        #[arg(long = "as", value_name = "HANDLE")]
        blocker: String,
    },
}

pub async fn run(store: &Store, command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Add {
            handle,
            display_name,
            cognito_sub,
        } => {
            let new = NewUser {
                handle: Handle::parse(&handle).with_context(|| format!("handle {handle:?}"))?,
                display_name: DisplayName::parse(&display_name)
                    .with_context(|| format!("display name {display_name:?}"))?,
                cognito_sub,
            };
            match store.register_user(new, Timestamp::now()).await? {
                Registration::Created(user) => println!("added {} ({})", user.handle, user.uuid),
                Registration::AlreadyRegistered(user) => {
                    println!("{} was already registered ({})", user.handle, user.uuid)
                }
            }
        }
        UsersCommand::List => {
            println!(
                "{:<36}  {:<16}  {:<24}  cognito sub",
                "uuid", "handle", "display name"
            );
            for user in store.list_users().await? {
                println!(
                    "{:<36}  {:<16}  {:<24}  {}",
                    user.uuid, user.handle, user.display_name, user.cognito_sub
                );
            }
        }
        UsersCommand::Block { blocker, handle } => {
            let (blocker, blocked) = (user(store, &blocker).await?, user(store, &handle).await?);
            match store.block(&blocker, &blocked, Timestamp::now()).await? {
                Blocking::Blocked => println!("{} blocked {}", blocker.handle, blocked.handle),
                Blocking::AlreadyBlocked => {
                    println!("{} had blocked {} already", blocker.handle, blocked.handle)
                }
            }
        }
        UsersCommand::Unblock { blocker, handle } => {
            let (blocker, blocked) = (user(store, &blocker).await?, user(store, &handle).await?);
            match store.unblock(blocker.uuid, blocked.uuid).await? {
                Unblocking::Unblocked => {
                    println!("{} unblocked {}", blocker.handle, blocked.handle)
                }
                Unblocking::NotBlocked => {
                    println!("{} had not blocked {}", blocker.handle, blocked.handle)
                }
            }
        }
        UsersCommand::Blocks { blocker } => {
            let blocker = user(store, &blocker).await?;
            println!(
                "{:<36}  {:<16}  {:<24}  blocked at",
                "uuid", "handle", "display name"
            );
            let mut cursor = None;
            loop {
                let page = store
                    .list_blocks(blocker.uuid, &PageRequest::new(100, cursor)?)
                    .await?;
                for entry in page.items {
                    println!(
                        "{:<36}  {:<16}  {:<24}  {}",
                        entry.user.uuid,
                        entry.user.handle,
                        entry.user.display_name,
                        entry.blocked_at
                    );
                }
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    Ok(())
}

/// The user holding `handle`, or an error naming it.
pub(crate) async fn user(store: &Store, handle: &str) -> anyhow::Result<User> {
    let parsed = Handle::parse(handle).with_context(|| format!("handle {handle:?}"))?;
    store
        .user_by_handle(&parsed)
        .await?
        .with_context(|| format!("no user has the handle {handle:?}"))
}
