//! Every Lambda function of the stack, and what each one runs: the one list the binaries,
//! `template.yaml` (each function's `Handler`, checked by `tests/template.rs`), the Makefile
//! and the benchmarks go by.
//!
//! The stack deploys one compiled binary, `cruddur-lambda` (`src/bin/cruddur-lambda.rs`),
//! under every function: [`Function::from_env`] picks the function from Lambda's `_HANDLER`
//! (the function's `Handler` setting), or from its name when the handler says nothing (a
//! function `cargo lambda deploy` created has the handler `bootstrap`). Each function also
//! keeps a bin of its own name (`src/bin/<name>.rs`), one line over [`Function::run`],
//! because `cargo lambda watch` runs `cargo run --bin <invoked name>`.

use std::fmt;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lambda_events::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

use crate::batch::Deadline;
use crate::emf::MetricsLog;
use crate::inbox_rows::InboxRowMover;
use crate::jwt::JwtVerifier;
use crate::presence::WsPresence;
use crate::routes::Route;
use crate::websocket::{WebSocketEvent, WsAuthorizer};

/// The environment variable through which Lambda hands a custom runtime the function's
/// `Handler` setting.
pub const HANDLER_ENV: &str = "_HANDLER";
/// The deployed function's name (`<stack>-<function>` for the template's functions).
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// The handler that names no function: the runtime's conventional executable, which
/// `cargo lambda deploy` sets on the functions it creates.
pub const NO_HANDLER: &str = "bootstrap";

/// One Lambda function of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The table's stream → inbox rows.
    MessagingStream,
    /// One route of the HTTP API.
    Api(Route),
    /// The user pool's pre sign-up trigger.
    CognitoPreSignup,
    /// The user pool's post-confirmation trigger.
    CognitoPostConfirmation,
    /// The WebSocket API's `$connect` REQUEST authorizer (`?token=<jwt>`).
    WsAuthorizer,
    /// The WebSocket API's `$connect` route: records the connection.
    WsConnect,
    /// The WebSocket API's `$disconnect` route: forgets the connection.
    WsDisconnect,
    /// The WebSocket API's `presence` route: a direct conversation's partner's presence,
    /// watched for the connection.
    WsPresence,
    /// The table's stream → WebSocket frames to every member's connections.
    MessagingPush,
    /// The WebSocket API's `typing` route (and `$default`): typing to the other members.
    WsTyping,
}

impl Function {
    /// Every function, in the template's order.
    pub const ALL: [Function; 25] = [
        Self::MessagingStream,
        Self::Api(Route::ListMessageGroups),
        Self::Api(Route::ListMessages),
        Self::Api(Route::CreateMessage),
        Self::Api(Route::GetUserShort),
        Self::Api(Route::CreateMessageGroup),
        Self::Api(Route::ListMessageGroupMembers),
        Self::Api(Route::AddMessageGroupMembers),
        Self::Api(Route::LeaveMessageGroup),
        Self::Api(Route::MarkMessageGroupRead),
        Self::Api(Route::BlockUser),
        Self::Api(Route::UnblockUser),
        Self::Api(Route::ListBlocks),
        Self::Api(Route::AddReaction),
        Self::Api(Route::RemoveReaction),
        Self::Api(Route::UpdateMessage),
        Self::Api(Route::DeleteMessage),
        Self::CognitoPreSignup,
        Self::CognitoPostConfirmation,
        Self::WsAuthorizer,
        Self::WsConnect,
        Self::WsDisconnect,
        Self::WsPresence,
        Self::MessagingPush,
        Self::WsTyping,
    ];

