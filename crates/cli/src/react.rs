//! `cruddur react`: a reaction on someone's behalf, as `PUT`/`DELETE
//! /api/messages/{message_group_uuid}/{message_uuid}/reactions/{emoji}` make it.

use anyhow::Context;
use messaging::reactions::{self, EMOJI, Emoji};
use messaging::validate::{parse_group_uuid, parse_message_uuid};
use messaging::{Store, StoreError, Timestamp};

use crate::users::user;

#[derive(Debug, clap::Args)]
pub struct ReactArgs {
    /// Who reacts (a member of the conversation).
    #[arg(long = "as", value_name = "HANDLE")]
    member: String,
    /// The conversation's uuid.
    group: String,
    /// The message's uuid.
    message: String,
    /// One of 👍 👎 ❤️ 😂 😮 😢 🎉 🙏 (`❤` without its selector is ❤️).
    emoji: String,
    /// Take the reaction back instead.
    #[arg(long)]
    remove: bool,
}

pub async fn run(store: &Store, args: ReactArgs) -> anyhow::Result<()> {
    let group =
        parse_group_uuid(&args.group).with_context(|| format!("conversation {:?}", args.group))?;
    let uuid =
        parse_message_uuid(&args.message).with_context(|| format!("message {:?}", args.message))?;
    let emoji = Emoji::parse(&args.emoji)
        .with_context(|| format!("{:?}: the reactions are {}", args.emoji, EMOJI.join(" ")))?;
    let member = user(store, &args.member).await?;
    let now = Timestamp::now();
    let outcome = if args.remove {
        store.unreact(&member, group, uuid, emoji, now).await
    } else {
        store.react(&member, group, uuid, emoji, now).await
    };
    let reacted = match outcome {
        Err(StoreError::MessageNotFound { .. }) => anyhow::bail!(
            "no message {uuid} in conversation {group} that {} can react to (not there, \
             deleted, or not a member)",
            member.handle
        ),
        other => other?,
    };
    let did = match (args.remove, reacted.changed) {
        (false, true) => "reacted with",
        (false, false) => "had already reacted with",
        (true, true) => "took back",
        (true, false) => "had no reaction",
    };
    let counts: Vec<String> = reactions::counts(&reacted.message.life.reactions)
        .into_iter()
        .map(|(emoji, count)| format!("{emoji} {count}"))
        .collect();
    println!(
        "{} {did} {emoji}; the message's reactions: {}",
        member.handle,
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join("  ")
        }
    );
    Ok(())
}
