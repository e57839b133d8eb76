//! The event API Gateway's HTTP API (payload format 2.0) hands a function for a request.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use functions::routes::Route;
use serde_json::{Map, Value, json};

/// What goes into an API Gateway payload-2.0 event.
pub struct PayloadParts<'a> {
    pub route: Route,
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub path_parameters: &'a HashMap<String, String>,
    pub claims: Option<&'a HashMap<String, String>>,
    pub body: &'a [u8],
}

/// The event API Gateway (HTTP API, payload format 2.0) would send for this request.
pub fn payload_v2(parts: &PayloadParts<'_>) -> Value {
    let headers = comma_joined(parts.headers.iter().map(|(name, value)| {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        (name.as_str().to_owned(), value)
    }));
    let query = comma_joined(form_pairs(parts.raw_query));
    let (body, base64) = body_text(parts.body);
    let mut event = json!({
        "version": "2.0",
        "routeKey": parts.route.key(),
        "rawPath": parts.path,
        "rawQueryString": parts.raw_query,
        "headers": headers,
        "requestContext": request_context(parts),
        "isBase64Encoded": base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !parts.path_parameters.is_empty() {
        event["pathParameters"] = json!(parts.path_parameters);
    }
    if !parts.body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

/// `requestContext`, with the authorizer's claims when the route is protected.
fn request_context(parts: &PayloadParts<'_>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut context = json!({
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "local",
        "http": {
            "method": parts.method,
            "path": parts.path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": user_agent,
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": parts.route.key(),
        "stage": "$default",
        "timeEpoch": u64::try_from(now.as_millis()).unwrap_or(u64::MAX),
    });
    if let Some(claims) = parts.claims {
        context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
    }
    context
}

/// Repeated names (headers, query parameters) become one value joined with commas, as API
/// Gateway joins them.
fn comma_joined(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut joined = Map::new();
    for (name, value) in pairs {
        match joined.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                joined.insert(name, Value::String(value));
            }
        }
    }
    joined
}

/// The body as the event carries it: text as is, anything else base64 (and says so).
fn body_text(body: &[u8]) -> (String, bool) {
    match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => {
            use base64::Engine;
            (base64::engine::general_purpose::STANDARD.encode(body), true)
        }
    }
}

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn query_strings_are_decoded_like_api_gateway() {
        assert_eq!(
            form_pairs("limit=5&cursor=ab%2Bc%3D&q=a+b&empty=&bad=%zz"),
            vec![
                ("limit".into(), "5".into()),
                ("cursor".into(), "ab+c=".into()),
                ("q".into(), "a b".into()),
                ("empty".into(), "".into()),
                ("bad".into(), "%zz".into()),
            ]
        );
    }

    #[test]
    fn the_event_carries_route_claims_parameters_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        let claims = HashMap::from([("sub".to_owned(), "abc".to_owned())]);
        let params = HashMap::from([("message_group_uuid".to_owned(), "g".to_owned())]);
        let event = payload_v2(&PayloadParts {
            route: Route::ListMessages,
            method: "GET",
            path: "/api/messages/g",
            raw_query: "limit=2&limit=3",
            headers: &headers,
            path_parameters: &params,
            claims: Some(&claims),
            body: b"{}",
        });
        assert_eq!(event["routeKey"], "GET /api/messages/{message_group_uuid}");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "abc"
        );
        assert_eq!(event["pathParameters"]["message_group_uuid"], "g");
        assert_eq!(event["queryStringParameters"]["limit"], "2,3");
        assert_eq!(event["headers"]["x-multi"], "a,b");
        assert_eq!(event["body"], "{}");
        let request = lambda_http::request::from_str(&event.to_string()).unwrap();
        assert_eq!(request.uri().path(), "/api/messages/g");
        let no_parameters = HashMap::new();
        let binary = payload_v2(&PayloadParts {
            route: Route::CreateMessage,
            method: "POST",
            path: "/api/messages",
            raw_query: "",
            headers: &headers,
            path_parameters: &no_parameters,
            claims: None,
            body: &[0xff, 0xfe],
        });
        assert_eq!(binary["isBase64Encoded"], true);
        assert!(binary["requestContext"].get("authorizer").is_none());
    }
}
