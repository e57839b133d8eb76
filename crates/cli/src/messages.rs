//! `cruddur messages …`: sending, editing and deleting on someone's behalf, as the API's
//! `POST /api/messages`, `PATCH` and `DELETE /api/messages/{group}/{message}` do (without
//! the API's rate limits: an operator's tool).

use anyhow::Context;
use clap::Subcommand;
use messaging::store::ClientMessageId;
use messaging::validate::{Handle, MessageText, parse_group_uuid};
use messaging::{Message, Store, Timestamp};
use uuid::Uuid;

use crate::output::message_line;
use crate::users::user;

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Send a message into a conversation (`--group`) or to a user (`--to`); prints
    /// `sent <message uuid> in <conversation> at <created_at>`.
    Send {
        /// Who sends.
        #[arg(long = "as", value_name = "HANDLE")]
        sender: String,
        /// The conversation to append to.
        #[arg(
            long,
            value_name = "MESSAGE_GROUP_UUID",
            conflicts_with = "to",
            required_unless_present = "to"
        )]
        group: Option<String>,
        /// The user to message (starting or reusing the direct conversation).
        #[arg(long, value_name = "HANDLE")]
        to: Option<String>,
        /// Names the send, as the API's `client_message_id`: a repeat within a day answers
        /// the first send and writes nothing; another text under the same id is refused.
        #[arg(long, value_name = "UUID")]
        client_message_id: Option<Uuid>,
        text: String,
    },
    /// The sender replaces the text of their message.
    Edit {
        #[arg(long = "as", value_name = "HANDLE")]
        sender: String,
        message_group_uuid: String,
        message_uuid: Uuid,
        text: String,
    },
    /// The sender deletes their message for everyone (its text is removed from the table).
    Delete {
        #[arg(long = "as", value_name = "HANDLE")]
        sender: String,
        message_group_uuid: String,
        message_uuid: Uuid,
    },
}

pub async fn run(store: &Store, command: MessagesCommand) -> anyhow::Result<()> {
    match command {
        MessagesCommand::Send {
            sender,
            group,
            to,
            client_message_id,
            text,
        } => {
            let sender = user(store, &sender).await?;
            let text = message_text(text)?;
            let now = Timestamp::now();
            // The request fields hashed as the API hashes them, so one id names one send
            // whichever of the two made it.
            let named = |target: String| {
                client_message_id.map(|id| {
                    ClientMessageId::new(id, &["POST /api/messages", &target, text.as_str()])
                })
            };
            let message = match (group, to) {
                (Some(group), _) => {
                    let group = parse_group_uuid(&group).with_context(|| format!("{group:?}"))?;
                    match named(format!("message_group_uuid:{group}")) {
                        None => store.append_message(&sender, group, text, now).await?,
                        Some(id) => {
                            store
                                .append_message_once(&sender, group, text, now, &id)
                                .await?
                        }
                    }
                }
                (None, Some(to)) => {
                    let handle = Handle::parse(&to).with_context(|| format!("handle {to:?}"))?;
                    let recipient = user(store, &to).await?;
                    match named(format!("handle:{}", handle.normalized())) {
                        None => store.send_to_user(&sender, &recipient, text, now).await?,
                        Some(id) => {
                            store
                                .send_to_user_once(&sender, &recipient, text, now, &id)
                                .await?
                        }
                    }
                }
                (None, None) => anyhow::bail!("name a conversation (--group) or a user (--to)"),
            };
            println!(
                "sent {} in {} at {}",
                message.uuid, message.group_uuid, message.created_at
            );
        }
        MessagesCommand::Edit {
            sender,
            message_group_uuid,
            message_uuid,
            text,
        } => {
            let sender = user(store, &sender).await?;
            let group = parse_group_uuid(&message_group_uuid)
                .with_context(|| format!("{message_group_uuid:?}"))?;
            let edited = store
                .edit_message(
                    &sender,
                    group,
                    message_uuid,
                    message_text(text)?,
                    Timestamp::now(),
                )
                .await?;
            println!("{}", changed_line(&edited));
        }
        MessagesCommand::Delete {
            sender,
            message_group_uuid,
            message_uuid,
        } => {
            let sender = user(store, &sender).await?;
            let group = parse_group_uuid(&message_group_uuid)
                .with_context(|| format!("{message_group_uuid:?}"))?;
            let deleted = store
                .delete_message(&sender, group, message_uuid, Timestamp::now())
                .await?;
            println!("{}", changed_line(&deleted));
        }
    }
    Ok(())
}

fn message_text(text: String) -> anyhow::Result<MessageText> {
    MessageText::parse(text).context("the message")
}

/// The message after a change, with its uuid and revision.
fn changed_line(message: &Message) -> String {
    format!(
        "{}  revision {}  {}",
        message.uuid,
        message.life.revision,
        message_line(message)
    )
}
