//! CloudWatch embedded metric format: one stdout line per batch that CloudWatch turns into
//! metrics without any API call. Both stream consumers' summaries print through it.
//!
//! With `LogFormat: JSON`, Lambda files a line without a `level` (or without an RFC 3339
//! `timestamp`) as INFO and drops it when `ApplicationLogLevel` is above INFO
//! (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
//! Metrics must survive any log level, so the line carries the configured level
//! (`AWS_LAMBDA_LOG_LEVEL`) when that is above INFO, and INFO otherwise.

use std::time::{SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of the embedded metrics; `template.yaml`'s alarms watch it.
pub const METRICS_NAMESPACE: &str = "CruddurMessaging";

/// The Lambda log levels, least severe first (`ApplicationLogLevel`).
const LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// One metric of a line, with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: u64,
}

impl Metric {
    pub fn count(name: &'static str, value: usize) -> Self {
        Self {
            name,
            unit: "Count",
            value: u64::try_from(value).unwrap_or(u64::MAX),
        }
    }

    pub fn milliseconds(name: &'static str, value: u64) -> Self {
        Self {
            name,
            unit: "Milliseconds",
            value,
        }
    }
}

/// A summary CloudWatch can read metrics from.
pub trait EmbeddedMetrics {
    /// Every metric of the line, in the order CloudWatch lists them.
    fn metrics(&self) -> Vec<Metric>;

    /// The summary as one embedded-metric-format document, dimension `FunctionName`.
    fn to_emf(
        &self,
        namespace: &str,
        function_name: &str,
        now: SystemTime,
        configured_level: Option<&str>,
    ) -> serde_json::Value {
        let metrics = self.metrics();
        let epoch_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let definitions: Vec<serde_json::Value> = metrics
            .iter()
            .map(|metric| serde_json::json!({ "Name": metric.name, "Unit": metric.unit }))
            .collect();
        let mut line = serde_json::json!({
            "level": emf_level(configured_level),
            "timestamp": rfc3339(now),
            "_aws": {
                "Timestamp": epoch_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": definitions,
                }],
            },
            "FunctionName": function_name,
        });
        for metric in metrics {
            line[metric.name] = serde_json::json!(metric.value);
        }
        line
    }
}

/// Where a function prints its metrics: its name and log level, read once per execution
/// environment.
#[derive(Debug, Clone)]
pub struct MetricsLog {
    function_name: String,
    configured_level: Option<String>,
}

impl MetricsLog {
    /// From Lambda's environment; `function_name` when it names no function (local runs).
    pub fn from_env(function_name: &str) -> Self {
        Self {
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| function_name.into()),
            configured_level: std::env::var("AWS_LAMBDA_LOG_LEVEL").ok(),
        }
    }

    /// Prints `summary`'s line to stdout, where CloudWatch reads it.
    pub fn print(&self, summary: &impl EmbeddedMetrics) {
        println!(
            "{}",
            summary.to_emf(
                METRICS_NAMESPACE,
                &self.function_name,
                SystemTime::now(),
                self.configured_level.as_deref()
            )
        );
    }
}

/// The level that keeps a metrics line through Lambda's log-level filter.
fn emf_level(configured: Option<&str>) -> &'static str {
    let rank = |level: &str| {
        LOG_LEVELS
            .iter()
            .position(|l| l.eq_ignore_ascii_case(level))
    };
    let info = rank("INFO").unwrap_or(2);
    let wanted = configured.and_then(rank).unwrap_or(info).max(info);
    LOG_LEVELS[wanted]
}

fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
