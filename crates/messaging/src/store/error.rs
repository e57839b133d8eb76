use std::error::Error as StdError;
use std::fmt::Debug;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use uuid::Uuid;

use crate::page::PageError;

/// Everything that can go wrong in the store. The first group are answers about the
/// request (a handler turns them into 4xx); the rest are infrastructure failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("user is not a member of conversation {0}")]
    NotMember(Uuid),
    /// No such message in that conversation, or one the caller may not change (not a
    /// member, deleted): the same answer for all, so message ids are not probed.
    #[error("no message {message} of conversation {group} for this caller")]
    MessageNotFound { group: Uuid, message: Uuid },
    #[error("a user cannot start a conversation with themself")]
    SelfConversation,
    #[error("conversation {0} is direct: it has two members for good")]
    DirectConversation(Uuid),
    #[error("a group needs at least one member besides its creator")]
    GroupWithoutOthers,
    #[error("a group has at most {max} members; this change would make {members}")]
    GroupTooLarge { members: usize, max: usize },
    #[error("handle {0:?} is already taken")]
    HandleTaken(String),
    #[error("Cognito sub {sub:?} is already registered with handle {handle:?}")]
    SubRegistered { sub: String, handle: String },
    #[error("Cognito sub is blank")]
    SubBlank,
    /// One of two users blocked the other; which one is deliberately not said.
    #[error("one of the two users blocked the other")]
    Blocked,
    #[error("a user cannot block themself")]
    SelfBlock,
    /// The sender used this `client_message_id` within a day for a different request.
    #[error("client_message_id was used for another request")]
    ClientMessageIdReused,
    #[error(transparent)]
    Page(#[from] PageError),
    /// The user's window of a limit is full: nothing was written. Not transient in the
    /// sense of a retry: the same request fails until `retry_after` has passed.
    #[error("user {user} has used up the {limit} limit; the window frees in {retry_after:?}")]
    RateLimited {
        user: Uuid,
        limit: &'static str,
        retry_after: std::time::Duration,
    },

    #[error("item {pk} / {sk} does not match its schema: {message}")]
    CorruptItem {
        pk: String,
        sk: String,
        message: String,
    },
    #[error("could not encode an item: {0}")]
    Encode(String),
    #[error(
        "the group index shows {seen} of conversation {group}'s {expected} members; it has not caught up"
    )]
    IndexLagging {
        group: Uuid,
        seen: usize,
        expected: usize,
    },
    #[error("conversation {0} has neither members nor inbox rows")]
    NoMembers(Uuid),
    #[error("{operation} was cancelled by concurrent writes {attempts} times; giving up")]
    Contention {
        operation: &'static str,
        attempts: u32,
    },
    #[error("DynamoDB {operation} failed ({kind:?}): {message}")]
    Dynamo {
        operation: &'static str,
        kind: FailureKind,
        message: String,
    },
}

/// What kind of infrastructure failure a DynamoDB error is, for callers that react to it
/// (the CLI explains how to start DynamoDB Local; the stream handler retries transients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer: connection refused, DNS, timeout.
    Unreachable,
    TableMissing,
    Throttled,
    /// A single-item write met a transaction that is changing the same item
    /// (`TransactionConflictException`): it wrote nothing; once the transaction ends, the
    /// same write may succeed, or find the item changed.
    Conflict,
    /// DynamoDB refused the request itself (a validation error): sending it again cannot
    /// succeed.
    Rejected,
    Other,
}

impl StoreError {
    pub(crate) fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        let kind = match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => FailureKind::Unreachable,
            SdkError::ServiceError(service) => match service.err().code() {
                Some("ResourceNotFoundException") => FailureKind::TableMissing,
                Some(
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded",
                ) => FailureKind::Throttled,
                Some("TransactionConflictException") => FailureKind::Conflict,
                Some("ValidationException" | "SerializationException") => FailureKind::Rejected,
                _ => FailureKind::Other,
            },
            _ => FailureKind::Other,
        };
        let message = match &err {
            SdkError::ServiceError(service) => format!(
                "{}: {}",
                service.err().code().unwrap_or("unknown error"),
                service.err().message().unwrap_or("no message")
            ),
            _ => error_chain(&err),
        };
        Self::Dynamo {
            operation,
            kind,
            message,
        }
    }

    /// A request we could not even build: sending it again cannot succeed.
    pub(crate) fn build(operation: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Dynamo {
            operation,
            kind: FailureKind::Rejected,
            message: format!("invalid request: {err}"),
        }
    }

    /// The failure kind if this is an infrastructure error from DynamoDB.
    pub fn failure_kind(&self) -> Option<FailureKind> {
        match self {
            Self::Dynamo { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether retrying the same call later may succeed. A corrupt item, an item that
    /// cannot be encoded or a request DynamoDB rejects will fail the same way every time.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Contention { .. } | Self::IndexLagging { .. })
            || matches!(
                self.failure_kind(),
                Some(
                    FailureKind::Unreachable
                        | FailureKind::Throttled
                        | FailureKind::Conflict
                        | FailureKind::TableMissing
                        | FailureKind::Other
                )
            )
    }
}

/// `outer: inner: innermost`, without the Debug dumps of raw responses.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
