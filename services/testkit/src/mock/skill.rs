//! A skill in another process, as a team would write one: serves the `Skill` gRPC service,
//! answers `/weather <city>` with `sunny in <city>`, and can be told to hang.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use clawdbot_core::proto::skill_server::{Skill, SkillServer};
use clawdbot_core::proto::{
    DescribeRequest, HandleRequest, HandleResponse, Reply, Segment, SkillManifest,
};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Shared {
    hang: AtomicBool,
    calls: AtomicUsize,
    /// When set, calls without `authorization: Bearer <token>` are refused.
    token: Option<String>,
}

struct Service(Arc<Shared>);

impl Service {
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(token) = &self.0.token else {
            return Ok(());
        };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if given == Some(format!("Bearer {token}").as_str()) {
            Ok(())
        } else {
            Err(Status::unauthenticated("a bearer token is required"))
        }
    }
}

#[tonic::async_trait]
impl Skill for Service {
    async fn describe(
        &self,
        request: Request<DescribeRequest>,
    ) -> Result<Response<SkillManifest>, Status> {
        self.authorize(&request)?;
        Ok(Response::new(SkillManifest {
            name: "weather".into(),
            description: "/weather <city>: today's weather".into(),
            version: "2.1.0".into(),
            commands: vec!["/weather".into()],
            enabled_by_default: true,
            ..Default::default()
        }))
    }

    async fn handle(
        &self,
        request: Request<HandleRequest>,
    ) -> Result<Response<HandleResponse>, Status> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        self.authorize(&request)?;
        if self.0.hang.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        let envelope = request.into_inner().envelope.unwrap_or_default();
        let city = envelope
            .text
            .trim_start_matches("/weather")
            .trim()
            .to_string();
        // A minimal reply: the worker fills in where it goes.
        let reply = Reply {
            segments: vec![Segment::text(format!("sunny in {city}"))],
            ..Default::default()
        };
        Ok(Response::new(HandleResponse {
            replies: vec![reply],
            ..Default::default()
        }))
    }
}

/// The running skill server; stops when dropped.
pub struct MockSkill {
    pub address: SocketAddr,
    shared: Arc<Shared>,
    _server: tokio::task::JoinHandle<()>,
}

impl MockSkill {
    /// Starts the skill server on 127.0.0.1 (a free port).
    ///
    /// # Panics
    /// No port can be bound.
    pub async fn start() -> Self {
        Self::start_with(Shared::default()).await
    }

    /// Starts a skill server that refuses calls without `authorization: Bearer <token>`.
    pub async fn start_requiring_token(token: &str) -> Self {
        Self::start_with(Shared {
            token: Some(token.to_string()),
            ..Shared::default()
        })
        .await
    }

    async fn start_with(shared: Shared) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("mock skill bind: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("mock skill address: {error}"));
        let shared = Arc::new(shared);
        let service = SkillServer::new(Service(shared.clone()));
        let server = tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _stopped = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Self {
            address,
            shared,
            _server: server,
        }
    }

    /// Returns the address to register the skill under (`remote:`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Makes every later call hang forever.
    pub fn hang(&self) {
        self.shared.hang.store(true, Ordering::Relaxed);
    }

    /// Returns how many `Handle` calls arrived.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::Relaxed)
    }
}
