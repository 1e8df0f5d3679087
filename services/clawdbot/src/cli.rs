//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clawdbot_config::{Config, ConfigError, Env};

/// clawdbot: one message model for WeCom, DingTalk, QQ and OneBot bots.
#[derive(Debug, Parser)]
#[command(name = "clawdbot", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs every role in one process.
    Up(UpArgs),
    /// Runs the ingress role (one platform's callbacks, or all with no --platform).
    Ingress {
        #[command(flatten)]
        role: ServeArgs,
        /// Serve only this platform's callbacks (`onebot`, ...).
        #[arg(long)]
        platform: Option<String>,
    },
    /// Runs the skill worker role (and the history writer unless `history.enabled: false`).
    Worker(WorkerArgs),
    /// Runs the egress role.
    Egress(ServeArgs),
    /// Runs the database migrations and exits.
    Migrate(ConfigArg),
    /// Config file commands.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Shows every process of the cluster (role, instance, version, uptime) and the streams.
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Show each process's memory (jemalloc allocated / resident / retained, THP) instead.
        #[arg(long)]
        memory: bool,
    },
    /// Administration: the audit trail.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Dead letters: the messages the workers gave up on — list, show, replay, purge.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// The cluster's recorded warnings, errors and skill calls (every process, from the store).
    #[command(subcommand)]
    Log(LogCommand),
    /// The message history (what came in, what was answered), from the store.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Exits 0 when `url` answers 2xx within 3 s (container health checks: the image has no
    /// curl).
    Probe { url: String },
    /// Skills: list them, build and sign them (keygen), load them on a running cluster and roll
    /// them back, switch them on or off everywhere, check their settings.
    #[command(subcommand)]
    Skill(SkillCommand),
    /// Compiles a skill component for the workers' engine (what a worker runs in a child
    /// process, so that compiling never weighs on it).
    #[command(hide = true)]
    CompileWasm {
        #[arg(long)]
        memory_bytes: usize,
        #[arg(long)]
        max_instances: u32,
        input: PathBuf,
        output: PathBuf,
    },
    /// Credentials the cluster keeps itself (issued API keys, `${secret:NAME}` values), sealed
    /// in the store with AES-256-GCM under `CLAWDBOT_MASTER_KEY`.
    #[command(subcommand)]
    Security(SecurityCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecurityCommand {
    /// Prints a new random master key (base64) for `CLAWDBOT_MASTER_KEY`.
    Keygen,
    /// Stores the value piped on stdin as secret NAME, for the config's `${secret:NAME}`.
    Set {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Issues an API key for SCOPE (`notify`) and prints it once.
    IssueKey {
        scope: String,
        /// Its label (the secret is `SCOPE/NAME`); random when absent.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Lists the secrets (never their values): kind, scope, master key id, created, expires.
    List(ConfigArg),
    /// Deletes a secret or an issued API key.
    Revoke {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// `--master`: re-seals every secret under `CLAWDBOT_MASTER_KEY` (old keys are read from
    /// `CLAWDBOT_MASTER_KEYS_PREVIOUS`); `--api-keys`: issues a successor for every API key,
    /// the old one valid for `--grace`; `--all`: both.
    RotateKeys {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        master: bool,
        #[arg(long)]
        api_keys: bool,
        /// How long a rotated-out API key stays valid (`0s`: revoked at once).
        #[arg(long, default_value = "24h")]
        grace: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Shows messages and replies, oldest first.
    Show {
        /// The conversation (a group, user or channel id as the platform gives it).
        #[arg(long)]
        conversation: Option<String>,
        #[arg(long)]
        platform: Option<String>,
        /// How far back: `30m`, `24h`, `7d`.
        #[arg(long, default_value = "7d")]
        since: String,
        /// At most this many rows (the latest of them).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only rows whose text contains this (any case).
        #[arg(long)]
        grep: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Writes history to stdout, one JSON object per line, streamed page by page.
    Export {
        /// How far back: `30m`, `24h`, `7d`.
        #[arg(long)]
        since: String,
        /// `jsonl` (the one format).
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        conversation: Option<String>,
        #[arg(long)]
        platform: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Shows recorded events, newest last.
    Show {
        /// The least severe level shown: `error`, `warn` or `info` (skill calls).
        #[arg(long, default_value = "warn")]
        level: String,
        /// How many events.
        #[arg(long, default_value_t = 50)]
        lines: i64,
        /// Only events whose message or fields contain this text (any case).
        #[arg(long)]
        grep: Option<String>,
        /// How far back: `30m`, `24h`, `7d`.
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long)]
        platform: Option<String>,
        #[arg(long)]
        skill: Option<String>,
        /// Keep printing new events as they are recorded (Ctrl-C to stop).
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Counts events by skill, platform or error kind.
    Analyze {
        /// `skill`, `platform` or `error`.
        #[arg(long, default_value = "skill")]
        by: String,
        /// How far back: `30m`, `24h`, `7d`.
        #[arg(long, default_value = "24h")]
        last: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Lists dead letters, oldest first: id, when, platform, group, deliveries, reason.
    List {
        /// Only those of the last `30m`, `24h`, `7d`.
        #[arg(long)]
        since: Option<String>,
        /// Only this platform's (`onebot`, `wecom`, ...).
        #[arg(long)]
        platform: Option<String>,
        /// Only those whose reason names this skill.
        #[arg(long)]
        skill: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Shows one dead letter: its message, where and why it failed, how often it was tried.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Puts dead letters back into the inbound stream, once each; replies already delivered
    /// for them are not sent again.
    Replay {
        /// The dead letter's id (from `dlq list`).
        id: Option<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// Only say what would be replayed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Deletes dead letters older than `--older-than` (`30d`, `12h`).
    Purge {
        #[arg(long)]
        older_than: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The audit trail: admin actions, permission denials, admin-only skill calls.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Starts recording, keeping records for `--retention` (`90d`, `12h`).
    Enable {
        #[arg(long, default_value = "90d")]
        retention: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stops recording (what was recorded stays until purged).
    Disable(ConfigArg),
    /// Shows the newest records.
    Show {
        #[arg(long, default_value_t = 50)]
        lines: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum SkillCommand {
    /// Lists the skills: name, version, whether enabled, where from, calls and p99 in the last
    /// hour, and what they do; with --remote, the skills offered by the configured index.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// List the skill index (`skill_index` in the config) instead.
        #[arg(long)]
        remote: bool,
    },
    /// Packs a skill directory into one archive with checksums: a component skill
    /// (`component:` in its `skill.yaml`) is built first (Rust, Python or JavaScript) and packed
    /// as `skill.wasm`; `--key` signs the archive.
    Build {
        /// The skill's project directory, or a Python file with a `BaseSkill` subclass.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The archive to write (`NAME.skill`).
        #[arg(long, short)]
        output: PathBuf,
        #[command(flatten)]
        signing: SigningArg,
    },
    /// Registers a skill (a `.skill` archive, a skill project directory or its `.py` / `.js`
    /// source, a Python file with a `BaseSkill` class, or a remote skill's `skill.yaml`) on the
    /// running deployment, in place of a built-in skill of the same name: served within a
    /// second of its component being compiled for the machine (done here on one machine).
    Load {
        path: PathBuf,
        #[command(flatten)]
        signing: SigningArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Returns a loaded skill to its previous version on every worker (within a second).
    Rollback {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Makes an Ed25519 key pair for signing skills: writes the private key to `--output` and
    /// prints the public key for `worker.wasm.trusted_keys`.
    Keygen {
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Switches a skill on for every worker (within a second), persisted in the store.
    Enable {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Switches a skill off for every worker (within a second), persisted in the store.
    Disable {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Validates the skills' options, triggers and permissions, and that remote skills answer.
    Check(ConfigArg),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Loads and validates the config, prints every problem, and exits (64 when invalid).
    Check {
        /// A YAML file, or a directory of YAML files merged in name order.
        path: PathBuf,
    },
    /// Prints the reference of every key (type, default, unit, example), as Markdown: what
    /// docs/config.md holds.
    Reference,
}

#[derive(Debug, Args)]
pub struct SigningArg {
    /// A private key file from `clawdbot skill keygen` to sign with (or the key itself in
    /// `CLAWDBOT_SKILL_SIGNING_KEY`).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// A YAML file, or a directory of YAML files merged in name order. `clawdbot up` without
    /// one runs embedded: in-process bus, SQLite history, the sandbox chat.
    #[arg(long, short, env = "CLAWDBOT_CONFIG")]
    pub config: Option<PathBuf>,
}

/// What every role takes. Each role offers only the options that mean something to it: a
/// worker has no listener, ingress and egress no consumer name or pool.
#[derive(Debug, Args)]
pub struct RoleArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Overrides `metrics.listen`.
    #[arg(long)]
    pub metrics_listen: Option<String>,
}

/// `ingress` and `egress`: a role with a listener.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    /// Overrides the role's listen address (`ingress.listen` or `egress.listen`).
    #[arg(long)]
    pub listen: Option<String>,
}

/// The worker's own options.
#[derive(Debug, Args)]
pub struct WorkerOptions {
    /// Overrides the worker's consumer name (default: host and pid).
    #[arg(long)]
    pub consumer_name: Option<String>,
    /// The skill pool this worker serves (`worker.pools`); the default pool when absent.
    #[arg(long)]
    pub pool: Option<String>,
}

/// `worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    #[command(flatten)]
    pub worker: WorkerOptions,
}

/// `up`: every role, so the ingress listener and the worker's options.
#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub role: RoleArgs,
    /// Overrides `ingress.listen`.
    #[arg(long)]
    pub listen: Option<String>,
    #[command(flatten)]
    pub worker: WorkerOptions,
}

impl Command {
    /// The role name, for logs and the trace service name.
    pub fn role_name(&self) -> &'static str {
        match self {
            Command::Up(_) => "up",
            Command::Ingress { .. } => "ingress",
            Command::Worker(_) => "worker",
            Command::Egress(_) => "egress",
            Command::Migrate(_) => "migrate",
            Command::Probe { .. } => "probe",
            Command::CompileWasm { .. } => "compile-wasm",
            Command::Status { .. } => "status",
            Command::Admin(_) => "admin",
            Command::Dlq(_) => "dlq",
            Command::Log(_) => "log",
            Command::History(_) => "history",
            Command::Skill(_) => "skill",
            Command::Config(_) => "config",
            Command::Security(_) => "security",
        }
    }

    pub fn config_path(&self) -> Option<&PathBuf> {
        match self {
            Command::Up(UpArgs { role, .. })
            | Command::Ingress {
                role: ServeArgs { role, .. },
                ..
            }
            | Command::Worker(WorkerArgs { role, .. })
            | Command::Egress(ServeArgs { role, .. }) => role.config.config.as_ref(),
            Command::Migrate(arg) | Command::Status { config: arg, .. } => arg.config.as_ref(),
            Command::Admin(AdminCommand::Audit(AuditCommand::Enable { config: arg, .. }))
            | Command::Admin(AdminCommand::Audit(AuditCommand::Disable(arg)))
            | Command::Admin(AdminCommand::Audit(AuditCommand::Show { config: arg, .. })) => {
                arg.config.as_ref()
            }
            Command::Skill(SkillCommand::List { config: arg, .. })
            | Command::Skill(SkillCommand::Load { config: arg, .. })
            | Command::Skill(SkillCommand::Rollback { config: arg, .. })
            | Command::Skill(SkillCommand::Check(arg))
            | Command::Skill(SkillCommand::Enable { config: arg, .. })
            | Command::Skill(SkillCommand::Disable { config: arg, .. }) => arg.config.as_ref(),
            Command::Dlq(
                DlqCommand::List { config: arg, .. }
                | DlqCommand::Show { config: arg, .. }
                | DlqCommand::Replay { config: arg, .. }
                | DlqCommand::Purge { config: arg, .. },
            ) => arg.config.as_ref(),
            Command::Log(LogCommand::Show { config: arg, .. })
            | Command::Log(LogCommand::Analyze { config: arg, .. })
            | Command::History(HistoryCommand::Show { config: arg, .. })
            | Command::History(HistoryCommand::Export { config: arg, .. }) => arg.config.as_ref(),
            Command::Security(
                SecurityCommand::Set { config: arg, .. }
                | SecurityCommand::IssueKey { config: arg, .. }
                | SecurityCommand::List(arg)
                | SecurityCommand::Revoke { config: arg, .. }
                | SecurityCommand::RotateKeys { config: arg, .. },
            ) => arg.config.as_ref(),
            Command::Config(ConfigCommand::Check { path }) => Some(path),
            Command::Config(ConfigCommand::Reference) => None,
            Command::Skill(SkillCommand::Build { .. } | SkillCommand::Keygen { .. })
            | Command::Probe { .. }
            | Command::CompileWasm { .. }
            | Command::Security(SecurityCommand::Keygen) => None,
        }
    }

    /// The `--config` argument of a command that takes one (not `config check`, whose path is
    /// required), to fill in a discovered config.
    pub fn config_arg_mut(&mut self) -> Option<&mut ConfigArg> {
        match self {
            Command::Up(UpArgs { role, .. })
            | Command::Ingress {
                role: ServeArgs { role, .. },
                ..
            }
            | Command::Worker(WorkerArgs { role, .. })
            | Command::Egress(ServeArgs { role, .. }) => Some(&mut role.config),
            Command::Migrate(arg) | Command::Status { config: arg, .. } => Some(arg),
            Command::Admin(AdminCommand::Audit(AuditCommand::Enable { config: arg, .. }))
            | Command::Admin(AdminCommand::Audit(AuditCommand::Disable(arg)))
            | Command::Admin(AdminCommand::Audit(AuditCommand::Show { config: arg, .. })) => {
                Some(arg)
            }
            Command::Skill(SkillCommand::List { config: arg, .. })
            | Command::Skill(SkillCommand::Load { config: arg, .. })
            | Command::Skill(SkillCommand::Rollback { config: arg, .. })
            | Command::Skill(SkillCommand::Check(arg))
            | Command::Skill(SkillCommand::Enable { config: arg, .. })
            | Command::Skill(SkillCommand::Disable { config: arg, .. }) => Some(arg),
            Command::Dlq(
                DlqCommand::List { config: arg, .. }
                | DlqCommand::Show { config: arg, .. }
                | DlqCommand::Replay { config: arg, .. }
                | DlqCommand::Purge { config: arg, .. },
            ) => Some(arg),
            Command::Log(LogCommand::Show { config: arg, .. })
            | Command::Log(LogCommand::Analyze { config: arg, .. })
            | Command::History(HistoryCommand::Show { config: arg, .. })
            | Command::History(HistoryCommand::Export { config: arg, .. }) => Some(arg),
            Command::Security(
                SecurityCommand::Set { config: arg, .. }
                | SecurityCommand::IssueKey { config: arg, .. }
                | SecurityCommand::List(arg)
                | SecurityCommand::Revoke { config: arg, .. }
                | SecurityCommand::RotateKeys { config: arg, .. },
            ) => Some(arg),
            Command::Config(ConfigCommand::Check { .. } | ConfigCommand::Reference)
            | Command::Skill(SkillCommand::Build { .. } | SkillCommand::Keygen { .. })
            | Command::Probe { .. }
            | Command::CompileWasm { .. }
            | Command::Security(SecurityCommand::Keygen) => None,
        }
    }

    /// Whether the command acts on a running deployment's store (and must not invent one).
    pub fn acts_on_a_deployment(&self) -> bool {
        matches!(
            self,
            Command::Admin(_)
                | Command::Log(_)
                | Command::History(_)
                | Command::Status { .. }
                | Command::Skill(
                    SkillCommand::List { remote: false, .. }
                        | SkillCommand::Load { .. }
                        | SkillCommand::Rollback { .. }
                        | SkillCommand::Enable { .. }
                        | SkillCommand::Disable { .. }
                )
                | Command::Security(
                    SecurityCommand::Set { .. }
                        | SecurityCommand::IssueKey { .. }
                        | SecurityCommand::List(_)
                        | SecurityCommand::Revoke { .. }
                        | SecurityCommand::RotateKeys { .. }
                )
        )
    }
}

impl Cli {
    /// Loads the config named on the command line, with the overrides applied; `${...}` are
    /// read from `env`.
    ///
    /// # Errors
    /// Every problem in the config.
    pub fn load_config(&self, env: &dyn Env) -> Result<Config, ConfigError> {
        let mut config = match self.command.config_path() {
            Some(path) => Config::load(path, env)?,
            None if matches!(
                self.command,
                Command::Up(_)
                    | Command::Skill(_)
                    | Command::Probe { .. }
                    | Command::Status { .. }
                    | Command::History(_)
                    | Command::Admin(_)
                    | Command::Log(_)
                    | Command::Security(_)
            ) =>
            {
                Config::embedded()
            }
            None => {
                return Err(ConfigError {
                    problems: vec![format!(
                        "`clawdbot {}` needs --config (or CLAWDBOT_CONFIG): a role on its own needs `cluster.redis` to reach the others",
                        self.command.role_name()
                    )],
                });
            }
        };
        // The skills section names skills this binary has (or remote ones), with valid options.
        let known: Vec<String> = clawdbot_skills::BUILTIN
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut problems =
            clawdbot_worker::policy_sync::check_skill_names(&config.core.skills, &known);
        if let Err(more) =
            clawdbot_skills::builtin(&clawdbot_config::skill_options(&config.core.skills))
        {
            problems.extend(more);
        }
        for (pool, skills) in &config.core.worker.pools {
            for skill in skills {
                let remote = config
                    .core
                    .skills
                    .get(skill)
                    .is_some_and(|s| s.remote.is_some());
                if !known.contains(skill) && !remote {
                    problems.push(format!(
                        "`worker.pools.{pool}`: no skill named `{skill}` (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let (role, listen, worker) = match &self.command {
            Command::Up(up) => (&up.role, up.listen.as_ref(), Some(&up.worker)),
            Command::Ingress { role, .. } => (&role.role, role.listen.as_ref(), None),
            Command::Worker(worker) => (&worker.role, None, Some(&worker.worker)),
            Command::Egress(egress) => (&egress.role, egress.listen.as_ref(), None),
            _ => return Ok(config),
        };
        if let Some(listen) = listen {
            match &self.command {
                Command::Egress(_) => config.core.egress.listen = listen.clone(),
                _ => config.core.ingress.listen = listen.clone(),
            }
        }
        if let Some(listen) = &role.metrics_listen {
            config.core.metrics.listen = listen.clone();
        }
        if let Some(name) = worker.and_then(|w| w.consumer_name.as_ref()) {
            config.core.worker.consumer_name = Some(name.clone());
        }
        // The overrides are validated like the file.
        config.validate()?;
        Ok(config)
    }
}
