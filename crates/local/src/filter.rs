//! Lambda event filtering (the event source mapping's `FilterCriteria`), for the local
//! stream pump. Supports what `template.yaml` uses: several filters (ORed), nested
//! objects, exact values and `{"prefix": …}`; anything else is refused when the pattern is parsed, so the pump can
//! never silently filter differently from AWS.

use aws_lambda_events::dynamodb::EventRecord;
use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("filter pattern is not JSON: {0}")]
    NotJson(String),
    #[error("unsupported filter pattern at {path}: {reason}")]
    Unsupported { path: String, reason: String },
}

#[derive(Debug, Clone, PartialEq)]
enum Matcher {
    /// Every key must be present in the record and match.
    Object(Vec<(String, Matcher)>),
    /// The record's value must match one of these.
    AnyOf(Vec<Alternative>),
}

#[derive(Debug, Clone, PartialEq)]
enum Alternative {
    Equals(Value),
    Prefix(String),
}

/// One parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter(Matcher);

impl EventFilter {
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        let value: Value =
            serde_json::from_str(pattern).map_err(|err| FilterError::NotJson(err.to_string()))?;
        parse_matcher(&value, "$").map(Self)
    }

    /// Whether Lambda would deliver this record.
    pub fn matches(&self, record: &EventRecord) -> bool {
        serde_json::to_value(record).is_ok_and(|value| matches(&self.0, &value))
    }
}

/// An event source mapping's `FilterCriteria`: several patterns, ORed ("If an event
/// satisfies at least one of the filters, Lambda sends it", Lambda's "Control which events
/// Lambda sends to your function",
/// <https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html>).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterCriteria(Vec<EventFilter>);

impl FilterCriteria {
    pub fn parse(patterns: &[&str]) -> Result<Self, FilterError> {
        patterns
            .iter()
            .map(|pattern| EventFilter::parse(pattern))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether Lambda would deliver this record: some filter matches it.
    pub fn matches(&self, record: &EventRecord) -> bool {
        self.0.iter().any(|filter| filter.matches(record))
    }
}

fn parse_matcher(value: &Value, path: &str) -> Result<Matcher, FilterError> {
    let unsupported = |reason: &str| FilterError::Unsupported {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(key, sub)| Ok((key.clone(), parse_matcher(sub, &format!("{path}.{key}"))?)))
            .collect::<Result<_, _>>()
            .map(Matcher::Object),
        Value::Array(alternatives) => alternatives
            .iter()
            .map(|alternative| match alternative {
                Value::Object(operator) => match operator.iter().next() {
                    Some((name, Value::String(prefix)))
                        if name == "prefix" && operator.len() == 1 =>
                    {
                        Ok(Alternative::Prefix(prefix.clone()))
                    }
                    _ => Err(unsupported(&format!("operator {alternative}"))),
                },
                Value::Array(_) => Err(unsupported("nested array")),
                scalar => Ok(Alternative::Equals(scalar.clone())),
            })
            .collect::<Result<_, _>>()
            .map(Matcher::AnyOf),
        _ => Err(unsupported("a pattern value must be an object or an array")),
    }
}

