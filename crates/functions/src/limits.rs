//! The per-user limits' settings, read once per execution environment from the variables
//! `template.yaml` passes (its parameters `MessageRateBurst`, `MessageRatePerSecond`,
//! `GroupChangesPerMinute`, `MaxConnectionsPerUser`); unset (a local run), the defaults.
//! The store enforces the rates (`messaging::store::Limits`); `ws-connect` the connection
//! cap ([`crate::websocket::ConnectionCap`]).

use messaging::store::Limits;

pub const MESSAGE_RATE_BURST_ENV: &str = "MESSAGE_RATE_BURST";
pub const MESSAGE_RATE_PER_SECOND_ENV: &str = "MESSAGE_RATE_PER_SECOND";
pub const GROUP_CHANGES_PER_MINUTE_ENV: &str = "GROUP_CHANGES_PER_MINUTE";
pub const MAX_CONNECTIONS_PER_USER_ENV: &str = "MAX_CONNECTIONS_PER_USER";

/// Live WebSocket connections a user may hold; a newer one closes the oldest.
pub const DEFAULT_MAX_CONNECTIONS_PER_USER: usize = 10;

/// The rate limits the environment sets, each defaulting to the issue's: a burst of 20
/// messages then 5 per second, 10 group changes per minute. A 0 turns a limit off.
pub fn limits_from_env() -> Limits {
    limits_from(|name| std::env::var(name).ok())
}

/// [`limits_from_env`] over any source of variables.
pub fn limits_from(var: impl Fn(&str) -> Option<String>) -> Limits {
    Limits::new(
        number(&var, MESSAGE_RATE_BURST_ENV, Limits::DEFAULT_SEND_BURST),
        number(
            &var,
            MESSAGE_RATE_PER_SECOND_ENV,
            Limits::DEFAULT_SEND_PER_SECOND,
        ),
        number(
            &var,
            GROUP_CHANGES_PER_MINUTE_ENV,
            Limits::DEFAULT_GROUP_CHANGES_PER_MINUTE,
        ),
    )
}

/// The connection cap the environment sets (at least 1).
pub fn max_connections_from_env() -> usize {
    max_connections_from(|name| std::env::var(name).ok())
}

pub fn max_connections_from(var: impl Fn(&str) -> Option<String>) -> usize {
    let max = number(
        &var,
        MAX_CONNECTIONS_PER_USER_ENV,
        u32::try_from(DEFAULT_MAX_CONNECTIONS_PER_USER).unwrap_or(u32::MAX),
    );
    usize::try_from(max).unwrap_or(usize::MAX).max(1)
}

/// A whole number from `name`; unset or blank is `default`. The template's parameters only
/// allow numbers, so anything else is a hand-made setting: it is logged and the default
/// used, rather than a function that cannot start.
fn number(var: &impl Fn(&str) -> Option<String>, name: &str, default: u32) -> u32 {
    match var(name).as_deref().map(str::trim) {
        None | Some("") => default,
        Some(text) => text.parse().unwrap_or_else(|_| {
            tracing::warn!(
                name,
                value = text,
                default,
                "not a whole number; using the default"
            );
            default
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use messaging::store::RateLimit;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn unset_is_the_default_and_settings_are_read() {
        assert_eq!(limits_from(vars(&[])), Limits::defaults());
        assert_eq!(max_connections_from(vars(&[])), 10);
        let set = limits_from(vars(&[
            (MESSAGE_RATE_BURST_ENV, "30"),
            (MESSAGE_RATE_PER_SECOND_ENV, " 10 "),
            (GROUP_CHANGES_PER_MINUTE_ENV, "0"),
        ]));
        assert_eq!(
            set.send,
            Some(RateLimit {
                cap: 30,
                window: Duration::from_secs(3)
            })
        );
        assert_eq!(set.group_changes, None, "0 turns it off");
        assert_eq!(
            max_connections_from(vars(&[(MAX_CONNECTIONS_PER_USER_ENV, "3")])),
            3
        );
    }

    #[test]
    fn a_setting_that_is_not_a_number_is_the_default() {
        assert_eq!(
            limits_from(vars(&[(MESSAGE_RATE_BURST_ENV, "lots")])),
            Limits::defaults()
        );
        assert_eq!(
            max_connections_from(vars(&[(MAX_CONNECTIONS_PER_USER_ENV, "0")])),
            1,
            "a user keeps at least the connection just opened"
        );
    }
}