    /// The function's name: its `Handler` and the suffix of its deployed name in
    /// `template.yaml`, its bin for `cargo lambda watch`, its `cargo lambda invoke` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::MessagingStream => "messaging-stream",
            Self::Api(route) => route.function(),
            Self::CognitoPreSignup => "cognito-pre-signup",
            Self::CognitoPostConfirmation => "cognito-post-confirmation",
            Self::WsAuthorizer => "ws-authorizer",
            Self::WsConnect => "ws-connect",
            Self::WsDisconnect => "ws-disconnect",
            Self::WsPresence => "ws-presence",
            Self::MessagingPush => "messaging-push",
            Self::WsTyping => "ws-typing",
        }
    }

    /// The function called exactly `name`.
    pub fn named(name: &str) -> Option<Function> {
        Self::ALL
            .into_iter()
            .find(|function| function.name() == name)
    }

    /// The function a deployed name is for: the name itself, or `<prefix>-<function>` (the
    /// template deploys `<stack>-<function>`). No function's name ends in `-<another's>`
    /// (a test checks), so at most one matches.
    pub fn deployed_as(deployed: &str) -> Option<Function> {
        Self::named(deployed).or_else(|| {
            Self::ALL.into_iter().find(|function| {
                deployed
                    .strip_suffix(function.name())
                    .is_some_and(|prefix| prefix.ends_with('-'))
            })
        })
    }

    /// The function this execution environment runs, from `_HANDLER` and
    /// `AWS_LAMBDA_FUNCTION_NAME` as Lambda sets them.
    pub fn from_env() -> Result<Function, UnknownFunction> {
        let var = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
        Self::select(
            var(HANDLER_ENV).as_deref(),
            var(FUNCTION_NAME_ENV).as_deref(),
        )
    }

    /// A `Handler` other than `bootstrap` must name a function: a mistyped handler fails
    /// rather than falling back to the deployed name. Otherwise the deployed name decides.
    pub fn select(
        handler: Option<&str>,
        function_name: Option<&str>,
    ) -> Result<Function, UnknownFunction> {
        let unknown = || UnknownFunction {
            handler: handler.map(str::to_owned),
            function_name: function_name.map(str::to_owned),
        };
        match handler {
            Some(handler) if handler != NO_HANDLER => Self::named(handler).ok_or_else(unknown),
            _ => function_name
                .and_then(Self::deployed_as)
                .ok_or_else(unknown),
        }
    }

    /// What the function's execution environment runs: configuration and clients built
    /// once, then the Lambda runtime's loop over its handler. Returns when the runtime
    /// stops, or with the error that kept it from starting.
    ///
    /// A bin awaiting it needs `#![recursion_limit = "256"]`: the SDK futures inside
    /// tracing layers nest deeper than the default limit when the compiler lays them out.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        match self {
            Self::MessagingStream => messaging_stream().await,
            Self::Api(route) => crate::run_route(route).await,
            Self::CognitoPreSignup => cognito_pre_signup().await,
            Self::CognitoPostConfirmation => cognito_post_confirmation().await,
            Self::WsAuthorizer => ws_authorizer().await,
            Self::WsConnect => ws_connect().await,
            Self::WsDisconnect => ws_disconnect().await,
            Self::WsPresence => ws_presence().await,
            Self::MessagingPush => messaging_push().await,
            Self::WsTyping => ws_typing().await,
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Neither the handler nor the deployed name says which function to run.
#[derive(Clone, PartialEq, Eq)]
pub struct UnknownFunction {
    pub handler: Option<String>,
    pub function_name: Option<String>,
}

impl fmt::Display for UnknownFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &Option<String>| match value {
            Some(value) => format!("{value:?}"),
            None => "unset".to_owned(),
        };
        write!(
            f,
            "no function to run: {HANDLER_ENV} is {} and {FUNCTION_NAME_ENV} is {}; set the \
             function's Handler to a function's name, or deploy it as <name> or \
             <prefix>-<name>. The functions: ",
            shown(&self.handler),
            shown(&self.function_name),
        )?;
        let names: Vec<_> = Function::ALL
            .iter()
            .map(|function| function.name())
            .collect();
        f.write_str(&names.join(", "))
    }
}

/// As the message: this is what `main` prints when it returns the error.
impl fmt::Debug for UnknownFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for UnknownFunction {}

async fn messaging_stream() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    // One handler per execution environment: it remembers where it put each
    // conversation's rows, so the next batch usually moves them in one request.
    let handler = &InboxRowMover::new(crate::store_from_env().await);
    let metrics = &MetricsLog::from_env("messaging-stream");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = Deadline::of_invocation(event.context.deadline());
        let (response, summary) = handler.handle_until(&event.payload, deadline).await;
        metrics.print(&summary);
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}

async fn cognito_pre_signup() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let store = &crate::store_from_env().await;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Boxed: the store future nests deeper than the compiler's layout limit.
            Box::pin(crate::cognito::pre_signup(store, event.payload))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

async fn cognito_post_confirmation() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let store = &crate::store_from_env().await;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Boxed: the registration future nests deeper than the compiler's layout limit.
            Box::pin(crate::cognito::post_confirmation(store, event.payload))
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

