//! `security.allowed_ips`: only listed addresses may reach ingress. Probes (`/healthz`,
//! `/readyz`) stay open so that the orchestrator can check the pod from its own address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use clawdbot_core::telemetry;
use ipnet::IpNet;

/// Who may call.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    /// Empty: everyone.
    pub allowed: Vec<IpNet>,
    /// Believe the first `X-Forwarded-For` entry (behind a proxy you run).
    pub trust_forwarded_for: bool,
}

/// Wraps every route of `router` with the policy.
pub fn restrict(router: Router, policy: AccessPolicy) -> Router {
    if policy.allowed.is_empty() {
        return router;
    }
    router.layer(middleware::from_fn_with_state(Arc::new(policy), check))
}

async fn check(
    State(policy): State<Arc<AccessPolicy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    let forwarded = policy
        .trust_forwarded_for
        .then(|| {
            request
                .headers()
                .get("x-forwarded-for")?
                .to_str()
                .ok()?
                .split(',')
                .next()?
                .trim()
                .parse::<IpAddr>()
                .ok()
        })
        .flatten();
    let client = forwarded.unwrap_or(peer.ip());
    if policy.allowed.iter().any(|net| net.contains(&client)) {
        return next.run(request).await;
    }
    telemetry::count_error("ingress", "ip_not_allowed");
    tracing::warn!(client = %client, path, "request from outside security.allowed_ips refused");
    (
        StatusCode::FORBIDDEN,
        format!("{client} may not call this service\n"),
    )
        .into_response()
}
