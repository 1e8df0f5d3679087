//! The control API of `clawdbot-mock`: JSON over HTTP.
//!
//! | call | does |
//! |---|---|
//! | `GET /` | platform, API address, the clawdbot config section to use, counts |
//! | `GET /config` | a `clawdbot.yaml` for this mock (`curl …/config > clawdbot.yaml`) |
//! | `GET /received?count=N&timeout_ms=T` | what the mock accepted (waits up to T ms for N) |
//! | `POST /inject {"text","user","group"}` | sends clawdbot an event as the platform would |
//! | `POST /faults {"count","delay_ms","status","body"}` | the next calls answer late / fail |

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Options;
use super::platform::{Delivery, Injection, Running};
use crate::mock::faults::Fault;

struct Control {
    running: Running,
    options: Options,
    http: reqwest::Client,
    sequence: AtomicU64,
}

/// Serves the control API on `listener` for as long as the returned future runs.
pub(super) async fn serve(listener: tokio::net::TcpListener, running: Running, options: Options) {
    if let Some(url) = options.reverse_ws.clone() {
        running.keep_reverse_socket(url);
    }
    let http = clawdbot_core::tls::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let control = Arc::new(Control {
        running,
        options,
        http,
        // Message ids start from the clock so two runs never reuse one (clawdbot dedupes).
        sequence: AtomicU64::new(u64::try_from(clawdbot_core::now_ms()).unwrap_or(1)),
    });
    let app = axum::Router::new()
        .route("/", get(describe))
        .route("/config", get(config))
        .route("/received", get(received))
        .route("/inject", post(inject))
        .route("/faults", post(faults))
        .with_state(control);
    if let Err(error) = axum::serve(listener, app).await {
        eprintln!("clawdbot-mock: control API stopped: {error}");
    }
}

async fn describe(State(control): State<Arc<Control>>) -> Json<Value> {
    Json(json!({
        "platform": format!("{:?}", control.options.platform).to_lowercase(),
        "api": format!("http://{}", control.running.address()),
        "callback": control.options.callback,
        "config": control.running.config_snippet(&control.options),
        "received": control.running.received().len(),
        "faults_pending": control.running.faults().pending(),
        "connections": control.running.connections(),
    }))
}

/// A whole config: the platform section, and the ingress listening where `--callback` says.
async fn config(State(control): State<Arc<Control>>) -> String {
    let mut yaml = format!(
        "# clawdbot config for clawdbot-mock ({:?})\n",
        control.options.platform
    );
    if let Some(authority) = control
        .options
        .callback
        .as_deref()
        .and_then(|url| url.split("://").nth(1))
    {
        let authority = authority.split('/').next().unwrap_or(authority);
        yaml.push_str(&format!("ingress: {{ listen: \"{authority}\" }}\n"));
    }
    yaml.push_str(&control.running.config_snippet(&control.options));
    yaml
}

async fn received(
    State(control): State<Arc<Control>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let number = |key: &str| {
        query
            .get(key)
            .map(|v| v.parse::<u64>().map_err(|_| key.to_string()))
    };
    let (count, timeout) = match (number("count"), number("timeout_ms")) {
        (Some(Err(key)), _) | (_, Some(Err(key))) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("{key} must be a whole number"),
            );
        }
        (count, timeout) => (
            count.and_then(Result::ok).unwrap_or(0),
            timeout.and_then(Result::ok).unwrap_or(0),
        ),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout);
    loop {
        let all = control.running.received();
        if all.len() as u64 >= count || tokio::time::Instant::now() >= deadline {
            return Json(json!({"received": all})).into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn inject(
    State(control): State<Arc<Control>>,
    body: Result<Json<Injection>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let injection = match body {
        Ok(Json(injection)) => injection,
        Err(reason) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("inject takes {{\"text\", \"user\"?, \"group\"?}}: {reason}"),
            );
        }
    };
    let sequence = control.sequence.fetch_add(1, Ordering::Relaxed);
    match control.running.deliver(&injection, sequence) {
        Delivery::Socket { reached } => {
            Json(json!({"delivered": "socket", "sockets": reached})).into_response()
        }
        Delivery::Http {
            path_and_query,
            headers,
            body,
        } => {
            let Some(callback) = &control.options.callback else {
                return refuse(
                    StatusCode::CONFLICT,
                    "no socket to clawdbot is open and no --callback was given: start the mock with --callback http://<ingress host:port>",
                );
            };
            let url = format!("{}{path_and_query}", callback.trim_end_matches('/'));
            let mut request = control.http.post(&url).body(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            match request.send().await {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    let text = answer.text().await.unwrap_or_default();
                    Json(json!({"delivered": "http", "url": url, "status": status, "body": text}))
                        .into_response()
                }
                Err(error) => refuse(
                    StatusCode::BAD_GATEWAY,
                    &format!("clawdbot at {url} did not answer: {error}"),
                ),
            }
        }
    }
}

/// `POST /faults`: `count` (default 1) next calls wait `delay_ms`, then answer `status` with
/// `body` (a JSON value) — or, without `status`, are served normally after the wait.
#[derive(serde::Deserialize)]
struct FaultRequest {
    #[serde(default = "one")]
    count: usize,
    #[serde(default)]
    delay_ms: u64,
    status: Option<u16>,
    #[serde(default)]
    body: Value,
}

fn one() -> usize {
    1
}

async fn faults(
    State(control): State<Arc<Control>>,
    body: Result<Json<FaultRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let request = match body {
        Ok(Json(request)) => request,
        Err(reason) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!(
                    "faults takes {{\"count\", \"delay_ms\", \"status\", \"body\"}}: {reason}"
                ),
            );
        }
    };
    let answer = match request.status.map(StatusCode::from_u16) {
        None => None,
        Some(Ok(status)) => Some((status, request.body.to_string())),
        Some(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "status must be an HTTP status (100-999)",
            );
        }
    };
    let fault = Fault {
        delay: Duration::from_millis(request.delay_ms),
        answer,
    };
    control
        .running
        .faults()
        .push(std::iter::repeat_n(fault, request.count));
    Json(json!({"faults_pending": control.running.faults().pending()})).into_response()
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({"error": reason}))).into_response()
}
