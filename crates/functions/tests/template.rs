//! `template.yaml` agrees with the code: the table with `messaging::schema`, the functions
//! with `functions::Function` (one binary, each function's `Handler`), the stream trigger with `functions::batch::FILTER_PATTERN`,
//! the routes with `functions::routes::Route`; and every IAM statement is scoped (no wildcard action, no `*`
//! resource). cfn-lint and `sam validate --lint` (scripts/check-template.sh) check that the
//! template is valid CloudFormation; this test checks that it is *this* system's template,
//! which no linter knows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use functions::Function;
use functions::batch::{FILTER_PATTERN, FILTER_PATTERNS};
use functions::emf::METRICS_NAMESPACE;
use functions::routes::{Access, Route};
use functions::{push, websocket, ws_actions};
use messaging::schema;
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value, json};

/// The one binary every function deploys (`crates/functions/src/bin/cruddur-lambda.rs`).
const BINARY: &str = "cruddur-lambda";

/// Every function's name, from `Function::ALL`.
const FUNCTION_NAMES: [&str; Function::ALL.len()] = {
    let mut names = [""; Function::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Function::ALL[i].name();
        i += 1;
    }
    names
};

const TEMPLATE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");

/// Every DynamoDB permission each function's role grants, by resource. A change here is a
/// change of a function's privileges, to be made on purpose.
const TABLE: &str = "table";
const INDEX: &str = "index";
const STREAM: &str = "stream";
const DYNAMODB_GRANTS: [(&str, &[(&str, &str)]); 19] = [
    (
        "messaging-stream",
        &[
            (INDEX, "dynamodb:Query"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:DeleteItem"),
            (TABLE, "dynamodb:PutItem"),
            // Previews follow edits and deletes: members' rows, in place.
            (TABLE, "dynamodb:UpdateItem"),
            (STREAM, "dynamodb:DescribeStream"),
            (STREAM, "dynamodb:GetRecords"),
            (STREAM, "dynamodb:GetShardIterator"),
            (STREAM, "dynamodb:ListStreams"),
        ],
    ),
    (
        "list-message-groups",
        &[(TABLE, "dynamodb:GetItem"), (TABLE, "dynamodb:Query")],
    ),
    // The newest page marks the conversation read: the caller's row by the index.
    (
        "list-messages",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (INDEX, "dynamodb:Query"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    // The sender's rate-limit window is an Update in the send's transaction.
    (
        "create-message",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:ConditionCheckItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    ("get-user-short", &[(TABLE, "dynamodb:GetItem")]),
    // A 50th member is added as an add does: it reads the group and rewrites every row.
    (
        "create-message-group",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:BatchGetItem"),
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:Query"),
            (INDEX, "dynamodb:Query"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    (
        "list-message-group-members",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:BatchGetItem"),
        ],
    ),
    (
        "add-message-group-members",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:BatchGetItem"),
            (TABLE, "dynamodb:Query"),
            (INDEX, "dynamodb:Query"),
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    (
        "leave-message-group",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (INDEX, "dynamodb:Query"),
            (TABLE, "dynamodb:DeleteItem"),
            (TABLE, "dynamodb:PutItem"),
        ],
    ),
    (
        "mark-message-group-read",
        &[
            (TABLE, "dynamodb:GetItem"),
            (INDEX, "dynamodb:Query"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    // Blocking: the block item, and a shared direct conversation's memberships.
    (
        "block-user",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:UpdateItem"),
            (TABLE, "dynamodb:ConditionCheckItem"),
        ],
    ),
    (
        "unblock-user",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:DeleteItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    (
        "list-blocks",
        &[(TABLE, "dynamodb:GetItem"), (TABLE, "dynamodb:Query")],
    ),
    // Reactions: the message's set and the send window in one transaction with the
    // membership check; Query only for a migrated message's UUIDv4.
    (
        "add-reaction",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:ConditionCheckItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    (
        "remove-reaction",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:ConditionCheckItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    // A sender's change of a message: the message, the membership check, the limit.
    (
        "update-message",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:UpdateItem"),
            (TABLE, "dynamodb:ConditionCheckItem"),
        ],
    ),
    (
        "delete-message",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:UpdateItem"),
            (TABLE, "dynamodb:ConditionCheckItem"),
        ],
    ),
    // Checks the handle's claim and reserves the handle (HANDLE# only, checked below); the
    // claim is written after confirmation.
    (
        "cognito-pre-signup",
        &[
            (TABLE, "dynamodb:ConditionCheckItem"),
            (TABLE, "dynamodb:PutItem"),
        ],
    ),
    (
        "cognito-post-confirmation",
        &[
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:DeleteItem"),
        ],
    ),
];

/// The real-time push functions' DynamoDB permissions; each statement is also confined to
/// its item families by `dynamodb:LeadingKeys` (checked below).
const PUSH_DYNAMODB_GRANTS: [(&str, &[(&str, &str)]); 6] = [
    ("ws-authorizer", &[(TABLE, "dynamodb:GetItem")]),
    // The cap: the user's connections, and the items of the oldest it closes; presence on
    // the profile, and the watchers.
    (
        "ws-connect",
        &[
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:DeleteItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    (
        "ws-disconnect",
        &[
            (TABLE, "dynamodb:DeleteItem"),
            (TABLE, "dynamodb:UpdateItem"),
            (TABLE, "dynamodb:Query"),
        ],
    ),
    // The members, the partner's profile, the watch and the connection naming it.
    (
        "ws-presence",
        &[
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:GetItem"),
            (TABLE, "dynamodb:PutItem"),
            (TABLE, "dynamodb:DeleteItem"),
            (TABLE, "dynamodb:UpdateItem"),
        ],
    ),
    // typing_at on the sender's membership; the other members and their connections.
    (
        "ws-typing",
        &[(TABLE, "dynamodb:UpdateItem"), (TABLE, "dynamodb:Query")],
    ),
    (
        "messaging-push",
        &[
            (TABLE, "dynamodb:Query"),
            (TABLE, "dynamodb:DeleteItem"),
            (STREAM, "dynamodb:DescribeStream"),
            (STREAM, "dynamodb:GetRecords"),
            (STREAM, "dynamodb:GetShardIterator"),
            (STREAM, "dynamodb:ListStreams"),
        ],
    ),
];

static TEMPLATE: LazyLock<Value> = LazyLock::new(|| {
    let text = std::fs::read_to_string(TEMPLATE_PATH)
        .unwrap_or_else(|err| panic!("reading {TEMPLATE_PATH}: {err}"));
    let docs = Yaml::load_from_str(&text).unwrap_or_else(|err| panic!("parsing template: {err}"));
    assert_eq!(docs.len(), 1, "template.yaml holds one YAML document");
    to_json(&docs[0])
});

/// YAML to JSON, with CloudFormation's short tags turned into their long form, so the
/// checks below see one shape whichever form the template uses.
fn to_json(node: &Yaml) -> Value {
    match node {
        Yaml::Value(scalar) => match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => json!(b),
            Scalar::Integer(i) => json!(i),
            Scalar::FloatingPoint(f) => json!(f.into_inner()),
            Scalar::String(s) => json!(s.as_ref()),
        },
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Yaml::Value(Scalar::String(s)) => s.to_string(),
                        Yaml::Value(other) => to_json(&Yaml::Value(other.clone())).to_string(),
                        other => panic!("non-scalar mapping key {other:?}"),
                    };
                    (key, to_json(value))
                })
                .collect(),
        ),
        Yaml::Tagged(tag, inner) if tag.handle == "!" => {
            let inner = to_json(inner);
            match tag.suffix.as_str() {
                "Ref" | "Condition" => json!({ tag.suffix.clone(): inner }),
                // `!GetAtt Res.Attr` is the string form of `Fn::GetAtt: [Res, Attr]`.
                "GetAtt" => match inner.as_str().and_then(|s| s.split_once('.')) {
                    Some((resource, attribute)) => json!({ "Fn::GetAtt": [resource, attribute] }),
                    None => json!({ "Fn::GetAtt": inner }),
                },
                function => json!({ format!("Fn::{function}"): inner }),
            }
        }
        other => panic!("unsupported YAML node in template: {other:?}"),
    }
}

fn resources() -> &'static Map<String, Value> {
    TEMPLATE["Resources"]
        .as_object()
        .expect("template has Resources")
}

fn resource(logical_id: &str) -> &'static Value {
    resources()
        .get(logical_id)
        .unwrap_or_else(|| panic!("no resource {logical_id}"))
}

fn resources_of_type(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

/// The target of `{"Ref": X}`.
fn ref_of(value: &Value) -> Option<&str> {
    value.get("Ref")?.as_str()
}

/// `(resource, attribute)` of `{"Fn::GetAtt": [R, A]}` (or the dotted string form).
fn get_att(value: &Value) -> Option<(String, String)> {
    match value.get("Fn::GetAtt")? {
        Value::Array(parts) => match parts.as_slice() {
            [Value::String(r), Value::String(a)] => Some((r.clone(), a.clone())),
            _ => None,
        },
        Value::String(dotted) => dotted
            .split_once('.')
            .map(|(r, a)| (r.to_owned(), a.to_owned())),
        _ => None,
    }
}

/// A `Fn::Sub` string, without its variable map.
fn sub_of(value: &Value) -> Option<&str> {
    match value.get("Fn::Sub")? {
        Value::String(s) => Some(s),
        Value::Array(parts) => parts.first()?.as_str(),
        _ => None,
    }
}

/// `some-name` -> `SomeName`: the logical-ID convention of the template.
fn pascal_case(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

fn function_id(name: &str) -> String {
    format!("{}Function", pascal_case(name))
}

/// A property of a serverless function, or the `Globals` value it inherits.
fn function_property(logical_id: &str, key: &str) -> Option<&'static Value> {
    resource(logical_id)["Properties"]
        .get(key)
        .or_else(|| TEMPLATE["Globals"]["Function"].get(key))
}

/// A value that is a list or a single item (IAM's `Action` / `Resource`), as a list.
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    }
}

fn the_table() -> (&'static str, &'static Value) {
    let tables = resources_of_type("AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "one table (single-table design)");
    tables[0]
}

fn parameter_default(name: &str) -> &'static Value {
    &TEMPLATE["Parameters"][name]["Default"]
}

#[test]
fn table_matches_the_schema_in_code() {
    let (_, table) = the_table();
    let props = &table["Properties"];

    let key_schema = |elements: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Value {
        elements
            .iter()
            .map(|e| json!({ "AttributeName": e.attribute_name(), "KeyType": e.key_type().as_str() }))
            .collect()
    };
    assert_eq!(
        props["KeySchema"],
        key_schema(&schema::table_key_schema().unwrap()),
        "table keys"
    );

    let definitions =
        |v: &Value| -> BTreeSet<String> { one_or_many(v).iter().map(|d| d.to_string()).collect() };
    let expected: Value = schema::attribute_definitions()
        .unwrap()
        .iter()
        .map(|d| json!({ "AttributeName": d.attribute_name(), "AttributeType": d.attribute_type().as_str() }))
        .collect();
    assert_eq!(
        definitions(&props["AttributeDefinitions"]),
        definitions(&expected),
        "attribute definitions"
    );

    // Capacity differs by billing mode (a parameter); names, keys and projection may not.
    let indexes: Vec<Value> = one_or_many(&props["GlobalSecondaryIndexes"])
        .into_iter()
        .map(|gsi| {
            json!({
                "IndexName": gsi["IndexName"],
                "KeySchema": gsi["KeySchema"],
                "Projection": gsi["Projection"],
            })
        })
        .collect();
    let expected: Vec<Value> = schema::global_secondary_indexes()
        .unwrap()
        .iter()
        .map(|gsi| {
            json!({
                "IndexName": gsi.index_name(),
                "KeySchema": key_schema(gsi.key_schema()),
                "Projection": {
                    "ProjectionType": gsi.projection().and_then(|p| p.projection_type()).map(|t| t.as_str()),
                },
            })
        })
        .collect();
    assert_eq!(indexes, expected, "global secondary indexes");
    assert_eq!(
        props["StreamSpecification"]["StreamViewType"],
        schema::STREAM_VIEW.as_str(),
        "stream view type"
    );

    assert_eq!(ref_of(&props["TableName"]), Some("TableName"));
    assert_eq!(parameter_default("TableName"), schema::DEFAULT_TABLE_NAME);
    assert_eq!(ref_of(&props["BillingMode"]), Some("BillingMode"));
    assert_eq!(
        parameter_default("BillingMode"),
        schema::BILLING_MODE.as_str()
    );
}

#[test]
fn table_is_protected() {
    let (_, table) = the_table();
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let props = &table["Properties"];
    assert_eq!(props["DeletionProtectionEnabled"], true);
    assert_eq!(
        props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(props["SSESpecification"]["SSEEnabled"], true);
}

/// One build for the whole stack: every function is the one binary, built once by
/// cargo-lambda (SAM groups functions whose Runtime, CodeUri, Metadata and Architectures
/// agree into one build; each is checked equal here and in the next test), and its
/// `Handler` tells the binary which function it is. Each function of the code is deployed
/// exactly once, under its own name.
#[test]
fn one_binary_built_once_by_cargo_lambda_and_a_handler_per_function() {
    let functions = resources_of_type("AWS::Serverless::Function");
    let mut handlers: BTreeMap<&str, &str> = BTreeMap::new();
    for (id, f) in &functions {
        assert_eq!(
            f["Metadata"],
            json!({ "BuildMethod": "rust-cargolambda", "BuildProperties": { "Binary": BINARY } }),
            "{id} is the one binary, built by cargo-lambda"
        );
        // Each function's own, never a global default: a function without one would run
        // whatever its deployed name says, or fail at init.
        let handler = f["Properties"]["Handler"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} names its Handler"));
        assert_eq!(
            Function::named(handler).map(Function::name),
            Some(handler),
            "{id}'s Handler {handler:?} is a function of the code"
        );
        assert!(
            handlers.insert(handler, id).is_none(),
            "{handler} is deployed twice"
        );
    }
    assert_eq!(TEMPLATE["Globals"]["Function"].get("Handler"), None);
    assert_eq!(
        handlers.keys().copied().collect::<BTreeSet<_>>(),
        FUNCTION_NAMES.into_iter().collect::<BTreeSet<_>>(),
        "the template's functions are exactly Function::ALL"
    );

    for name in FUNCTION_NAMES {
        let id = function_id(name);
        assert_eq!(handlers[name], id, "logical ID of {name}");
        let deployed = sub_of(&resource(&id)["Properties"]["FunctionName"]);
        assert_eq!(
            deployed,
            Some(format!("${{AWS::StackName}}-{name}").as_str()),
            "deployed name of {name}"
        );
        assert_eq!(
            function_property(&id, "Runtime"),
            Some(&json!("provided.al2023"))
        );
        // cargo-lambda builds the workspace from its root.
        assert_eq!(function_property(&id, "CodeUri"), Some(&json!(".")));
        let table_env = function_property(&id, "Environment")
            .and_then(|e| e["Variables"].get(schema::TABLE_NAME_ENV))
            .unwrap_or_else(|| panic!("{name} gets {}", schema::TABLE_NAME_ENV));
        assert_eq!(ref_of(table_env), Some(the_table().0), "{name}'s table");
    }
}

#[test]
fn architecture_is_a_parameter_defaulting_to_arm64() {
    let parameter = &TEMPLATE["Parameters"]["Architecture"];
    assert_eq!(parameter["Default"], "arm64");
    assert_eq!(parameter["AllowedValues"], json!(["arm64", "x86_64"]));
    for name in FUNCTION_NAMES {
        let architectures = function_property(&function_id(name), "Architectures")
            .unwrap_or_else(|| panic!("{name} has Architectures"));
        assert_eq!(architectures, &json!([{ "Ref": "Architecture" }]), "{name}");
    }
}

#[test]
fn every_function_logs_json_to_its_own_group_with_retention() {
    for name in FUNCTION_NAMES {
        let id = function_id(name);
        let logging = function_property(&id, "LoggingConfig")
            .unwrap_or_else(|| panic!("{name} has LoggingConfig"));
        assert_eq!(logging["LogFormat"], "JSON", "{name}");
        let group_id = ref_of(&logging["LogGroup"])
            .unwrap_or_else(|| panic!("{name} logs to a group of the stack"));
        let group = resource(group_id);
        assert_eq!(group["Type"], "AWS::Logs::LogGroup");
        assert_eq!(
            sub_of(&group["Properties"]["LogGroupName"]),
            Some(format!("/aws/lambda/${{AWS::StackName}}-{name}").as_str()),
            "{name}'s log group has Lambda's default name"
        );
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{group_id} has a retention"
        );
        // The application level is LogLevel; the runtime's own lines stay at INFO.
        assert_eq!(
            ref_of(&logging["ApplicationLogLevel"]),
            Some("LogLevel"),
            "{name}"
        );
        assert_eq!(logging["SystemLogLevel"], "INFO", "{name}");
    }
}

/// No LogLevel lets the runtime or the SDK log raw events (bearer tokens, `?token=`,
/// message text): they do at TRACE, and the functions' filter holds them at INFO anyway
/// (`functions::logging`, tested in tests/logging.rs).
#[test]
fn log_level_stops_at_debug() {
    let parameter = &TEMPLATE["Parameters"]["LogLevel"];
    assert_eq!(
        parameter["AllowedValues"],
        json!(["DEBUG", "INFO", "WARN", "ERROR", "FATAL"])
    );
    assert_eq!(parameter["Default"], "INFO");
    assert_eq!(
        functions::logging::PAYLOAD_TARGETS_CEILING,
        tracing::level_filters::LevelFilter::INFO
    );
}

/// A stream trigger's filter patterns, parsed, in the template's order.
fn filter_patterns(trigger: &Value) -> Vec<Value> {
    one_or_many(&trigger["FilterCriteria"]["Filters"])
        .iter()
        .map(|filter| {
            serde_json::from_str(filter["Pattern"].as_str().expect("Pattern is a string"))
                .expect("Pattern is JSON")
        })
        .collect()
}

fn parsed_patterns(patterns: &[&str]) -> Vec<Value> {
    patterns
        .iter()
        .map(|pattern| serde_json::from_str(pattern).unwrap())
        .collect()
}

#[test]
fn stream_trigger_filters_and_retries_as_the_handler_expects() {
    let id = function_id("messaging-stream");
    let events: Vec<&Value> = resource(&id)["Properties"]["Events"]
        .as_object()
        .expect("messaging-stream has Events")
        .values()
        .collect();
    assert_eq!(events.len(), 1, "one trigger");
    let event = events[0];
    assert_eq!(event["Type"], "DynamoDB");
    let p = &event["Properties"];

    assert_eq!(
        get_att(&p["Stream"]),
        Some((the_table().0.to_owned(), "StreamArn".to_owned()))
    );
    assert_eq!(
        filter_patterns(p),
        parsed_patterns(&FILTER_PATTERNS),
        "FilterCriteria = FILTER_PATTERNS"
    );
    assert_eq!(FILTER_PATTERNS[0], FILTER_PATTERN);

    // The handler answers with batchItemFailures; without this, Lambda ignores them and
    // treats every partially failed batch as a success.
    assert_eq!(
        p["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(p["BisectBatchOnFunctionError"], true);
    assert_eq!(
        p["StartingPosition"], "TRIM_HORIZON",
        "no message is skipped"
    );
    let retries = p["MaximumRetryAttempts"].as_i64().expect("retries set");
    assert!((0..=10_000).contains(&retries), "finite retries: {retries}");
    // A trigger starting at TRIM_HORIZON must apply what it finds, not dead-letter the
    // records older than an age limit (a re-created trigger would flood the dead-letter
    // queue with records already applied). Finite retries end a poisoned batch instead, and
    // StreamIteratorAgeAlarm reports a shard falling behind long before the 24 h retention.
    let age = p["MaximumRecordAgeInSeconds"].as_i64().expect("age set");
    assert!(
        age == -1 || age >= 86_400,
        "no record is dead-lettered for its age while the stream still holds it: {age}"
    );
    let batch = p["BatchSize"].as_i64().expect("batch size set");
    assert!((1..=10_000).contains(&batch));
    let window = p["MaximumBatchingWindowInSeconds"]
        .as_i64()
        .expect("batching window set");
    assert!((0..=300).contains(&window));

    let (queue, attribute) =
        get_att(&p["DestinationConfig"]["OnFailure"]["Destination"]).expect("on-failure queue");
    assert_eq!(attribute, "Arn");
    let queue = resource(&queue);
    assert_eq!(queue["Type"], "AWS::SQS::Queue");
    assert!(
        queue["Properties"]["SqsManagedSseEnabled"] == true
            || !queue["Properties"]["KmsMasterKeyId"].is_null(),
        "dead-letter queue is encrypted"
    );
    assert!(!queue["Properties"]["MessageRetentionPeriod"].is_null());
}

#[test]
fn the_stream_function_queries_the_table_only_for_memberships_and_members_rows() {
    let (role, _) = get_att(&resource(&function_id("messaging-stream"))["Properties"]["Role"])
        .expect("explicit role");
    let (table, _) = the_table();
    let table_queries: Vec<&Value> = policy_statements()
        .into_iter()
        .filter(|(owner, _)| *owner == role)
        .map(|(_, statement)| statement)
        .filter(|statement| {
            one_or_many(&statement["Action"]).contains(&&json!("dynamodb:Query"))
                && get_att(&statement["Resource"]) == Some((table.to_owned(), "Arn".to_owned()))
        })
        .collect();
    let leading_keys: BTreeSet<String> = table_queries
        .iter()
        .map(|statement| {
            statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"].to_string()
        })
        .collect();
    let only = |prefix: &str| json!([format!("{prefix}*")]).to_string();
    assert_eq!(
        leading_keys,
        BTreeSet::from([
            only(messaging::keys::MEMBERSHIP_PREFIX),
            only(messaging::keys::INBOX_PREFIX)
        ]),
        "only MBR# partitions, and GRP# ones (an edited message's previews)"
    );
    // Rows are updated only where they can be queried: members' inbox partitions.
    let updates: Vec<&&Value> = table_queries
        .iter()
        .filter(|statement| {
            one_or_many(&statement["Action"]).contains(&&json!("dynamodb:UpdateItem"))
        })
        .collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"].to_string(),
        only(messaging::keys::INBOX_PREFIX)
    );
}

#[test]
fn alarms_watch_every_way_inboxes_can_fall_behind() {
    let function = function_id("messaging-stream");
    let alarms = resources_of_type("AWS::CloudWatch::Alarm");
    let watching = |namespace: &str, metric: &str| -> &Value {
        let matching: Vec<&Value> = alarms
            .iter()
            .map(|(_, alarm)| &alarm["Properties"])
            .filter(|p| p["Namespace"] == namespace && p["MetricName"] == metric)
            // Other functions' alarms on the same metric (ws-typing's Errors) are theirs.
            .filter(|p| {
                one_or_many(&p["Dimensions"]).iter().all(|d| {
                    d["Name"] != "FunctionName" || ref_of(&d["Value"]) == Some(function.as_str())
                })
            })
            .collect();
        assert_eq!(matching.len(), 1, "one alarm on {namespace}/{metric}");
        matching[0]
    };
    for (namespace, metric) in [
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "IteratorAge"),
        (METRICS_NAMESPACE, "FailedConversations"),
        (METRICS_NAMESPACE, "AbandonedConversations"),
    ] {
        let alarm = watching(namespace, metric);
        let dimensions = one_or_many(&alarm["Dimensions"]);
        assert_eq!(dimensions.len(), 1, "{metric}");
        // The function's name: what AWS/Lambda reports and what the EMF line carries
        // (AWS_LAMBDA_FUNCTION_NAME).
        assert_eq!(dimensions[0]["Name"], "FunctionName", "{metric}");
        assert_eq!(
            ref_of(&dimensions[0]["Value"]),
            Some(function.as_str()),
            "{metric}"
        );
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{metric}");
        assert!(!alarm["AlarmActions"].is_null(), "{metric} notifies");
    }
    let abandoned = watching(METRICS_NAMESPACE, "AbandonedConversations");
    assert_eq!(
        abandoned["Threshold"], 1,
        "any abandoned conversation alarms"
    );
    watching("AWS/SQS", "ApproximateNumberOfMessagesVisible");
}

#[test]
fn routes_match_the_brief() {
    let api_id = {
        let apis = resources_of_type("AWS::Serverless::HttpApi");
        assert_eq!(apis.len(), 1, "one HTTP API");
        apis[0].0
    };
    let mut found = BTreeSet::new();
    for (id, function) in resources_of_type("AWS::Serverless::Function") {
        let handler = function["Properties"]["Handler"].as_str().unwrap();
        let Some(events) = function["Properties"]["Events"].as_object() else {
            continue;
        };
        for event in events.values().filter(|e| e["Type"] == "HttpApi") {
            let p = &event["Properties"];
            assert_eq!(ref_of(&p["ApiId"]), Some(api_id), "{id} is on the API");
            assert_eq!(p["PayloadFormatVersion"], "2.0", "{id}");
            let public = match p["Auth"]["Authorizer"].as_str() {
                Some("NONE") => true,
                None => false,
                Some(named) => {
                    let api = resource(api_id);
                    assert!(
                        !api["Properties"]["Auth"]["Authorizers"][named].is_null(),
                        "{id}: unknown authorizer {named}"
                    );
                    false
                }
            };
            found.insert((
                p["Method"].as_str().unwrap().to_ascii_uppercase(),
                p["Path"].as_str().unwrap().to_owned(),
                handler.to_owned(),
                public,
            ));
        }
    }
    // The route table (which the functions and the local stack serve) is what is deployed. `GET
    // /api/users/@{handle}/short` is declared as `/api/users/{handle}/short`: API Gateway
    // path variables fill a whole segment, so `handle` arrives with its `@`.
    let expected: BTreeSet<_> = Route::ALL
        .iter()
        .map(|route| {
            (
                route.method().to_owned(),
                route.path().to_owned(),
                route.function().to_owned(),
                route.access() == Access::Public,
            )
        })
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn api_verifies_cognito_tokens_and_allows_the_frontend() {
    let (_, api) = resources_of_type("AWS::Serverless::HttpApi")[0];
    let auth = &api["Properties"]["Auth"];
    let default = auth["DefaultAuthorizer"]
        .as_str()
        .expect("a default authorizer");
    let jwt = &auth["Authorizers"][default]["JwtConfiguration"];
    let issuer = sub_of(&jwt["issuer"]).expect("issuer is built from the pool");
    assert!(
        issuer.starts_with("https://cognito-idp.${AWS::Region}.amazonaws.com/${"),
        "{issuer}"
    );
    let pool = issuer.rsplit("${").next().unwrap().trim_end_matches('}');
    assert_eq!(resource(pool)["Type"], "AWS::Cognito::UserPool");
    let client = ref_of(&jwt["audience"][0]).expect("audience is the app client");
    assert_eq!(resource(client)["Type"], "AWS::Cognito::UserPoolClient");
    // Access tokens only: every route requires the scope the verifier of ws-authorizer and
    // of the local stack requires (ID tokens lack it).
    assert_eq!(
        auth["Authorizers"][default]["AuthorizationScopes"],
        json!([functions::jwt::REQUIRED_SCOPE])
    );

    let cors = &api["Properties"]["CorsConfiguration"];
    assert_eq!(cors["AllowOrigins"], json!([{ "Ref": "FrontendOrigin" }]));
    assert_eq!(parameter_default("FrontendOrigin"), "http://localhost:3000");
    let lower = |v: &Value| -> BTreeSet<String> {
        one_or_many(v)
            .iter()
            .filter_map(|h| h.as_str())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    assert!(lower(&cors["AllowHeaders"]).is_superset(&BTreeSet::from([
        "authorization".to_owned(),
        "content-type".to_owned()
    ])));
    assert!(lower(&cors["AllowMethods"]).is_superset(&BTreeSet::from([
        "get".to_owned(),
        "post".to_owned(),
        "options".to_owned()
    ])));
    for route in Route::ALL {
        assert!(
            lower(&cors["AllowMethods"]).contains(&route.method().to_ascii_lowercase()),
            "{}: its method is allowed cross-origin",
            route.key()
        );
    }
    assert!(
        lower(&cors["ExposeHeaders"]).contains("x-next-cursor"),
        "the page cursor header is readable by the frontend"
    );
    assert!(
        lower(&cors["ExposeHeaders"]).contains("retry-after"),
        "a 429's wait is readable by the frontend"
    );
}

#[test]
fn cognito_triggers_are_wired() {
    let pools = resources_of_type("AWS::Cognito::UserPool");
    assert_eq!(pools.len(), 1);
    let (pool, props) = (pools[0].0, &pools[0].1["Properties"]);
    for (trigger, name) in [
        ("PreSignUp", "cognito-pre-signup"),
        ("PostConfirmation", "cognito-post-confirmation"),
    ] {
        let function = function_id(name);
        assert_eq!(
            get_att(&props["LambdaConfig"][trigger]),
            Some((function.clone(), "Arn".to_owned())),
            "{trigger} runs {name}"
        );
        let permitted = resources_of_type("AWS::Lambda::Permission")
            .into_iter()
            .any(|(_, p)| {
                let p = &p["Properties"];
                p["Action"] == "lambda:InvokeFunction"
                    && p["Principal"] == "cognito-idp.amazonaws.com"
                    && get_att(&p["FunctionName"]).is_some_and(|(f, _)| f == function)
                    && get_att(&p["SourceArn"]) == Some((pool.to_owned(), "Arn".to_owned()))
                    && ref_of(&p["SourceAccount"]) == Some("AWS::AccountId")
            });
        assert!(permitted, "Cognito may invoke {name}, for this pool only");
        // Cognito gives a trigger 5 s; a longer timeout would only hide a stuck read.
        let timeout = function_property(&function, "Timeout").and_then(Value::as_i64);
        assert!(timeout.is_some_and(|t| t <= 5), "{name}: {timeout:?}");
    }
    let attribute = |name: &str| {
        one_or_many(&props["Schema"])
            .into_iter()
            .find(|a| a["Name"] == name)
            .unwrap_or_else(|| panic!("schema has {name}"))
    };
    assert_eq!(attribute("name")["Required"], true);
    let handle = attribute("preferred_username");
    assert_eq!(
        handle["Required"], true,
        "the handle is asked for at sign-up"
    );
    assert_eq!(handle["Mutable"], false, "and cannot change afterwards");

    // The web client writes the sign-up attributes and nothing else.
    let clients = resources_of_type("AWS::Cognito::UserPoolClient");
    assert_eq!(clients.len(), 1);
    let writable: BTreeSet<&str> = one_or_many(&clients[0].1["Properties"]["WriteAttributes"])
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(
        writable,
        BTreeSet::from(["email", "name", "preferred_username"])
    );
}

/// The sign-up triggers touch handle reservations in the handle's partition only: the pre
/// sign-up trigger writes nothing else, and the confirmation deletes nothing else.
#[test]
fn sign_up_triggers_reserve_and_clear_only_handles() {
    let handles = json!([format!("{}*", messaging::keys::HANDLE_PREFIX)]);
    for (name, action) in [
        ("cognito-pre-signup", "dynamodb:PutItem"),
        ("cognito-pre-signup", "dynamodb:ConditionCheckItem"),
        ("cognito-post-confirmation", "dynamodb:DeleteItem"),
    ] {
        let (role, _) = get_att(&resource(&function_id(name))["Properties"]["Role"]).unwrap();
        let statements: Vec<&Value> = policy_statements()
            .into_iter()
            .filter(|(owner, statement)| {
                *owner == role && one_or_many(&statement["Action"]).contains(&&json!(action))
            })
            .map(|(_, statement)| statement)
            .collect();
        assert_eq!(statements.len(), 1, "{name} {action}");
        assert_eq!(
            statements[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"], handles,
            "{name} {action}"
        );
    }
}

/// Every statement of every policy in the stack: (owner, statement).
fn policy_statements() -> Vec<(String, &'static Value)> {
    let mut statements = Vec::new();
    for (id, r) in resources() {
        let documents: Vec<&Value> = match r["Type"].as_str() {
            Some("AWS::IAM::Role") => one_or_many(&r["Properties"]["Policies"])
                .into_iter()
                .map(|p| &p["PolicyDocument"])
                .collect(),
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                vec![&r["Properties"]["PolicyDocument"]]
            }
            _ => Vec::new(),
        };
        for document in documents {
            for statement in one_or_many(&document["Statement"]) {
                statements.push((id.clone(), statement));
            }
        }
    }
    statements
}

#[test]
fn no_wildcard_actions_or_resources() {
    let statements = policy_statements();
    assert!(!statements.is_empty());
    for (owner, statement) in statements {
        assert_eq!(statement["Effect"], "Allow", "{owner}: allow-lists only");
        assert!(
            statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
            "{owner}: NotAction/NotResource grant everything else"
        );
        for action in one_or_many(&statement["Action"]) {
            let action = action.as_str().expect("action is a string");
            assert!(!action.contains('*'), "{owner}: wildcard action {action}");
        }
        let resources = one_or_many(&statement["Resource"]);
        assert!(!resources.is_empty(), "{owner}: statement names resources");
        for resource in resources {
            assert_ne!(resource, &json!("*"), "{owner}: `*` resource");
        }
    }
    // A SAM `Policies` property would make SAM attach its managed execution roles, whose
    // statements allow `Resource: "*"`; each function must use its own explicit role.
    for (id, function) in resources_of_type("AWS::Serverless::Function") {
        assert!(function["Properties"].get("Policies").is_none(), "{id}");
        let (role, _) = get_att(&function["Properties"]["Role"])
            .unwrap_or_else(|| panic!("{id} has an explicit role"));
        assert_eq!(resource(&role)["Type"], "AWS::IAM::Role", "{id}");
        assert!(
            resource(&role)["Properties"]
                .get("ManagedPolicyArns")
                .is_none()
        );
    }
}

#[test]
fn each_function_gets_exactly_its_dynamodb_actions() {
    let (table, _) = the_table();
    let index = format!("${{{table}.Arn}}/index/{}", schema::GROUP_INDEX);
    let streams = format!("${{{table}.Arn}}/stream/*");
    let classify = |resource: &Value| -> &'static str {
        match (get_att(resource), sub_of(resource)) {
            (Some((r, a)), _) if r == table && a == "Arn" => TABLE,
            (Some((r, a)), _) if r == table && a == "StreamArn" => STREAM,
            (_, Some(s)) if s == index => INDEX,
            (_, Some(s)) if s == streams => STREAM,
            _ => panic!("DynamoDB permission on an unexpected resource: {resource}"),
        }
    };
    for (name, grants) in DYNAMODB_GRANTS.into_iter().chain(PUSH_DYNAMODB_GRANTS) {
        let (role, _) = get_att(&resource(&function_id(name))["Properties"]["Role"]).unwrap();
        let mut granted = BTreeSet::new();
        for (owner, statement) in policy_statements() {
            if owner != role {
                continue;
            }
            for action in one_or_many(&statement["Action"]) {
                let action = action.as_str().unwrap();
                if action.starts_with("dynamodb:") {
                    for resource in one_or_many(&statement["Resource"]) {
                        granted.insert((classify(resource), action.to_owned()));
                    }
                }
            }
        }
        let expected: BTreeSet<_> = grants.iter().map(|&(r, a)| (r, a.to_owned())).collect();
        assert_eq!(granted, expected, "{name}");
    }
    assert_eq!(
        DYNAMODB_GRANTS.len() + PUSH_DYNAMODB_GRANTS.len(),
        FUNCTION_NAMES.len()
    );
}

#[test]
fn outputs_tell_a_frontend_and_an_operator_where_things_are() {
    let outputs = TEMPLATE["Outputs"].as_object().expect("Outputs");
    for name in [
        "ApiUrl",
        "TableName",
        "TableStreamArn",
        "StreamDeadLetterQueueUrl",
        "UserPoolId",
        "UserPoolClientId",
    ] {
        assert!(outputs.contains_key(name), "output {name}");
    }
}

#[test]
fn short_tags_read_as_long_form() {
    let docs =
        Yaml::load_from_str("a: !Ref T\nb: !GetAtt T.StreamArn\nc: !Sub '${T.Arn}/x'\n").unwrap();
    assert_eq!(
        to_json(&docs[0]),
        json!({
            "a": { "Ref": "T" },
            "b": { "Fn::GetAtt": ["T", "StreamArn"] },
            "c": { "Fn::Sub": "${T.Arn}/x" },
        })
    );
}

// -------------------------------------------------------------------------------------------
// Real-time push: the WebSocket API, its functions, and the push consumer of the stream.
// -------------------------------------------------------------------------------------------

/// The resources a `Fn::Sub` string or a `Fn::GetAtt` names.
fn names(value: &Value, resource: &str) -> bool {
    sub_of(value).is_some_and(|s| {
        s.contains(&format!("${{{resource}}}")) || s.contains(&format!("${{{resource}."))
    }) || get_att(value).is_some_and(|(r, _)| r == resource)
        || ref_of(value) == Some(resource)
}

fn the_websocket_api() -> &'static str {
    let apis = resources_of_type("AWS::ApiGatewayV2::Api");
    assert_eq!(apis.len(), 1, "one WebSocket API");
    assert_eq!(apis[0].1["Properties"]["ProtocolType"], "WEBSOCKET");
    apis[0].0
}

#[test]
fn connect_is_authorized_by_ws_authorizer_with_the_token_in_the_query() {
    let api = the_websocket_api();
    let authorizers = resources_of_type("AWS::ApiGatewayV2::Authorizer");
    assert_eq!(authorizers.len(), 1);
    let (authorizer, props) = (authorizers[0].0, &authorizers[0].1["Properties"]);
    assert_eq!(ref_of(&props["ApiId"]), Some(api));
    assert_eq!(props["AuthorizerType"], "REQUEST");
    assert_eq!(
        props["IdentitySource"],
        json!([websocket::IDENTITY_SOURCE]),
        "browsers cannot set headers on a WebSocket: the token is ?{}=",
        websocket::TOKEN_PARAMETER
    );
    assert!(names(
        &props["AuthorizerUri"],
        &function_id("ws-authorizer")
    ));

    let integration_target = |route: &Value| -> String {
        let target = sub_of(&route["Target"]).expect("a route targets an integration");
        let integration = target
            .strip_prefix("integrations/${")
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or_else(|| panic!("target {target}"));
        let integration = resource(integration);
        assert_eq!(integration["Type"], "AWS::ApiGatewayV2::Integration");
        assert_eq!(integration["Properties"]["IntegrationType"], "AWS_PROXY");
        assert_eq!(ref_of(&integration["Properties"]["ApiId"]), Some(api));
        let uri = &integration["Properties"]["IntegrationUri"];
        FUNCTION_NAMES
            .iter()
            .find(|name| names(uri, &function_id(name)))
            .unwrap_or_else(|| panic!("{uri} invokes a function of the stack"))
            .to_string()
    };
    let routes: BTreeMap<String, (&Value, String)> = resources_of_type("AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(|(_, route)| {
            let p = &route["Properties"];
            assert_eq!(ref_of(&p["ApiId"]), Some(api));
            (
                p["RouteKey"].as_str().unwrap().to_owned(),
                (p, integration_target(p)),
            )
        })
        .collect();
    let mut expected_routes = vec!["$connect", "$disconnect", ws_actions::DEFAULT_ROUTE];
    expected_routes.extend(ws_actions::ACTIONS);
    expected_routes.sort_unstable();
    assert_eq!(
        routes.keys().map(String::as_str).collect::<Vec<_>>(),
        expected_routes,
        "a route per client action (ws_actions::ACTIONS), and $default"
    );
    for key in [ws_actions::TYPING_ACTION, ws_actions::DEFAULT_ROUTE] {
        let (route, function) = &routes[key];
        assert_eq!(function, "ws-typing", "{key}");
        assert_eq!(
            route["AuthorizationType"], "NONE",
            "{key}: authorized at $connect"
        );
        assert!(
            route.get("RouteResponseSelectionExpression").is_none(),
            "{key} is one-way: ws-typing posts what the client gets"
        );
    }
    let (connect, connect_function) = &routes["$connect"];
    assert_eq!(connect["AuthorizationType"], "CUSTOM");
    assert_eq!(ref_of(&connect["AuthorizerId"]), Some(authorizer));
    assert_eq!(connect_function, "ws-connect");
    let (_, disconnect_function) = &routes["$disconnect"];
    assert_eq!(disconnect_function, "ws-disconnect");
    // Two-way: the function's answer is the client's frame, through a $default route
    // response on that route.
    let (presence, presence_function) = &routes[ws_actions::PRESENCE_ACTION];
    assert_eq!(presence_function, "ws-presence");
    assert_eq!(presence["RouteResponseSelectionExpression"], "$default");
    let (presence_route, _) = resources_of_type("AWS::ApiGatewayV2::Route")
        .into_iter()
        .find(|(_, route)| route["Properties"]["RouteKey"] == ws_actions::PRESENCE_ACTION)
        .unwrap();
    let responses = resources_of_type("AWS::ApiGatewayV2::RouteResponse");
    assert_eq!(responses.len(), 1);
    let response = &responses[0].1["Properties"];
    assert_eq!(ref_of(&response["RouteId"]), Some(presence_route));
    assert_eq!(ref_of(&response["ApiId"]), Some(api));
    assert_eq!(response["RouteResponseKey"], "$default");

    let stages = resources_of_type("AWS::ApiGatewayV2::Stage");
    assert_eq!(stages.len(), 1);
    assert_eq!(ref_of(&stages[0].1["Properties"]["ApiId"]), Some(api));
    assert_eq!(stages[0].1["Properties"]["AutoDeploy"], true);

    // API Gateway may invoke each of the five functions, from this API only.
    for name in [
        "ws-authorizer",
        "ws-connect",
        "ws-disconnect",
        "ws-typing",
        "ws-presence",
    ] {
        let function = function_id(name);
        let permitted = resources_of_type("AWS::Lambda::Permission")
            .into_iter()
            .any(|(_, p)| {
                let p = &p["Properties"];
                p["Action"] == "lambda:InvokeFunction"
                    && p["Principal"] == "apigateway.amazonaws.com"
                    && get_att(&p["FunctionName"]).is_some_and(|(f, _)| f == function)
                    && sub_of(&p["SourceArn"]).is_some_and(|arn| {
                        arn.starts_with(
                            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:",
                        ) && arn.contains(&format!("${{{api}}}/"))
                    })
            });
        assert!(permitted, "API Gateway may invoke {name}");
    }

    // The same issuer and client as the HTTP API's JWT authorizer.
    let (_, http_api) = resources_of_type("AWS::Serverless::HttpApi")[0];
    let auth = &http_api["Properties"]["Auth"];
    let jwt = &auth["Authorizers"][auth["DefaultAuthorizer"].as_str().unwrap()]["JwtConfiguration"];
    let env = &resource(&function_id("ws-authorizer"))["Properties"]["Environment"]["Variables"];
    assert_eq!(env[functions::jwt::ISSUER_ENV], jwt["issuer"]);
    assert_eq!(env[functions::jwt::AUDIENCE_ENV], jwt["audience"][0]);
}

#[test]
fn push_reads_the_same_messages_as_the_stream_and_gives_up_soon() {
    assert_eq!(push::FILTER_PATTERN, FILTER_PATTERN);
    let id = function_id("messaging-push");
    let events: Vec<&Value> = resource(&id)["Properties"]["Events"]
        .as_object()
        .expect("messaging-push has Events")
        .values()
        .collect();
    assert_eq!(events.len(), 1, "one trigger");
    assert_eq!(events[0]["Type"], "DynamoDB");
    let p = &events[0]["Properties"];
    assert_eq!(
        get_att(&p["Stream"]),
        Some((the_table().0.to_owned(), "StreamArn".to_owned()))
    );
    assert_eq!(
        filter_patterns(p),
        parsed_patterns(&push::FILTER_PATTERNS),
        "FilterCriteria = push::FILTER_PATTERNS"
    );
    assert_eq!(
        p["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(
        p["StartingPosition"], "LATEST",
        "a new trigger replays nothing"
    );
    let retries = p["MaximumRetryAttempts"].as_i64().expect("retries set");
    assert!(
        (0..=3).contains(&retries),
        "a push is retried a few times at most: {retries}"
    );
    let age = p["MaximumRecordAgeInSeconds"].as_i64().expect("age set");
    assert!(
        (60..=900).contains(&age),
        "stale frames are given up on: {age}"
    );
    let (queue, _) = get_att(&p["DestinationConfig"]["OnFailure"]["Destination"]).unwrap();
    assert_eq!(resource(&queue)["Type"], "AWS::SQS::Queue");
    let (stream_queue, _) = get_att(
        &resource(&function_id("messaging-stream"))["Properties"]["Events"]["TableStream"]
            ["Properties"]["DestinationConfig"]["OnFailure"]["Destination"],
    )
    .unwrap();
    assert_ne!(queue, stream_queue, "its own dead-letter queue");

    // Posts go to this API's stage's Management API, and the role may post nowhere else.
    let api = the_websocket_api();
    let (stage, _) = resources_of_type("AWS::ApiGatewayV2::Stage")[0];
    let endpoint =
        sub_of(&resource(&id)["Properties"]["Environment"]["Variables"][push::ENDPOINT_ENV])
            .expect("the Management API endpoint");
    assert_eq!(
        endpoint,
        format!("https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/${{{stage}}}")
    );
    let (role, _) = get_att(&resource(&id)["Properties"]["Role"]).unwrap();
    let manage: Vec<&Value> = policy_statements()
        .into_iter()
        .filter(|(owner, statement)| {
            *owner == role
                && one_or_many(&statement["Action"])
                    .contains(&&json!("execute-api:ManageConnections"))
        })
        .map(|(_, statement)| statement)
        .collect();
    assert_eq!(manage.len(), 1);
    // PostToConnection, and DeleteConnection for connections past their token's expiry.
    let resources: Vec<Option<&str>> = one_or_many(&manage[0]["Resource"])
        .into_iter()
        .map(sub_of)
        .collect();
    let on_connections = |method: &str| {
        format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/${{{stage}}}/{method}/@connections/*"
        )
    };
    assert_eq!(
        resources,
        [
            Some(on_connections("POST").as_str()),
            Some(on_connections("DELETE").as_str())
        ]
    );
    // ws-connect closes the oldest connections beyond the cap: DELETE only, on the same
    // stage (named, not referenced: see the template), and the same endpoint.
    let (connect_role, _) =
        get_att(&resource(&function_id("ws-connect"))["Properties"]["Role"]).unwrap();
    let stage_name = resource(stage)["Properties"]["StageName"].as_str().unwrap();
    let connect_env =
        &resource(&function_id("ws-connect"))["Properties"]["Environment"]["Variables"];
    assert_eq!(
        sub_of(&connect_env[push::ENDPOINT_ENV]),
        Some(
            format!(
                "https://${{{api}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}/{stage_name}"
            )
            .as_str()
        )
    );
    let managed = |role: &str| -> Vec<Option<String>> {
        policy_statements()
            .into_iter()
            .filter(|(owner, statement)| {
                *owner == role
                    && one_or_many(&statement["Action"])
                        .contains(&&json!("execute-api:ManageConnections"))
            })
            .flat_map(|(_, statement)| one_or_many(&statement["Resource"]))
            .map(|resource| sub_of(resource).map(str::to_owned))
            .collect()
    };
    let on_stage = |method: &str| {
        Some(format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/{stage_name}/{method}/@connections/*"
        ))
    };
    // Closes beyond the cap, and posts presence frames to watchers.
    assert_eq!(
        managed(&connect_role),
        [on_stage("POST"), on_stage("DELETE")]
    );
    // ws-disconnect posts presence frames only, to the same stage.
    let disconnect = resource(&function_id("ws-disconnect"));
    let (disconnect_role, _) = get_att(&disconnect["Properties"]["Role"]).unwrap();
    assert_eq!(managed(&disconnect_role), [on_stage("POST")]);
    assert_eq!(
        disconnect["Properties"]["Environment"]["Variables"][push::ENDPOINT_ENV],
        connect_env[push::ENDPOINT_ENV]
    );
    // ws-typing posts typing and error frames: POST only, on the same stage and endpoint.
    let (typing_role, _) =
        get_att(&resource(&function_id("ws-typing"))["Properties"]["Role"]).unwrap();
    let typing_env = &resource(&function_id("ws-typing"))["Properties"]["Environment"]["Variables"];
    assert_eq!(
        sub_of(&typing_env[push::ENDPOINT_ENV]),
        sub_of(&connect_env[push::ENDPOINT_ENV])
    );
    let posts: Vec<Option<&str>> = policy_statements()
        .into_iter()
        .filter(|(owner, statement)| {
            *owner == typing_role
                && one_or_many(&statement["Action"])
                    .contains(&&json!("execute-api:ManageConnections"))
        })
        .flat_map(|(_, statement)| one_or_many(&statement["Resource"]))
        .map(sub_of)
        .collect();
    assert_eq!(
        posts,
        [Some(
            format!(
                "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{{api}}}/{stage_name}/POST/@connections/*"
            )
            .as_str()
        )]
    );
    assert!(
        policy_statements()
            .iter()
            .all(|(owner, statement)| *owner == role
                || *owner == connect_role
                || *owner == disconnect_role
                || *owner == typing_role
                || !one_or_many(&statement["Action"])
                    .contains(&&json!("execute-api:ManageConnections"))),
        "only messaging-push, ws-typing, ws-connect and ws-disconnect manage connections"
    );
}

#[test]
fn push_functions_touch_only_their_item_families() {
    let (table, _) = the_table();
    let prefix = |p: &str| format!("{p}*");
    let users = prefix(messaging::keys::SUB_PREFIX);
    let connections = prefix(messaging::keys::CONNECTION_PREFIX);
    let members = prefix(messaging::keys::MEMBERSHIP_PREFIX);
    let profiles = prefix(messaging::keys::USER_PREFIX);
    let watches = prefix(messaging::keys::WATCH_PREFIX);
    for (name, action, allowed) in [
        ("ws-authorizer", "dynamodb:GetItem", vec![users.clone()]),
        ("ws-connect", "dynamodb:PutItem", vec![connections.clone()]),
        (
            "ws-connect",
            "dynamodb:Query",
            vec![connections.clone(), watches.clone()],
        ),
        (
            "ws-connect",
            "dynamodb:DeleteItem",
            vec![connections.clone(), watches.clone()],
        ),
        ("ws-connect", "dynamodb:UpdateItem", vec![profiles.clone()]),
        (
            "ws-disconnect",
            "dynamodb:DeleteItem",
            vec![connections.clone(), watches.clone()],
        ),
        (
            "ws-disconnect",
            "dynamodb:UpdateItem",
            vec![profiles.clone()],
        ),
        ("ws-disconnect", "dynamodb:Query", vec![watches.clone()]),
        ("ws-presence", "dynamodb:Query", vec![members.clone()]),
        ("ws-presence", "dynamodb:GetItem", vec![profiles.clone()]),
        ("ws-presence", "dynamodb:PutItem", vec![watches.clone()]),
        ("ws-presence", "dynamodb:DeleteItem", vec![watches.clone()]),
        (
            "ws-presence",
            "dynamodb:UpdateItem",
            vec![connections.clone()],
        ),
        ("ws-typing", "dynamodb:UpdateItem", vec![members.clone()]),
        (
            "ws-typing",
            "dynamodb:Query",
            vec![members.clone(), connections.clone()],
        ),
        (
            "messaging-push",
            "dynamodb:Query",
            vec![members.clone(), connections.clone()],
        ),
        (
            "messaging-push",
            "dynamodb:DeleteItem",
            vec![connections.clone()],
        ),
    ] {
        let (role, _) = get_att(&resource(&function_id(name))["Properties"]["Role"]).unwrap();
        let statements: Vec<&Value> = policy_statements()
            .into_iter()
            .filter(|(owner, statement)| {
                *owner == role
                    && one_or_many(&statement["Action"]).contains(&&json!(action))
                    && get_att(&statement["Resource"]) == Some((table.to_owned(), "Arn".to_owned()))
            })
            .map(|(_, statement)| statement)
            .collect();
        // Every statement granting it is confined; together they name exactly `allowed`.
        assert!(!statements.is_empty(), "{name} {action}");
        let mut granted: Vec<String> = statements
            .iter()
            .flat_map(|statement| {
                let keys =
                    &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                assert!(keys.is_array(), "{name} {action}: confined");
                keys.as_array()
                    .unwrap()
                    .iter()
                    .map(|key| key.as_str().unwrap().to_owned())
            })
            .collect();
        granted.sort();
        let mut allowed = allowed;
        allowed.sort();
        assert_eq!(granted, allowed, "{name} {action}");
    }
}

#[test]
fn group_functions_write_only_the_item_families_they_change() {
    use messaging::keys::{INBOX_PREFIX, LIMIT_PREFIX, MEMBERSHIP_PREFIX, MESSAGE_PREFIX};
    // A creation naming a client_message_id puts its send record, and finishes it.
    use messaging::keys::SEND_RECORD_PREFIX;
    let (table, _) = the_table();
    let families =
        |prefixes: &[&str]| -> Value { prefixes.iter().map(|p| json!(format!("{p}*"))).collect() };
    for (name, action, allowed) in [
        (
            "create-message-group",
            "dynamodb:PutItem",
            families(&[
                MEMBERSHIP_PREFIX,
                INBOX_PREFIX,
                MESSAGE_PREFIX,
                SEND_RECORD_PREFIX,
            ]),
        ),
        (
            "create-message-group",
            "dynamodb:UpdateItem",
            families(&[INBOX_PREFIX, LIMIT_PREFIX, SEND_RECORD_PREFIX]),
        ),
        (
            "add-message-group-members",
            "dynamodb:PutItem",
            families(&[MEMBERSHIP_PREFIX, INBOX_PREFIX]),
        ),
        (
            "add-message-group-members",
            "dynamodb:UpdateItem",
            families(&[INBOX_PREFIX, LIMIT_PREFIX]),
        ),
        (
            "create-message",
            "dynamodb:UpdateItem",
            families(&[LIMIT_PREFIX]),
        ),
        (
            "leave-message-group",
            "dynamodb:DeleteItem",
            families(&[MEMBERSHIP_PREFIX, INBOX_PREFIX]),
        ),
        (
            "leave-message-group",
            "dynamodb:PutItem",
            families(&[MEMBERSHIP_PREFIX]),
        ),
        (
            "mark-message-group-read",
            "dynamodb:UpdateItem",
            families(&[INBOX_PREFIX, MEMBERSHIP_PREFIX]),
        ),
        (
            "mark-message-group-read",
            "dynamodb:Query",
            families(&[INBOX_PREFIX]),
        ),
        (
            "list-messages",
            "dynamodb:UpdateItem",
            families(&[INBOX_PREFIX, MEMBERSHIP_PREFIX]),
        ),
    ] {
        let (role, _) = get_att(&resource(&function_id(name))["Properties"]["Role"]).unwrap();
        let statements: Vec<&Value> = policy_statements()
            .into_iter()
            .filter(|(owner, statement)| {
                *owner == role
                    && one_or_many(&statement["Action"]).contains(&&json!(action))
                    && get_att(&statement["Resource"]) == Some((table.to_owned(), "Arn".to_owned()))
            })
            .map(|(_, statement)| statement)
            .collect();
        assert_eq!(statements.len(), 1, "{name} {action}");
        assert_eq!(
            statements[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"], allowed,
            "{name} {action}"
        );
    }
}

#[test]
fn block_functions_touch_only_blocks_memberships_and_pairs() {
    use messaging::keys::{BLOCK_PREFIX, MEMBERSHIP_PREFIX, PAIR_PREFIX};
    let (table, _) = the_table();
    let family = |prefix: &str| json!([format!("{prefix}*")]);
    for (name, action, allowed) in [
        ("block-user", "dynamodb:PutItem", family(BLOCK_PREFIX)),
        (
            "block-user",
            "dynamodb:UpdateItem",
            family(MEMBERSHIP_PREFIX),
        ),
        (
            "block-user",
            "dynamodb:ConditionCheckItem",
            family(PAIR_PREFIX),
        ),
        ("unblock-user", "dynamodb:DeleteItem", family(BLOCK_PREFIX)),
        (
            "unblock-user",
            "dynamodb:UpdateItem",
            family(MEMBERSHIP_PREFIX),
        ),
        // Its own list only: the caller is read by GetItem.
        ("list-blocks", "dynamodb:Query", family(BLOCK_PREFIX)),
    ] {
        let (role, _) = get_att(&resource(&function_id(name))["Properties"]["Role"]).unwrap();
        let statements: Vec<&Value> = policy_statements()
            .into_iter()
            .filter(|(owner, statement)| {
                *owner == role
                    && one_or_many(&statement["Action"]).contains(&&json!(action))
                    && get_att(&statement["Resource"]) == Some((table.to_owned(), "Arn".to_owned()))
            })
            .map(|(_, statement)| statement)
            .collect();
        assert_eq!(statements.len(), 1, "{name} {action}");
        assert_eq!(
            statements[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"], allowed,
            "{name} {action}"
        );
    }
}

#[test]
fn the_table_expires_connections_by_ttl() {
    let (_, table) = the_table();
    let ttl = &table["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"], schema::TTL_ATTRIBUTE);
    assert_eq!(ttl["Enabled"], true);
}

#[test]
fn outputs_tell_a_client_where_to_connect() {
    let outputs = TEMPLATE["Outputs"].as_object().expect("Outputs");
    let url = sub_of(&outputs["WebSocketUrl"]["Value"]).expect("WebSocketUrl");
    assert!(
        url.starts_with(&format!("wss://${{{}}}.", the_websocket_api())),
        "{url}"
    );
    assert!(outputs.contains_key("PushDeadLetterQueueUrl"));
}

/// Whether `value` names `resource` anywhere (Ref, GetAtt, Sub), however deeply nested,
/// e.g. inside a `Fn::If`.
fn mentions(value: &Value, resource: &str) -> bool {
    names(value, resource)
        || match value {
            Value::Array(items) => items.iter().any(|item| mentions(item, resource)),
            Value::Object(map) => map.values().any(|item| mentions(item, resource)),
            _ => false,
        }
}

/// WebSocket and REST stages that write access or execution logs: API Gateway creates
/// them only once the account's CloudWatch Logs role is set in the region. HTTP API stages
/// do not need it (AWS: "Configure logging for WebSocket APIs in API Gateway").
fn stages_logging_through_the_account_role() -> Vec<&'static str> {
    let websocket_stages = resources_of_type("AWS::ApiGatewayV2::Stage")
        .into_iter()
        .filter(|(_, stage)| {
            let api = ref_of(&stage["Properties"]["ApiId"]).expect("stage names its API");
            resource(api)["Properties"]["ProtocolType"] == "WEBSOCKET"
        })
        .filter(|(_, stage)| {
            let p = &stage["Properties"];
            let route = &p["DefaultRouteSettings"];
            !p["AccessLogSettings"].is_null()
                || route["DataTraceEnabled"] == true
                || route["LoggingLevel"]
                    .as_str()
                    .is_some_and(|level| level != "OFF")
        });
    let rest_stages = resources_of_type("AWS::ApiGateway::Stage")
        .into_iter()
        .filter(|(_, stage)| {
            let p = &stage["Properties"];
            !p["AccessLogSetting"].is_null() || !p["MethodSettings"].is_null()
        });
    websocket_stages
        .chain(rest_stages)
        .map(|(id, _)| id)
        .collect()
}

#[test]
fn a_logging_stage_waits_for_the_account_logs_role_the_stack_sets() {
    let stages = stages_logging_through_the_account_role();
    assert!(!stages.is_empty(), "the WebSocket stage writes access logs");

    let parameter = &TEMPLATE["Parameters"]["ApiGatewayLogsRole"];
    assert_eq!(
        parameter["Default"], "Create",
        "a fresh account deploys without a manual step"
    );
    assert_eq!(
        parameter["AllowedValues"],
        json!(["Create", "AccountManaged"])
    );
    let condition = &TEMPLATE["Conditions"]["CreatesApiGatewayLogsRole"];
    assert_eq!(
        condition,
        &json!({ "Fn::Equals": [{ "Ref": "ApiGatewayLogsRole" }, "Create"] })
    );

    let accounts = resources_of_type("AWS::ApiGateway::Account");
    assert_eq!(
        accounts.len(),
        1,
        "one account setting (one per account and region)"
    );
    let (account_id, account) = accounts[0];
    assert_eq!(account["Condition"], "CreatesApiGatewayLogsRole");
    // Other APIs of the account may log through the role by the time the stack goes.
    assert_eq!(account["DeletionPolicy"], "Retain");
    let (role_id, attribute) =
        get_att(&account["Properties"]["CloudWatchRoleArn"]).expect("the account names a role");
    assert_eq!(attribute, "Arn");
    let role = resource(&role_id);
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert_eq!(role["Condition"], "CreatesApiGatewayLogsRole");
    assert_eq!(role["DeletionPolicy"], "Retain");
    let trust = one_or_many(&role["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(trust[0]["Principal"]["Service"], "apigateway.amazonaws.com");
    assert_eq!(trust[0]["Action"], "sts:AssumeRole");
    let policies = one_or_many(&role["Properties"]["ManagedPolicyArns"]);
    assert_eq!(
        policies.len(),
        1,
        "only the managed policy for pushing logs"
    );
    assert_eq!(
        sub_of(policies[0]),
        Some(
            "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
        )
    );

    for stage in stages {
        let stage_resource = resource(stage);
        assert!(
            mentions(&stage_resource["Properties"], account_id)
                || one_or_many(&stage_resource["DependsOn"])
                    .iter()
                    .any(|dependency| dependency.as_str() == Some(account_id)),
            "{stage} is created after {account_id}"
        );
    }
}

/// Every per-user limit is a parameter with the code's default, passed to exactly the
/// functions that enforce it under the variable they read.
#[test]
fn limits_are_parameters_of_the_functions_that_enforce_them() {
    use functions::limits::{
        DEFAULT_MAX_CONNECTIONS_PER_USER, GROUP_CHANGES_PER_MINUTE_ENV,
        MAX_CONNECTIONS_PER_USER_ENV, MESSAGE_RATE_BURST_ENV, MESSAGE_RATE_PER_SECOND_ENV,
    };
    use messaging::store::Limits;
    for (parameter, default) in [
        ("MessageRateBurst", u64::from(Limits::DEFAULT_SEND_BURST)),
        (
            "MessageRatePerSecond",
            u64::from(Limits::DEFAULT_SEND_PER_SECOND),
        ),
        (
            "GroupChangesPerMinute",
            u64::from(Limits::DEFAULT_GROUP_CHANGES_PER_MINUTE),
        ),
        (
            "MaxConnectionsPerUser",
            DEFAULT_MAX_CONNECTIONS_PER_USER as u64,
        ),
    ] {
        assert_eq!(TEMPLATE["Parameters"][parameter]["Type"], "Number");
        assert_eq!(
            parameter_default(parameter).as_u64(),
            Some(default),
            "{parameter}"
        );
    }
    let passed = [
        (
            MESSAGE_RATE_BURST_ENV,
            "MessageRateBurst",
            &[
                "create-message",
                "add-reaction",
                "remove-reaction",
                "update-message",
                "delete-message",
            ][..],
        ),
        (
            MESSAGE_RATE_PER_SECOND_ENV,
            "MessageRatePerSecond",
            &[
                "create-message",
                "add-reaction",
                "remove-reaction",
                "update-message",
                "delete-message",
            ],
        ),
        (
            GROUP_CHANGES_PER_MINUTE_ENV,
            "GroupChangesPerMinute",
            &["create-message-group", "add-message-group-members"],
        ),
        (
            MAX_CONNECTIONS_PER_USER_ENV,
            "MaxConnectionsPerUser",
            &["ws-connect"],
        ),
    ];
    for (variable, parameter, functions) in passed {
        for name in FUNCTION_NAMES {
            let value = resource(&function_id(name))["Properties"]["Environment"]["Variables"]
                .get(variable);
            if functions.contains(&name) {
                assert_eq!(value.and_then(ref_of), Some(parameter), "{name} {variable}");
            } else {
                assert!(value.is_none(), "{name} does not enforce {variable}");
            }
        }
    }
}

/// A reaction, an edit or a delete touches the message, the member's membership (checked, never written) and
/// their send window; nothing else, whatever the IAM check's recordings cover.
#[test]
fn reaction_functions_touch_only_messages_memberships_and_their_limit() {
    use messaging::keys::{LIMIT_PREFIX, MEMBERSHIP_PREFIX, MESSAGE_PREFIX, SUB_PREFIX};
    let (table, _) = the_table();
    let families =
        |prefixes: &[&str]| -> Value { prefixes.iter().map(|p| json!(format!("{p}*"))).collect() };
    for name in [
        "add-reaction",
        "remove-reaction",
        "update-message",
        "delete-message",
    ] {
        for (action, allowed) in [
            (
                "dynamodb:GetItem",
                families(&[SUB_PREFIX, MESSAGE_PREFIX, MEMBERSHIP_PREFIX]),
            ),
            ("dynamodb:Query", families(&[MESSAGE_PREFIX])),
            (
                "dynamodb:ConditionCheckItem",
                families(&[MEMBERSHIP_PREFIX]),
            ),
            (
                "dynamodb:UpdateItem",
                families(&[MESSAGE_PREFIX, LIMIT_PREFIX]),
            ),
        ] {
            let (role, _) = get_att(&resource(&function_id(name))["Properties"]["Role"]).unwrap();
            let statements: Vec<&Value> = policy_statements()
                .into_iter()
                .filter(|(owner, statement)| {
                    *owner == role
                        && one_or_many(&statement["Action"]).contains(&&json!(action))
                        && get_att(&statement["Resource"])
                            == Some((table.to_owned(), "Arn".to_owned()))
                })
                .map(|(_, statement)| statement)
                .collect();
            assert_eq!(statements.len(), 1, "{name} {action}");
            assert_eq!(
                statements[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
                allowed,
                "{name} {action}"
            );
        }
    }
}
