//! Logs, traces and metrics for the process.
//!
//! Logs go to stdout (JSON by default: what Kubernetes collects), filtered by `CLAWDBOT_LOG`
//! (`info` by default). The OpenTelemetry layer is always installed so that every stream entry
//! and gRPC call carries a W3C traceparent; spans are exported (OTLP over gRPC) only when
//! `telemetry.otlp_endpoint` is set, sampled at `telemetry.sampling_ratio`.

use anyhow::Context;
use clawdbot_config::{LogFormat, TelemetryConfig};
use clawdbot_core::telemetry::SKILLS_LATENCY_SECONDS;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Flushes and stops trace export when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let provider = self.provider.clone();
        // The exporter's shutdown blocks; never run it on a runtime worker thread.
        let flushed = std::thread::spawn(move || provider.shutdown()).join();
        if let Ok(Err(error)) = flushed {
            eprintln!("trace export did not shut down cleanly: {error}");
        }
    }
}

/// Installs logging and tracing for the process.
///
/// # Errors
/// The OTLP exporter cannot be built (a malformed endpoint), or a subscriber is already set.
/// Roles log to stdout at `info`; admin commands (`skill`, `migrate`, `config`) keep stdout for
/// their answer and log warnings and errors to stderr.
pub fn init(config: &TelemetryConfig, role: &'static str) -> anyhow::Result<TelemetryGuard> {
    let is_role = matches!(role, "up" | "ingress" | "worker" | "egress");
    let default_level = if is_role { "info" } else { "warn" };
    let directives = std::env::var("CLAWDBOT_LOG").unwrap_or_else(|_| default_level.to_string());
    // Skill-call outcomes are always seen (the store layer records them for `log analyze`);
    // stdout shows only what CLAWDBOT_LOG asks for.
    let filter = EnvFilter::try_new(format!(
        "{directives},{}=info",
        clawdbot_core::telemetry::SKILL_CALL_TARGET
    ))
    .unwrap_or_else(|_| EnvFilter::new(default_level));
    let stdout_filter =
        EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new(default_level));
    let fmt_layer = match (config.log_format, is_role) {
        (LogFormat::Json, true) => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed(),
        (LogFormat::Text, true) => tracing_subscriber::fmt::layer().boxed(),
        (_, false) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(format!("clawdbot-{role}"))
            .build(),
    );
    builder = match &config.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .with_context(|| {
                    format!("`telemetry.otlp_endpoint`: cannot export to `{endpoint}`")
                })?;
            builder
                .with_batch_exporter(exporter)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    config.sampling_ratio,
                ))))
        }
        // Nothing exported: spans still get ids (so traceparents propagate) but record nothing.
        None => builder.with_sampler(Sampler::AlwaysOff),
    };
    let provider = builder.build();
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("clawdbot"));
    let store_layer = is_role.then(|| {
        crate::log_store::StoreLogLayer::new(role, clawdbot_worker::default_consumer_name())
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer.with_filter(stdout_filter))
        .with(otel_layer)
        .with(store_layer)
        .try_init()
        .context("installing the log subscriber")?;
    Ok(TelemetryGuard { provider })
}

/// Installs the Prometheus recorder and returns the handle that renders `/metrics`.
///
/// # Errors
/// A recorder is already installed.
pub fn metrics_recorder() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(SKILLS_LATENCY_SECONDS.to_string()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ],
        )
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
        .inspect(|_| clawdbot_core::telemetry::describe())
}
