//! Faults any mock can be told to produce on its next calls — answer late, or answer with a
//! given status and body instead of serving the call — the same for every platform, so the
//! standalone mock's control API and tests program them one way.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What one upcoming call meets.
#[derive(Debug, Clone, Default)]
pub struct Fault {
    /// Waited before answering (or before serving the call, when `answer` is `None`).
    pub delay: Duration,
    /// Answered instead of serving the call: status and JSON body (a platform's error shape,
    /// e.g. WeCom's `{"errcode":45009,…}` with 200, or a bare 503).
    pub answer: Option<(StatusCode, String)>,
}

/// The queue of faults for a mock's next calls, in order; calls past it are served normally.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<VecDeque<Fault>>>);

impl Faults {
    /// Queues `faults` after those already queued.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().extend(faults);
    }

    /// How many faults are still waiting for a call.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Wraps `app` so that each call first takes the next queued fault, if any. WebSocket
    /// upgrades are left alone (a fault is about one API call).
    pub fn wrap(&self, app: axum::Router) -> axum::Router {
        app.layer(axum::middleware::from_fn_with_state(self.clone(), apply))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Fault>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn apply(State(faults): State<Faults>, request: Request<Body>, next: Next) -> Response {
    let upgrade = request.headers().contains_key(axum::http::header::UPGRADE);
    let fault = if upgrade {
        None
    } else {
        faults.lock().pop_front()
    };
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    tokio::time::sleep(fault.delay).await;
    match fault.answer {
        Some((status, body)) => (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        None => next.run(request).await,
    }
}