fn matches(matcher: &Matcher, value: &Value) -> bool {
    match matcher {
        Matcher::Object(fields) => fields
            .iter()
            .all(|(key, sub)| value.get(key).is_some_and(|inner| matches(sub, inner))),
        Matcher::AnyOf(alternatives) => alternatives.iter().any(|alternative| match alternative {
            Alternative::Equals(expected) => value == expected,
            Alternative::Prefix(prefix) => {
                value.as_str().is_some_and(|text| text.starts_with(prefix))
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use functions::batch::FILTER_PATTERN;

    fn record(event_name: &str, pk: &str) -> EventRecord {
        let json = serde_json::json!({
            "eventID": "1",
            "eventName": event_name,
            "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": { "pk": { "S": pk }, "sk": { "S": "2024-01-01T00:00:00.000000+00:00" } },
                "SequenceNumber": "1",
                "SizeBytes": 1
            }
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_template_filter_keeps_only_message_inserts() {
        let filter = EventFilter::parse(FILTER_PATTERN).unwrap();
        assert!(filter.matches(&record(
            "INSERT",
            "MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399"
        )));
        assert!(!filter.matches(&record(
            "MODIFY",
            "MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399"
        )));
        assert!(!filter.matches(&record(
            "REMOVE",
            "MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399"
        )));
        assert!(!filter.matches(&record(
            "INSERT",
            "GRP#5ae290ed-55d1-47a0-bc6d-fe2bc2700399"
        )));
        assert!(!filter.matches(&record("INSERT", "MSGX")));
    }

    #[test]
    fn connection_items_reach_neither_stream_function() {
        for patterns in [
            &functions::batch::FILTER_PATTERNS[..],
            &functions::push::FILTER_PATTERNS[..],
        ] {
            let filter = FilterCriteria::parse(patterns).unwrap();
            for event_name in ["INSERT", "MODIFY", "REMOVE"] {
                let mut record = record(event_name, "CONN#5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
                record.change.new_image = changed("edited");
                assert!(!filter.matches(&record));
            }
        }
    }

    /// A new image naming `change`.
    fn changed(change: &str) -> serde_dynamo::Item {
        let mut image = std::collections::HashMap::new();
        image.insert(
            "change".to_owned(),
            serde_dynamo::AttributeValue::S(change.to_owned()),
        );
        image.insert(
            "message".to_owned(),
            serde_dynamo::AttributeValue::S("hi".to_owned()),
        );
        image.into()
    }

    #[test]
    fn the_stream_takes_edits_and_deletes_and_the_push_every_change() {
        let stream = FilterCriteria::parse(&functions::batch::FILTER_PATTERNS).unwrap();
        let push = FilterCriteria::parse(&functions::push::FILTER_PATTERNS).unwrap();
        let pk = "MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399";
        for (change, to_stream) in [
            ("edited", true),
            ("deleted", true),
            ("reacted", false),
            ("unreacted", false),
        ] {
            let mut modify = record("MODIFY", pk);
            modify.change.new_image = changed(change);
            assert_eq!(stream.matches(&modify), to_stream, "{change}");
            assert!(push.matches(&modify), "{change}");
            // Only a MODIFY carries a change; an item put anew with one is an INSERT and
            // passes as a new message, a REMOVE never.
            let mut remove = record("REMOVE", pk);
            remove.change.new_image = changed(change);
            assert!(!stream.matches(&remove) && !push.matches(&remove));
        }
        // A MODIFY without a change (a rewrite of the item by a tool) reaches neither, nor
        // one whose change is not a string or not a known kind.
        let bare = record("MODIFY", pk);
        assert!(!stream.matches(&bare) && !push.matches(&bare));
        let mut unknown = record("MODIFY", pk);
        unknown.change.new_image = changed("shouted");
        assert!(!stream.matches(&unknown) && !push.matches(&unknown));
        let mut other_item = record("MODIFY", "GRP#5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
        other_item.change.new_image = changed("edited");
        assert!(!stream.matches(&other_item) && !push.matches(&other_item));
        // New messages still reach both.
        for criteria in [&stream, &push] {
            assert!(criteria.matches(&record("INSERT", pk)));
        }
    }

    #[test]
    fn the_push_takes_read_receipts_and_nothing_else_of_a_conversations_partition() {
        let push = FilterCriteria::parse(&functions::push::FILTER_PATTERNS).unwrap();
        let stream = EventFilter::parse(FILTER_PATTERN).unwrap();
        let with_sk = |event_name: &str, sk: &str| {
            let mut record = record(event_name, "MBR#5ae290ed-55d1-47a0-bc6d-fe2bc2700399");
            record
                .change
                .keys
                .insert("sk".into(), serde_dynamo::AttributeValue::S(sk.to_owned()));
            record
        };
        let receipt = "READ#7d4b2a9c-3f1e-4c8a-9b6d-2e5f8a1c4d7b";
        for event_name in ["INSERT", "MODIFY"] {
            assert!(push.matches(&with_sk(event_name, receipt)), "{event_name}");
            assert!(
                !stream.matches(&with_sk(event_name, receipt)),
                "{event_name}"
            );
            // A membership changes for blocks and typing: never a frame of its own.
            assert!(!push.matches(&with_sk(
                event_name,
                "USER#7d4b2a9c-3f1e-4c8a-9b6d-2e5f8a1c4d7b"
            )));
            assert!(!push.matches(&with_sk(event_name, "DEPARTURES")));
        }
        assert!(!push.matches(&with_sk("REMOVE", receipt)));
        assert!(push.matches(&record(
            "INSERT",
            "MSG#5ae290ed-55d1-47a0-bc6d-fe2bc2700399"
        )));
    }

    #[test]
    fn unsupported_operators_are_refused_not_ignored() {
        for pattern in [
            r#"{"eventName":[{"anything-but":["REMOVE"]}]}"#,
            r#"{"eventName":"INSERT"}"#,
            r#"{"eventName":[["INSERT"]]}"#,
            "not json",
        ] {
            assert!(EventFilter::parse(pattern).is_err(), "{pattern}");
        }
    }

    #[test]
    fn a_missing_field_does_not_match() {
        let filter =
            EventFilter::parse(r#"{"dynamodb":{"NewImage":{"message":{"S":["x"]}}}}"#).unwrap();
        assert!(!filter.matches(&record("INSERT", "MSG#x")));
    }
}