async fn ws_authorizer() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    // The user pool's key set is fetched on first use and kept for the environment's life.
    let verifier = std::sync::Arc::new(JwtVerifier::from_env()?);
    let authorizer = &WsAuthorizer::new(verifier, crate::directory_from_env().await);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            // An error whose message is exactly "Unauthorized" is API Gateway's 401.
            authorizer
                .authorize(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

async fn ws_connect() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let connections = &crate::ws_connect_from_env().await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebSocketEvent>| async move {
            connections
                .connect(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

async fn ws_disconnect() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let connections = &crate::ws_disconnect_from_env().await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebSocketEvent>| async move {
            connections
                .disconnect(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

async fn ws_presence() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let presence = &WsPresence::new(crate::store_from_env().await);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebSocketEvent>| async move {
            presence
                .handle(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

async fn messaging_push() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    let handler = &crate::push_from_env().await?;
    let metrics = &MetricsLog::from_env("messaging-push");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let deadline = Deadline::of_invocation(event.context.deadline());
        let (response, summary) = handler.handle_until(&event.payload, deadline).await;
        metrics.print(&summary);
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}

async fn ws_typing() -> Result<(), lambda_runtime::Error> {
    crate::logging::init();
    // One handler per environment: it remembers what it forwarded and to whom.
    let handler = &crate::ws_typing_from_env().await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<WebSocketEvent>| async move {
            handler
                .handle(&event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_are_unique_and_cover_every_route() {
        let names: BTreeSet<_> = Function::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Function::ALL.len());
        for route in Route::ALL {
            assert!(Function::ALL.contains(&Function::Api(route)), "{route:?}");
        }
        for function in Function::ALL {
            assert_eq!(Function::named(function.name()), Some(function));
        }
    }

    /// `deployed_as` takes the first function whose name ends the deployed name: that is
    /// only unambiguous while no name is another's hyphenated suffix.
    #[test]
    fn no_name_ends_in_another() {
        for a in Function::ALL {
            for b in Function::ALL {
                if a != b {
                    assert!(
                        !a.name().ends_with(&format!("-{}", b.name())),
                        "{a} ends in {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_handler_decides_and_bootstrap_defers_to_the_deployed_name() {
        let list_messages = Function::Api(Route::ListMessages);
        for function in Function::ALL {
            // As the template deploys it: Handler = the function, name = <stack>-<function>.
            let deployed = format!("cruddur-messaging-{function}");
            assert_eq!(
                Function::select(Some(function.name()), Some(&deployed)),
                Ok(function)
            );
            // As `cargo lambda deploy` creates it: Handler = bootstrap.
            assert_eq!(
                Function::select(Some("bootstrap"), Some(&deployed)),
                Ok(function)
            );
            assert_eq!(Function::select(None, Some(function.name())), Ok(function));
        }
        // The handler wins over the name.
        assert_eq!(
            Function::select(Some("list-messages"), Some("cruddur-messaging-ws-connect")),
            Ok(list_messages)
        );
        // "create-message" must not be read out of "…-create-message-group".
        assert_eq!(
            Function::select(None, Some("dev-create-message-group")),
            Ok(Function::Api(Route::CreateMessageGroup))
        );
    }

    #[test]
    fn no_function_fails_with_the_known_names() {
        for (handler, name) in [
            (
                Some("list-mesages"),
                Some("cruddur-messaging-list-messages"),
            ),
            (Some("bootstrap"), Some("cruddur-messaging-something-else")),
            (None, Some("xlist-messages")),
            (None, None),
        ] {
            let error = Function::select(handler, name).unwrap_err();
            let message = error.to_string();
            assert_eq!(format!("{error:?}"), message);
            for function in Function::ALL {
                assert!(message.contains(function.name()), "{message}");
            }
        }
        assert!(
            Function::select(Some("list-mesages"), None)
                .unwrap_err()
                .to_string()
                .starts_with(
                    "no function to run: _HANDLER is \"list-mesages\" and \
                     AWS_LAMBDA_FUNCTION_NAME is unset;"
                )
        );
    }

    /// `src/bin/` holds the multi-call binary and one bin per function, named after it and
    /// running it: a bin named after one function but running another would watch fine and
    /// answer as the wrong function.
    #[test]
    fn each_function_has_a_bin_that_runs_it() {
        let bins = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
        let mut expected: BTreeSet<String> =
            Function::ALL.iter().map(|f| format!("{f}.rs")).collect();
        expected.insert("cruddur-lambda.rs".to_owned());
        let found: BTreeSet<String> = std::fs::read_dir(&bins)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, expected);
        for function in Function::ALL {
            let path = bins.join(format!("{function}.rs"));
            let source = std::fs::read_to_string(&path).unwrap();
            let call = match function {
                Function::Api(route) => format!("Function::Api(Route::{route:?}).run()"),
                other => format!("Function::{other:?}.run()"),
            };
            assert!(source.contains(&call), "{} runs {call}", path.display());
        }
    }

    /// The bins named after functions are for `cargo lambda watch` only: each is declared
    /// in Cargo.toml behind the `watch` feature, so that a release build of the workspace
    /// links `cruddur-lambda` alone. A new function's bin left to cargo's discovery would
    /// be linked (fat LTO, a minute or two) by every release build.
    #[test]
    fn function_bins_need_the_watch_feature_and_the_deployed_binary_does_not() {
        let manifest =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
        let bins: Vec<&str> = manifest.split("[[bin]]").skip(1).collect();
        let declared = |name: &str| {
            bins.iter()
                .find(|bin| bin.contains(&format!("name = \"{name}\"")))
                .map(|bin| bin.split("\n[").next().unwrap_or(bin).to_owned())
        };
        for function in Function::ALL {
            let bin = declared(function.name())
                .unwrap_or_else(|| panic!("no [[bin]] for {function} in Cargo.toml"));
            assert!(
                bin.contains(&format!("path = \"src/bin/{function}.rs\""))
                    && bin.contains("required-features = [\"watch\"]"),
                "{function}: {bin}"
            );
        }
        let deployed = declared("cruddur-lambda").expect("a [[bin]] for cruddur-lambda");
        assert!(!deployed.contains("required-features"), "{deployed}");
        assert_eq!(bins.len(), Function::ALL.len() + 1, "no other bins");
    }
}
