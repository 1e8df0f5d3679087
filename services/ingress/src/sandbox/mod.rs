//! The sandbox's page and its live reply feed.
//!
//! `GET /sandbox` serves the chat page; `GET /sandbox/events?kind=group&id=1001` streams the
//! bot's replies to that conversation as server-sent events. Replies reach every ingress process
//! through the bus's broadcast channel (egress may run elsewhere); each process subscribes once
//! and fans out to its open pages.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use clawdbot_bus::Broadcast;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

const PAGE: &str = include_str!("page.html");
/// Replies buffered per page before a slow page misses some (about a second at full rate).
const FEED_BUFFER: usize = 16_384;

/// One reply on its way to the pages.
#[derive(Debug, Clone)]
struct Delivered {
    kind: String,
    id: String,
    json: String,
}

/// The replies of one sandbox account, fanned out to this process's pages.
#[derive(Clone)]
pub struct SandboxFeed {
    tx: broadcast::Sender<Arc<Delivered>>,
    bot_id: String,
}

impl SandboxFeed {
    /// Subscribes to the account's broadcast channel and relays it until the process ends.
    ///
    /// # Errors
    /// The bus cannot be reached.
    pub async fn start(
        bus: Arc<dyn Broadcast>,
        bot_id: &str,
    ) -> Result<Self, clawdbot_bus::BusError> {
        let mut replies = bus
            .subscribe(&clawdbot_platforms::sandbox::channel(bot_id))
            .await?;
        let (tx, _) = broadcast::channel(FEED_BUFFER);
        let relay = tx.clone();
        tokio::spawn(async move {
            while let Some(payload) = replies.recv().await {
                let Ok(json) = String::from_utf8(payload) else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&json) else {
                    continue;
                };
                let field = |name: &str| {
                    value["conversation"][name]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                };
                // No page open is fine.
                let _pages = relay.send(Arc::new(Delivered {
                    kind: field("kind"),
                    id: field("id"),
                    json,
                }));
            }
        });
        Ok(Self {
            tx,
            bot_id: bot_id.to_string(),
        })
    }

    /// Returns the page and feed routes.
    pub fn routes(self) -> Router {
        Router::new()
            .route("/sandbox", get(page))
            .route("/sandbox/events", get(events))
            .with_state(self)
    }
}

async fn page() -> impl IntoResponse {
    Html(PAGE)
}

#[derive(Debug, Deserialize)]
struct Watch {
    kind: String,
    id: String,
}

async fn events(
    State(feed): State<SandboxFeed>,
    Query(watch): Query<Watch>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    tracing::debug!(bot_id = %feed.bot_id, kind = %watch.kind, id = %watch.id, "sandbox page watching");
    let stream = BroadcastStream::new(feed.tx.subscribe()).filter_map(move |delivered| {
        let matches = delivered
            .ok()
            .filter(|d| d.kind == watch.kind && d.id == watch.id);
        std::future::ready(
            matches.map(|d| Ok(Event::default().event("reply").data(d.json.clone()))),
        )
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
