//! Skills in other processes (any language): a service serving the `Skill` gRPC service of
//! `proto/clawdbot/v1/skill.proto`, registered by address.
//!
//! ```yaml
//! skills:
//!   weather:
//!     remote: "http://weather-skill:50051"
//!     timeout_ms: 3000            # per message
//!     commands: ["/weather"]      # used when the skill cannot be asked for its manifest
//!     token: "${secret:weather-token}"  # sent as `authorization: Bearer …` on every call
//! ```
//!
//! The worker asks the skill for its manifest at start (`Describe`), then calls `Handle` per
//! message with a deadline. A skill that fails or does not answer in time gets the user a short
//! apology — the message is answered, not lost — and after [`BREAKER_FAILURES`] failures in a
//! row the breaker opens: for [`BREAKER_OPEN`] the skill is not called at all and users get the
//! apology at once, then one call tries it again.

mod breaker;

use std::time::Duration;

use clawdbot_core::proto::skill_client::SkillClient;
use clawdbot_core::proto::{DescribeRequest, Envelope, HandleRequest, Reply, Segment};
use clawdbot_core::reply_id;
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};
use serde::Deserialize;
use tonic::transport::Channel;

use crate::options::{Options, parse};
use breaker::Breaker;

/// Failures in a row that open the breaker.
pub const BREAKER_FAILURES: u32 = 5;
/// How long an open breaker keeps calls away.
pub const BREAKER_OPEN: Duration = Duration::from_secs(30);
/// How long `Describe` may take at start.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteOptions {
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
    /// A bearer token the skill checks (best kept in the store: `${secret:NAME}`).
    #[serde(default)]
    token: Option<String>,
}

type Authorization = Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>;

/// Parses a bearer token into its metadata value; `path` names it in errors.
fn authorization(token: Option<&str>, path: &str) -> Result<Authorization, String> {
    token
        .map(|token| {
            format!("Bearer {token}")
                .parse()
                .map_err(|_| format!("`{path}`: a token is printable ASCII with no line breaks"))
        })
        .transpose()
}

/// Wraps `message` in a request with a deadline and the token, if any.
fn request<T>(message: T, timeout: Duration, authorization: &Authorization) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
    }
    request
}

fn default_timeout_ms() -> u64 {
    3000
}

/// A skill served by another process.
pub struct RemoteSkill {
    manifest: Manifest,
    client: SkillClient<Channel>,
    authorization: Authorization,
    timeout: Duration,
    breaker: Breaker,
}

impl RemoteSkill {
    /// Connects to the skill at `address` under the config name `name`, asking for its
    /// manifest; if it does not answer, the triggers from `options` are used and it is asked
    /// again on each call.
    ///
    /// # Errors
    /// Malformed options or address, naming the key path.
    pub async fn connect(name: &str, address: &str, options: &Options) -> Result<Self, String> {
        let parsed: RemoteOptions = parse(name, options)?;
        let authorization =
            authorization(parsed.token.as_deref(), &format!("skills.{name}.token"))?;
        let channel = Channel::from_shared(address.to_string())
            .map_err(|error| format!("`skills.{name}.remote`: `{address}`: {error}"))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        let mut client = SkillClient::new(channel);
        let mut manifest = Manifest {
            name: name.to_string(),
            description: parsed
                .description
                .clone()
                .unwrap_or_else(|| format!("{name} (remote)")),
            version: "-".to_string(),
            triggers: Triggers {
                commands: parsed.commands,
                keywords: parsed.keywords,
                patterns: parsed.patterns,
                event_types: Vec::new(),
            },
            platforms: Vec::new(),
            enabled_by_default: true,
            admin_only: false,
        };
        let describe = request(DescribeRequest {}, DESCRIBE_TIMEOUT, &authorization);
        match tokio::time::timeout(DESCRIBE_TIMEOUT, client.describe(describe)).await {
            Ok(Ok(described)) => {
                let described = described.into_inner();
                // The config's name wins (it keys permissions and metrics); the skill's own
                // triggers win unless the config sets some.
                manifest.version = described.version;
                if parsed.description.is_none() && !described.description.is_empty() {
                    manifest.description = described.description;
                }
                if manifest.triggers == Triggers::default() {
                    manifest.triggers = Triggers {
                        commands: described.commands,
                        keywords: described.keywords,
                        patterns: described.patterns,
                        event_types: Vec::new(),
                    };
                }
                manifest.platforms = described.platforms;
            }
            Ok(Err(status)) => {
                tracing::warn!(skill = name, address, error = %status, "remote skill did not describe itself; using the config's triggers")
            }
            Err(_) => tracing::warn!(
                skill = name,
                address,
                "remote skill did not answer Describe in time; using the config's triggers"
            ),
        }
        Ok(Self {
            manifest,
            client,
            authorization,
            timeout: Duration::from_millis(parsed.timeout_ms.max(1)),
            breaker: Breaker::new(BREAKER_FAILURES, BREAKER_OPEN),
        })
    }

