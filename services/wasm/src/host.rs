//! The host side of a call: the sandboxed WASI context, the memory limit, and the `host`
//! interface of the skill world, each function checked against the skill's capabilities.

use std::sync::Arc;
use std::time::Duration;

use clawdbot_core::proto::Envelope;
use clawdbot_core::shared::SharedState;
use clawdbot_core::skill::ConversationHistory;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::clawdbot::skill::{host, types};
use crate::capabilities::Capabilities;

/// Longest key and value a skill may store.
const MAX_KV_KEY: usize = 256;
const MAX_KV_VALUE: usize = 64 * 1024;
/// A value stored with `ttl-secs` 0 lives this long; none lives longer than the maximum.
const DEFAULT_KV_TTL: Duration = Duration::from_secs(86_400);
const MAX_KV_TTL: Duration = Duration::from_secs(30 * 86_400);
/// The most history one call reads, and the largest HTTP response body it gets.
const MAX_HISTORY: u32 = 100;
const MAX_HTTP_BODY: usize = 1 << 20;

/// What the host functions reach, shared by every call of one skill.
#[derive(Clone)]
pub struct HostServices {
    pub skill: String,
    pub capabilities: Capabilities,
    /// The cluster's shared key-value state (Redis, or the embedded bus).
    pub kv: Option<Arc<dyn SharedState>>,
    /// No redirects: a redirect to an unlisted host would get around the list.
    pub http: reqwest::Client,
    /// How long one host call (an HTTP request, a store read) may take.
    pub host_timeout: Duration,
}

/// One call's store data.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    services: Arc<HostServices>,
    history: Option<Arc<dyn ConversationHistory>>,
    message: Option<Envelope>,
}

impl CallState {
    /// A call with no files, sockets, environment or arguments, limited to `memory_bytes`.
    pub fn new(
        services: Arc<HostServices>,
        memory_bytes: usize,
        history: Option<Arc<dyn ConversationHistory>>,
        message: Option<Envelope>,
    ) -> Self {
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = wasmtime::StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits,
            services,
            history,
            message,
        }
    }

    fn kv_key(&self, key: &str) -> Result<String, String> {
        if !self.services.capabilities.kv {
            return Err("this skill's manifest does not declare the `kv` capability".into());
        }
        if key.is_empty() || key.len() > MAX_KV_KEY {
            return Err(format!("keys are 1 to {MAX_KV_KEY} bytes"));
        }
        Ok(format!("skillkv:{}:{key}", self.services.skill))
    }

    fn kv(&self) -> Result<&Arc<dyn SharedState>, String> {
        self.services
            .kv
            .as_ref()
            .ok_or_else(|| "no key-value store on this worker".to_string())
    }
}

/// One HTTP request on behalf of a skill, if its manifest lists the host.
async fn fetch(
    services: Arc<HostServices>,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<host::HttpResponse, String> {
    services.capabilities.check_url(&url)?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let mut request = services
        .http
        .request(method, &url)
        .timeout(services.host_timeout)
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut response = request.send().await.map_err(|e| format!("`{url}`: {e}"))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("`{url}`: {e}"))?
    {
        if body.len() + chunk.len() > MAX_HTTP_BODY {
            return Err(format!(
                "`{url}`: response larger than {MAX_HTTP_BODY} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(host::HttpResponse { status, body })
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for CallState {}

impl host::Host for CallState {
    async fn log(&mut self, level: host::LogLevel, text: String) {
        let skill = self.services.skill.as_str();
        match level {
            host::LogLevel::Debug => tracing::debug!(skill, "{text}"),
            host::LogLevel::Info => tracing::info!(skill, "{text}"),
            host::LogLevel::Warn => tracing::warn!(skill, "{text}"),
            host::LogLevel::Error => {
                tracing::error!(skill, error_type = "wasm_skill_log", "{text}")
            }
        }
    }

    async fn kv_get(&mut self, key: String) -> Result<Option<String>, String> {
        let key = self.kv_key(&key)?;
        self.kv()?.get_value(&key).await.map_err(|e| e.to_string())
    }

    async fn kv_set(&mut self, key: String, value: String, ttl_secs: u32) -> Result<(), String> {
        let key = self.kv_key(&key)?;
        if value.len() > MAX_KV_VALUE {
            return Err(format!("values are at most {MAX_KV_VALUE} bytes"));
        }
        let ttl = match ttl_secs {
            0 => DEFAULT_KV_TTL,
            secs => Duration::from_secs(u64::from(secs)).min(MAX_KV_TTL),
        };
        self.kv()?
            .put_value(&key, &value, ttl)
            .await
            .map_err(|e| e.to_string())
    }

    async fn history(&mut self, limit: u32) -> Result<Vec<types::PastMessage>, String> {
        if !self.services.capabilities.history {
            return Err("this skill's manifest does not declare the `history` capability".into());
        }
        let (Some(history), Some(message)) = (&self.history, &self.message) else {
            return Err("no history on this worker".into());
        };
        let past = tokio::time::timeout(
            self.services.host_timeout,
            history.recent(message, limit.min(MAX_HISTORY) as usize),
        )
        .await
        .map_err(|_| "history did not answer in time".to_string())??;
        Ok(past
            .into_iter()
            .map(|p| types::PastMessage {
                id: p.id,
                from_bot: p.from_bot,
                skill: p.skill,
                text: p.text,
            })
            .collect())
    }

    async fn http_request(
        &mut self,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<host::HttpResponse, String> {
        let services = self.services.clone();
        let skill = services.skill.clone();
        let outcome = fetch(services, method, url.clone(), headers, body).await;
        if let Err(reason) = &outcome {
            tracing::warn!(skill, url, reason, "skill HTTP request refused or failed");
        }
        outcome
    }
}
