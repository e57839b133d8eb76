//! `cruddur users …`: the user directory.

use anyhow::Context;
use clap::Subcommand;
use messaging::store::{NewUser, Registration};
use messaging::validate::{DisplayName, Handle};
use messaging::{Store, Timestamp};

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
    }
    Ok(())
}
