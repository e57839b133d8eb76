//! Lambda event filtering (the event source mapping's `FilterCriteria`), for the local
//! stream pump. Supports what `template.yaml` uses: nested objects, exact values and
//! `{"prefix": …}`; anything else is refused when the pattern is parsed, so the pump can
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

/// A parsed filter pattern, or several (a `FilterCriteria` with several `Filters`: a
/// record any one matches is delivered).
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter(Vec<Matcher>);

impl EventFilter {
    pub fn parse(pattern: &str) -> Result<Self, FilterError> {
        Self::parse_any([pattern])
    }

    /// The patterns of one `FilterCriteria`'s `Filters`.
    pub fn parse_any<'p>(patterns: impl IntoIterator<Item = &'p str>) -> Result<Self, FilterError> {
        patterns
            .into_iter()
            .map(|pattern| {
                let value: Value = serde_json::from_str(pattern)
                    .map_err(|err| FilterError::NotJson(err.to_string()))?;
                parse_matcher(&value, "$")
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether Lambda would deliver this record.
    pub fn matches(&self, record: &EventRecord) -> bool {
        serde_json::to_value(record)
            .is_ok_and(|value| self.0.iter().any(|matcher| matches(matcher, &value)))
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
        for pattern in [FILTER_PATTERN, functions::push::FILTER_PATTERN] {
            let filter = EventFilter::parse(pattern).unwrap();
            for event_name in ["INSERT", "MODIFY", "REMOVE"] {
                assert!(!filter.matches(&record(
                    event_name,
                    "CONN#5ae290ed-55d1-47a0-bc6d-fe2bc2700399"
                )));
            }
        }
    }

    #[test]
    fn the_push_takes_read_receipts_and_nothing_else_of_a_conversations_partition() {
        let push = EventFilter::parse_any([
            functions::push::FILTER_PATTERN,
            functions::push::READ_FILTER_PATTERN,
        ])
        .unwrap();
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
