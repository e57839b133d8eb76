//! The batch summary as a CloudWatch embedded-metric-format line.

use std::time::Duration;

use functions::emf::EmbeddedMetrics;
use functions::inbox_rows::InboxRowsSummary;

#[test]
fn summaries_become_embedded_metric_lines_that_survive_the_log_level() {
    let summary = InboxRowsSummary {
        records: 100,
        messages: 90,
        conversations: 10,
        rows_moved: 20,
        unstarted_conversations: 3,
        ..InboxRowsSummary::default()
    };
    let now = std::time::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    let emf = summary.to_emf("CruddurMessaging", "messaging-stream", now, None);
    assert_eq!(
        emf["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "CruddurMessaging"
    );
    assert_eq!(emf["_aws"]["Timestamp"], 1_700_000_000_000u64);
    assert_eq!(emf["RowsMoved"], 20);
    assert_eq!(emf["UnstartedConversations"], 3);
    assert_eq!(emf["FunctionName"], "messaging-stream");
    let names: Vec<&str> = emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect();
    for name in &names {
        assert!(emf.get(name).is_some(), "metric {name} has no value");
    }
    for alarmed in ["FailedConversations", "AbandonedConversations"] {
        assert!(names.contains(&alarmed), "{alarmed} is alarmed on");
    }
    // Lambda files a JSON line by its `level` and needs an RFC 3339 `timestamp`, else the
    // line is INFO and ApplicationLogLevel=WARN drops the metrics.
    assert_eq!(emf["timestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(emf["level"], "INFO");
    for (configured, level) in [
        (Some("WARN"), "WARN"),
        (Some("error"), "ERROR"),
        (Some("FATAL"), "FATAL"),
        (Some("DEBUG"), "INFO"),
        (Some("TRACE"), "INFO"),
        (Some("nonsense"), "INFO"),
    ] {
        let emf = summary.to_emf("N", "f", now, configured);
        assert_eq!(emf["level"], level, "{configured:?}");
    }
}
