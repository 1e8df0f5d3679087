//! The callback handler: verify, decode, publish, answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clawdbot_bus::Published;
use clawdbot_core::proto::TraceContext;
use clawdbot_core::telemetry::{self, INGRESS_REQUESTS_TOTAL, MESSAGES_IN_TOTAL};
use clawdbot_platforms::{Inbound, Inbox, WebhookRequest};
use tracing::Instrument;

use crate::IngressState;
use crate::body::Body;

const COMPONENT: &str = "ingress";

type Request = (Method, HeaderMap, Option<String>, Bytes);

pub(crate) async fn default_account(
    State(state): State<Arc<IngressState>>,
    Path(platform): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Body(body): Body,
) -> Response {
    dispatch(&state, &platform, None, (method, headers, query, body)).await
}

pub(crate) async fn named_account(
    State(state): State<Arc<IngressState>>,
    Path((platform, id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Body(body): Body,
) -> Response {
    dispatch(&state, &platform, Some(&id), (method, headers, query, body)).await
}

/// `POST /api/v1/notify`: the notify platform's default account.
pub(crate) async fn notify_api(
    State(state): State<Arc<IngressState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Body(body): Body,
) -> Response {
    let platform = clawdbot_platforms::notify::NAME;
    dispatch(&state, platform, None, (method, headers, query, body)).await
}

/// Finds the account a request is for (the platform's default one without `id`) and handles
/// the request there, or answers 404 naming the accounts there are.
async fn dispatch(
    state: &IngressState,
    platform: &str,
    id: Option<&str>,
    request: Request,
) -> Response {
    let inbound = match id {
        Some(id) => state.inbounds.get(&(platform.to_string(), id.to_string())),
        None => state.defaults.get(platform),
    };
    match inbound.cloned() {
        Some(inbound) => handle(state, inbound, request).await,
        None => not_found(state, platform, id),
    }
}

pub(crate) async fn ready(State(state): State<Arc<IngressState>>) -> Response {
    if state.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match state.bus.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("bus unavailable: {error}"),
        )
            .into_response(),
    }
}

pub(crate) fn not_found(state: &IngressState, platform: &str, id: Option<&str>) -> Response {
    let mut known: Vec<String> = state
        .inbounds
        .keys()
        .map(|(p, i)| format!("{p}/{i}"))
        .collect();
    known.sort();
    let what = match id {
        Some(id) => format!("no account `{id}` for platform `{platform}`"),
        None => format!("no default account for platform `{platform}` (name one in the path)"),
    };
    tracing::warn!(platform, reason = %what, "callback for an unknown account");
    (
        StatusCode::NOT_FOUND,
        format!("{what}; configured: {}\n", known.join(", ")),
    )
        .into_response()
}

async fn handle(
    state: &IngressState,
    inbound: Arc<dyn Inbound>,
    (method, headers, query, body): Request,
) -> Response {
    let platform = inbound.platform();
    let span = tracing::info_span!(
        "ingress",
        platform,
        bot_id = inbound.bot_id(),
        message_id = tracing::field::Empty
    );
    if let Some(traceparent) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        let trace = TraceContext {
            traceparent: traceparent.to_string(),
            tracestate: String::new(),
        };
        telemetry::set_remote_parent(&span, Some(&trace));
    }
    async move {
        let req = WebhookRequest { method: &method, headers: &headers, query: query.as_deref(), body: &body };
        let inbox = match inbound.verify(&req).and_then(|()| inbound.parse(&req)) {
            Ok(inbox) => inbox,
            Err(error) => {
                telemetry::count_error(COMPONENT, error.kind());
                count(platform, "rejected");
                tracing::warn!(platform, error_type = error.kind(), reason = %error, "callback rejected");
                return (error.status(), format!("{error}\n")).into_response();
            }
        };
        match inbox {
            Inbox::Envelopes(envelopes) => {
                let acknowledgements: Vec<_> =
                    envelopes.iter().filter_map(|e| inbound.acknowledge(e)).collect();
                let response = publish(state, platform, envelopes, inbound.accepted_status()).await;
                // Only for what is safely in the stream; a refused event is sent again.
                if response.status().is_success() {
                    for acknowledgement in acknowledgements {
                        tokio::spawn(acknowledgement);
                    }
                }
                response
            }
            Inbox::Handshake { content_type, body } => {
                count(platform, "handshake");
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            }
            Inbox::Nothing => {
                count(platform, "ignored");
                inbound.accepted_status().into_response()
            }
            Inbox::Skipped { reason } => {
                count(platform, reason);
                tracing::debug!(platform, reason, "event not routed");
                inbound.accepted_status().into_response()
            }
        }
    }
    .instrument(span)
    .await
}

async fn publish(
    state: &IngressState,
    platform: &'static str,
    envelopes: Vec<clawdbot_core::Envelope>,
    accepted: StatusCode,
) -> Response {
    let trace = telemetry::current_trace_context();
    let mut outcomes = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        tracing::Span::current().record("message_id", envelope.message_id.as_str());
        let item = crate::publisher::item(envelope, &trace);
        outcomes.push(state.publisher.publish(item).await);
    }
    let mut duplicates = 0;
    for outcome in outcomes {
        match outcome {
            Ok(Published::Appended(_)) => {
                metrics::counter!(MESSAGES_IN_TOTAL, "platform" => platform).increment(1);
            }
            Ok(Published::Duplicate) => duplicates += 1,
            Ok(Published::Full) => {
                count(platform, "backpressure");
                telemetry::count_error(COMPONENT, "stream_full");
                tracing::warn!(
                    platform,
                    "inbound stream is full; asking the platform to retry"
                );
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "inbound stream is full, retry later\n",
                )
                    .into_response();
            }
            Err(reason) => {
                count(platform, "unavailable");
                tracing::error!(platform, error = %reason, "cannot publish to the bus; asking the platform to retry");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "message bus unavailable, retry later\n",
                )
                    .into_response();
            }
        }
    }
    if duplicates > 0 {
        tracing::debug!(
            platform,
            duplicates,
            "platform retry of an accepted message"
        );
        count(platform, "duplicate");
    } else {
        count(platform, "accepted");
    }
    accepted.into_response()
}

fn count(platform: &'static str, outcome: &'static str) {
    metrics::counter!(INGRESS_REQUESTS_TOTAL, "platform" => platform, "outcome" => outcome)
        .increment(1);
}
