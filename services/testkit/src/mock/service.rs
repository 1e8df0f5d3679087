//! A stand-in for an internal HTTP service a skill calls (the `http` skill's endpoint): records
//! each request with its headers, answers with a programmable body after a programmable delay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::any;

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub request_id: Option<String>,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    answer: Mutex<(String, Duration)>,
}

/// The running service; stops when dropped.
pub struct MockService {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    _server: tokio::task::JoinHandle<()>,
}

impl MockService {
    /// Starts the service on 127.0.0.1, answering `answer` to every POST.
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start(answer: &str) -> Self {
        let shared = Arc::new(Shared {
            answer: Mutex::new((answer.to_string(), Duration::ZERO)),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("mock service bind: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("mock service address: {error}"));
        let app = axum::Router::new()
            .route("/{*path}", any(receive))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _stopped = axum::serve(listener, app).await;
        });
        Self {
            address,
            shared,
            _server: server,
        }
    }

    /// Returns the URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.address, path.trim_start_matches('/'))
    }

    /// Makes later requests wait `delay` before being answered.
    pub fn delay(&self, delay: Duration) {
        if let Ok(mut answer) = self.shared.answer.lock() {
            answer.1 = delay;
        }
    }

    /// Returns every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> String {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if let Ok(mut received) = shared.received.lock() {
        received.push(Received { request_id, body });
    }
    let (answer, delay) = shared.answer.lock().map(|a| a.clone()).unwrap_or_default();
    tokio::time::sleep(delay).await;
    answer
}