    /// Asks the skill at `address` to describe itself, with `token` if set; returns its
    /// version.
    ///
    /// # Errors
    /// It does not answer in time, or answers with an error (the reason).
    pub async fn probe(address: &str, token: Option<&str>) -> Result<String, String> {
        let authorization = authorization(token, "token")?;
        let channel = Channel::from_shared(address.to_string())
            .map_err(|error| error.to_string())?
            .connect_timeout(DESCRIBE_TIMEOUT);
        let connect = tokio::time::timeout(DESCRIBE_TIMEOUT, channel.connect()).await;
        let channel = match connect {
            Ok(Ok(channel)) => channel,
            Ok(Err(error)) => return Err(format!("cannot connect: {error}")),
            Err(_) => return Err("cannot connect in time".to_string()),
        };
        let describe = request(DescribeRequest {}, DESCRIBE_TIMEOUT, &authorization);
        match tokio::time::timeout(
            DESCRIBE_TIMEOUT,
            SkillClient::new(channel).describe(describe),
        )
        .await
        {
            Ok(Ok(manifest)) => Ok(manifest.into_inner().version),
            Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
            Err(_) => Err("no answer to Describe in time".to_string()),
        }
    }

    async fn call(&self, msg: &Envelope) -> Result<Vec<Reply>, String> {
        let handle = request(
            HandleRequest {
                envelope: Some(msg.clone()),
            },
            self.timeout,
            &self.authorization,
        );
        let response =
            match tokio::time::timeout(self.timeout, self.client.clone().handle(handle)).await {
                Ok(Ok(response)) => response.into_inner(),
                Ok(Err(status)) => return Err(format!("{}: {}", status.code(), status.message())),
                Err(_) => return Err(format!("no answer within {} ms", self.timeout.as_millis())),
            };
        if !response.error.is_empty() {
            return Err(format!("the skill reported: {}", response.error));
        }
        Ok(response.replies)
    }

    /// Fills in what a remote skill may leave out, and gives each reply its idempotency key.
    fn normalize(&self, msg: &Envelope, replies: Vec<Reply>) -> Vec<Reply> {
        replies
            .into_iter()
            .enumerate()
            .map(|(index, mut reply)| {
                let template = msg.reply(&self.manifest.name, index, Vec::new());
                reply.id = reply_id(&msg.id, &self.manifest.name, index);
                reply.skill = self.manifest.name.clone();
                reply.in_reply_to = msg.id.clone();
                if reply.platform.is_empty() {
                    reply.platform = template.platform;
                    reply.bot_id = template.bot_id;
                    reply.reply_context = template.reply_context;
                }
                if reply.conversation.is_none() {
                    reply.conversation = template.conversation;
                }
                reply
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Skill for RemoteSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let name = &self.manifest.name;
        let outcome = if self.breaker.allows() {
            self.call(msg).await
        } else {
            Err("circuit open after repeated failures".to_string())
        };
        match outcome {
            Ok(replies) => {
                self.breaker.succeeded();
                Ok(self.normalize(msg, replies))
            }
            Err(reason) => {
                self.breaker.failed();
                clawdbot_core::telemetry::count_error("skill", "remote_skill_failed");
                tracing::warn!(skill = %name, error = %reason, "remote skill failed; answering with an apology");
                let text = format!("{name} is not available right now; please try again later.");
                Ok(vec![msg.reply(name, 0, vec![Segment::text(text)])])
            }
        }
    }
}
