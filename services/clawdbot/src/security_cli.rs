//! `clawdbot security keygen|set|issue-key|list|revoke|rotate-keys`: the credentials the
//! cluster keeps itself, sealed in the store under the master key from the environment.

use std::io::Read;

use anyhow::{Context, bail};
use clawdbot_config::Config;
use clawdbot_store::keyring::{Keyring, MasterKey};

use crate::cli::SecurityCommand;
use crate::log_cli::{format_at, parse_span};
use crate::vault::Vault;

/// The APIs clawdbot issues keys for.
const SCOPES: &[&str] = &[clawdbot_platforms::notify::NAME];

/// Secret names: letters, digits and `_ - . /`; `@` is kept for rotated-out keys.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    if !valid {
        bail!(
            "secret name `{name}`: use 1 to 128 letters, digits, `_`, `-`, `.` or `/` (`@` marks rotated-out keys)"
        );
    }
    Ok(())
}

async fn open_vault(config: &Config) -> anyhow::Result<Vault> {
    let keys = Keyring::from_env()?;
    let (store, _) = crate::backends::connect_store(config).await?;
    Ok(Vault::new(store, keys))
}

async fn audit(vault: &Vault, action: &str, target: &str) -> anyhow::Result<()> {
    crate::admin_cli::record(vault.store(), action, target).await
}

pub async fn run(command: &SecurityCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        SecurityCommand::Keygen => {
            let (key, text) = MasterKey::generate();
            eprintln!(
                "a new master key (id {}); put it in CLAWDBOT_MASTER_KEY of every process:",
                key.id()
            );
            crate::cli_out::say!("{text}");
            Ok(())
        }
        SecurityCommand::Set { name, .. } => set(name, config).await,
        SecurityCommand::IssueKey { scope, name, .. } => {
            issue_key(scope, name.as_deref(), config).await
        }
        SecurityCommand::List(_) => list(&open_vault(config).await?).await,
        SecurityCommand::Revoke { name, .. } => {
            let vault = open_vault(config).await?;
            if !vault.delete(name).await? {
                bail!("no secret named `{name}` (`clawdbot security list` shows them)");
            }
            audit(&vault, "secret.revoke", name).await?;
            crate::cli_out::say!("revoked `{name}`: no ingress accepts it after 2 s");
            Ok(())
        }
        SecurityCommand::RotateKeys {
            all,
            master,
            api_keys,
            grace,
            ..
        } => {
            if !(*all || *master || *api_keys) {
                bail!("say what to rotate: `--master`, `--api-keys`, or `--all` for both");
            }
            let grace = parse_span("--grace", grace)?;
            let vault = open_vault(config).await?;
            if *all || *master {
                rotate_master(&vault).await?;
            }
            if *all || *api_keys {
                rotate_api_keys(&vault, grace).await?;
            }
            Ok(())
        }
    }
}

/// `security set NAME`: the value from stdin, sealed under the current master key.
async fn set(name: &str, config: &Config) -> anyhow::Result<()> {
    check_name(name)?;
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .context("reading the secret from stdin")?;
    // `echo value |` adds a newline that is never part of a secret.
    let value = value.strip_suffix('\n').unwrap_or(&value);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        bail!(
            "secret `{name}`: nothing on stdin (pipe the value in: `… | clawdbot security set {name}`)"
        );
    }
    let vault = open_vault(config).await?;
    vault.put_value(name, value).await?;
    audit(&vault, "secret.set", name).await?;
    crate::cli_out::say!(
        "stored `{name}` under master key {}; the config can use ${{secret:{name}}}",
        vault.keys().current().id()
    );
    Ok(())
}

/// `security issue-key SCOPE [--name N]`: a new API key, shown once.
async fn issue_key(scope: &str, name: Option<&str>, config: &Config) -> anyhow::Result<()> {
    if !SCOPES.contains(&scope) {
        bail!("`{scope}`: keys are issued for {} only", SCOPES.join(", "));
    }
    let label = name.map(str::to_string).unwrap_or_else(|| {
        let bytes: [u8; 3] = rand::random();
        format!("key-{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2])
    });
    let name = format!("{scope}/{label}");
    check_name(&name)?;
    let vault = open_vault(config).await?;
    let key = vault.issue_api_key(scope, &name).await?;
    audit(&vault, "api_key.issue", &name).await?;
    eprintln!("issued `{name}`; shown this once, accepted by every ingress within 2 s:");
    crate::cli_out::say!("{key}");
    Ok(())
}

/// `security list`: every secret, the key it is sealed under, and which no key opens.
async fn list(vault: &Vault) -> anyhow::Result<()> {
    let current = vault.keys().current().id().to_string();
    let records = vault.records().await?;
    crate::cli_out::say!(
        "{:<32} {:<8} {:<8} {:<9} {:<20} EXPIRES",
        "NAME",
        "KIND",
        "SCOPE",
        "KEY",
        "CREATED (UTC)"
    );
    let (mut stale, mut unreadable) = (0, 0);
    for r in &records {
        let opens = vault.open(r).is_ok();
        stale += usize::from(r.key_id != current);
        unreadable += usize::from(!opens);
        let key = if opens {
            r.key_id.clone()
        } else {
            format!("{}!", r.key_id)
        };
        crate::cli_out::say!(
            "{:<32} {:<8} {:<8} {:<9} {:<20} {}",
            r.name,
            r.kind,
            r.scope,
            key,
            format_at(r.created_at),
            r.expires_at.map_or_else(|| "-".to_string(), format_at)
        );
    }
    crate::cli_out::say!(
        "{} secrets; current master key {current}; {stale} under an older key{}",
        records.len(),
        if stale > 0 {
            " (`clawdbot security rotate-keys --master` re-seals them)"
        } else {
            ""
        }
    );
    if unreadable > 0 {
        crate::cli_out::say!(
            "{unreadable} marked ! do not open with CLAWDBOT_MASTER_KEY or CLAWDBOT_MASTER_KEYS_PREVIOUS"
        );
    }
    Ok(())
}

/// `rotate-keys --master`: every secret re-sealed under the current master key.
async fn rotate_master(vault: &Vault) -> anyhow::Result<()> {
    let report = vault.reseal_all().await?;
    let key = vault.keys().current().id().to_string();
    audit(vault, "keys.rotate_master", &key).await?;
    crate::cli_out::say!(
        "master key {key}: {} secrets re-sealed, {} already under it",
        report.resealed.len(),
        report.current
    );
    if !report.failed.is_empty() {
        for (name, error) in &report.failed {
            eprintln!("  not re-sealed: {name}: {error}");
        }
        bail!(
            "{} secrets could not be opened; add their old key to CLAWDBOT_MASTER_KEYS_PREVIOUS and run again",
            report.failed.len()
        );
    }
    Ok(())
}

/// `rotate-keys --api-keys`: a successor for every API key, the old one valid for `grace`.
async fn rotate_api_keys(vault: &Vault, grace: std::time::Duration) -> anyhow::Result<()> {
    let issued = vault.rotate_api_keys(grace).await?;
    audit(vault, "api_keys.rotate", &format!("{} keys", issued.len())).await?;
    crate::cli_out::say!("{} API keys rotated:", issued.len());
    for key in &issued {
        let old = key.old_valid_until.map_or_else(
            || "old key revoked".to_string(),
            |at| format!("old key valid until {} UTC", format_at(at)),
        );
        crate::cli_out::say!("  {:<32} {}  ({old})", key.name, key.key);
    }
    Ok(())
}
