//! One trace per message across processes: ingress, worker and egress each export spans to a
//! real OTLP receiver (the opentelemetry-proto gRPC service, served here), and the spans of one
//! message share one trace id with the right parent links.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Backend, Clawdbot, Ports, Setup};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;

/// Spans received, with the service that sent them.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test]
async fn one_message_is_one_trace_across_ingress_worker_and_egress() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let otlp = format!("http://{}", listener.local_addr().expect("address"));
    let server = TraceServiceServer::new(receiver.clone());
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _stopped = tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(incoming)
            .await;
    });

    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let extra = format!(
        "telemetry:\n  otlp_endpoint: \"{otlp}\"\n  sampling_ratio: 1.0\n  log_format: text\n"
    );
    let config = setup.config(&setup.redis_url(), ports.egress, &extra);
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let mut egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let mut worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;

    assert_eq!(
        setup
            .post_group_message(ports.ingress, 9, 1, "/echo traced")
            .await,
        204
    );
    setup.mock.wait_for(1, Duration::from_secs(10)).await;
    // Exporters flush on shutdown.
    worker.terminate().await;
    egress.terminate().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let wanted = ["ingress", "skill_dispatch", "skill", "egress"];
    let spans = loop {
        let spans = receiver.spans.lock().expect("lock").clone();
        let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
        if wanted.iter().all(|w| names.contains(w)) || tokio::time::Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_name: HashMap<&str, &Span> = spans.iter().map(|(_, s)| (s.name.as_str(), s)).collect();
    for name in wanted {
        assert!(
            by_name.contains_key(name),
            "span `{name}` missing; got {:?}",
            by_name.keys().collect::<Vec<_>>()
        );
    }
    let (ingress, dispatch, skill, egress_span) = (
        by_name["ingress"],
        by_name["skill_dispatch"],
        by_name["skill"],
        by_name["egress"],
    );
    assert_eq!(
        dispatch.trace_id, ingress.trace_id,
        "the worker joins the ingress trace (traceparent in the stream entry)"
    );
    assert_eq!(skill.trace_id, ingress.trace_id);
    assert_eq!(
        egress_span.trace_id, ingress.trace_id,
        "egress joins it too (trace context in the reply)"
    );
    assert_eq!(
        dispatch.parent_span_id, ingress.span_id,
        "dispatch is a child of the ingress span"
    );
    assert_eq!(
        skill.parent_span_id, dispatch.span_id,
        "the skill runs under the dispatch"
    );
    assert_eq!(
        egress_span.parent_span_id, skill.span_id,
        "delivery is a child of the skill that replied"
    );
    let services: Vec<&str> = spans.iter().map(|(service, _)| service.as_str()).collect();
    assert!(
        services.iter().any(|s| s.contains("clawdbot-ingress"))
            && services.iter().any(|s| s.contains("clawdbot-worker"))
            && services.iter().any(|s| s.contains("clawdbot-egress")),
        "{services:?}"
    );
    assert!(
        dispatch
            .attributes
            .iter()
            .any(|kv| kv.key == "stream_wait_ms"),
        "the wait in the stream is recorded"
    );
}
