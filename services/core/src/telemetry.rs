//! Telemetry names and trace-context propagation.
//!
//! Metric names and span field names are defined here once and reused, never retyped. Labels
//! are bounded enums only: chat, user and tenant ids go in spans, never in labels.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::proto::TraceContext;

/// Messages accepted by ingress, by `platform`.
pub const MESSAGES_IN_TOTAL: &str = "clawdbot_messages_in_total";
/// Ingress requests by `platform` and `outcome` (accepted, duplicate, rejected, unavailable).
pub const INGRESS_REQUESTS_TOTAL: &str = "clawdbot_ingress_requests_total";
/// Connections that had to wait for a place under a listener's `max_connections`.
pub const HTTP_CONNECTIONS_WAITED_TOTAL: &str = "clawdbot_http_connections_waited_total";
/// Time a skill took to handle one message, by `skill` (histogram, seconds).
pub const SKILLS_LATENCY_SECONDS: &str = "clawdbot_skills_latency_seconds";
/// Skill invocations, by `skill`.
pub const SKILL_CALLS_TOTAL: &str = "clawdbot_skill_calls_total";
/// Uses refused by permissions or rate limits, by `skill` and `reason`.
pub const SKILL_DENIALS_TOTAL: &str = "clawdbot_skill_denials_total";
/// Errors by `component` and `error_type` (each error enum's `kind()`).
pub const ERRORS_TOTAL: &str = "clawdbot_errors_total";
/// Egress deliveries by `platform` and `outcome` (delivered, failed, duplicate, unavailable).
pub const EGRESS_DELIVERIES_TOTAL: &str = "clawdbot_egress_deliveries_total";
/// Entries in a stream, by `stream` (sampled).
pub const STREAM_LENGTH: &str = "clawdbot_stream_length";
/// Entries delivered to a group and not yet acknowledged, by `stream` and `group` (sampled).
pub const STREAM_PENDING: &str = "clawdbot_stream_pending";
/// Entries a worker acknowledged, by `group`.
pub const WORKER_ACKED_TOTAL: &str = "clawdbot_worker_acked_total";
/// Messages answered before an earlier message of their conversation, because that one did
/// not finish within `worker.order_wait_secs`, by `group`.
pub const WORKER_ORDER_SKIPPED_TOTAL: &str = "clawdbot_worker_order_skipped_total";
/// Conversations cut by the loop guard (a sender answered more often than people write), by
/// `platform`.
pub const WORKER_LOOPS_CUT_TOTAL: &str = "clawdbot_worker_loops_cut_total";
/// Entries moved to the dead-letter stream, by `group`.
pub const DEAD_LETTERS_TOTAL: &str = "clawdbot_dead_letters_total";
/// History rows written, by `direction`.
pub const HISTORY_ROWS_TOTAL: &str = "clawdbot_history_rows_total";

/// Access-token fetches by platform clients, by `app` and `outcome`.
pub const TOKEN_REFRESHES_TOTAL: &str = "clawdbot_token_refreshes_total";
/// Sends waiting for their rate-limit slot now, by kind of `limit` (the queue depth).
pub const SEND_QUEUE_WAITING: &str = "clawdbot_send_queue_waiting";
/// Replies refused by a platform's rules before any API call (QQ), by `platform`, `reason`.
pub const QUOTA_REFUSALS_TOTAL: &str = "clawdbot_quota_refusals_total";
/// Log records the store writer had to drop (the store fell behind or failed).
pub const LOG_RECORDS_DROPPED_TOTAL: &str = "clawdbot_log_records_dropped_total";

/// Always 1, labelled with the binary's `version`: which release each process runs.
pub const BUILD_INFO: &str = "clawdbot_build_info";

