//! The commands that administer a deployment rather than run a role: each opens what it needs
//! through `crate::backends` and returns.

use std::time::Duration;

use anyhow::{Context, bail};
use clawdbot_config::Config;

use crate::cli::Command;

/// Runs an admin command; `None` when `command` runs roles instead (`up`, `ingress`, ...).
pub async fn run(command: &Command, config: &Config) -> Option<anyhow::Result<()>> {
    Some(match command {
        Command::Up(_) | Command::Ingress { .. } | Command::Worker(_) | Command::Egress(_) => {
            return None;
        }
        Command::Migrate(_) => crate::backends::migrate(config).await,
        Command::Probe { url } => probe(url).await,
        // Run by main before any config is read; here for completeness.
        Command::CompileWasm {
            memory_bytes,
            max_instances,
            input,
            output,
        } => clawdbot_wasm::compiled::compile_file(*memory_bytes, *max_instances, input, output)
            .map_err(anyhow::Error::from),
        Command::Status { memory, .. } => crate::status::show(config, *memory).await,
        Command::Admin(command) => crate::admin_cli::run(command, config).await,
        Command::Dlq(command) => crate::dlq_cli::run(command, config).await,
        Command::Log(command) => crate::log_cli::run(command, config).await,
        Command::History(command) => crate::history_cli::run(command, config).await,
        Command::Skill(command) => crate::skill_cli::run(command, config).await,
        Command::Security(command) => crate::security_cli::run(command, config).await,
        Command::Config(_) => Ok(()),
    })
}

/// `clawdbot probe URL`: a health check for images without curl.
async fn probe(url: &str) -> anyhow::Result<()> {
    let client = clawdbot_core::tls::http_client_builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let status = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("`{url}` does not answer"))?
        .status();
    if !status.is_success() {
        bail!("`{url}` answered {status}");
    }
    Ok(())
}