/// Every metric above with its help text, for the `# HELP` / `# TYPE` lines of `/metrics`.
/// A metric missing here renders without them; `describe` is the one place to add it.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        MESSAGES_IN_TOTAL,
        "Messages accepted by ingress, by platform."
    );
    describe_counter!(
        INGRESS_REQUESTS_TOTAL,
        "Ingress requests by platform and outcome."
    );
    describe_counter!(
        HTTP_CONNECTIONS_WAITED_TOTAL,
        "Connections that waited for a place under a listener's max_connections."
    );
    describe_histogram!(
        SKILLS_LATENCY_SECONDS,
        Unit::Seconds,
        "Time a skill took to handle one message, by skill."
    );
    describe_counter!(SKILL_CALLS_TOTAL, "Skill invocations, by skill.");
    describe_counter!(
        SKILL_DENIALS_TOTAL,
        "Uses refused by permissions or rate limits, by skill and reason."
    );
    describe_counter!(ERRORS_TOTAL, "Errors by component and error_type.");
    describe_counter!(
        EGRESS_DELIVERIES_TOTAL,
        "Egress deliveries by platform and outcome."
    );
    describe_gauge!(STREAM_LENGTH, "Entries in a stream, by stream (sampled).");
    describe_gauge!(
        STREAM_PENDING,
        "Entries delivered to a group and not yet acknowledged, by stream and group."
    );
    describe_counter!(
        WORKER_ACKED_TOTAL,
        "Entries a worker acknowledged, by group."
    );
    describe_counter!(
        WORKER_ORDER_SKIPPED_TOTAL,
        "Messages answered before an earlier one of their conversation (order_wait_secs passed), by group."
    );
    describe_counter!(
        WORKER_LOOPS_CUT_TOTAL,
        "Conversations cut by the loop guard, by platform."
    );
    describe_counter!(
        DEAD_LETTERS_TOTAL,
        "Entries moved to the dead letters, by group."
    );
    describe_counter!(HISTORY_ROWS_TOTAL, "History rows written, by direction.");
    describe_counter!(
        TOKEN_REFRESHES_TOTAL,
        "Access-token fetches, by app and outcome."
    );
    describe_gauge!(
        SEND_QUEUE_WAITING,
        "Sends waiting for their rate-limit slot now, by kind of limit."
    );
    describe_counter!(
        QUOTA_REFUSALS_TOTAL,
        "Replies refused by a platform's rules before any API call, by platform and reason."
    );
    describe_counter!(
        LOG_RECORDS_DROPPED_TOTAL,
        "Log records the store writer had to drop."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which release runs."
    );
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The tracing target of skill-call outcome events (recorded for `clawdbot log analyze`).
pub const SKILL_CALL_TARGET: &str = "clawdbot::skill_call";

/// Span field names, fixed so that traces and logs can be queried the same way everywhere.
pub mod field {
    pub const PLATFORM: &str = "platform";
    pub const BOT_ID: &str = "bot_id";
    pub const MESSAGE_ID: &str = "message_id";
    pub const SKILL: &str = "skill";
    pub const STREAM_ID: &str = "stream_id";
    pub const REPLY_ID: &str = "reply_id";
}

/// Records `kind` in `clawdbot_errors_total` for `component`. Call it where the error is logged,
/// so that logs and counters cannot drift apart.
pub fn count_error(component: &'static str, kind: &'static str) {
    metrics::counter!(ERRORS_TOTAL, "component" => component, "error_type" => kind).increment(1);
}

/// Returns the W3C trace context of the current span (empty when no tracer is installed).
pub fn current_trace_context() -> TraceContext {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return TraceContext::default();
    }
    TraceContext {
        traceparent: format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        ),
        tracestate: span_context.trace_state().header(),
    }
}

/// Makes `span` a child of the remote span described by `trace` (no-op when `trace` is empty
/// or malformed: a bad traceparent from outside must never fail a message).
pub fn set_remote_parent(span: &tracing::Span, trace: Option<&TraceContext>) {
    let Some(span_context) = trace.and_then(parse_traceparent) else {
        return;
    };
    let parent = opentelemetry::Context::new().with_remote_span_context(span_context);
    // An error here means no OpenTelemetry layer is installed: nothing to join.
    let _ignored = span.set_parent(parent);
}

fn parse_traceparent(trace: &TraceContext) -> Option<SpanContext> {
    let mut parts = trace.traceparent.split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || trace_id.len() != 32 || span_id.len() != 16 {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let state = trace.tracestate.parse::<TraceState>().unwrap_or_default();
    let span_context = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state);
    span_context.is_valid().then_some(span_context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_w3c_traceparent() {
        let trace = TraceContext {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: String::new(),
        };
        let span_context = parse_traceparent(&trace).expect("valid traceparent");
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span_context.is_sampled());
    }

    #[test]
    fn rejects_malformed_traceparents() {
        for bad in [
            "",
            "00-xyz-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let trace = TraceContext {
                traceparent: bad.into(),
                tracestate: String::new(),
            };
            assert!(parse_traceparent(&trace).is_none(), "{bad}");
        }
    }
}
