//! `clawdbot admin audit enable|disable|show`.

use anyhow::bail;
use clawdbot_config::Config;
use clawdbot_store::{AuditRecord, Store};

use crate::cli::{AdminCommand, AuditCommand};

/// Parses `90d` / `12h` into days (hours round up to a day).
fn retention_days(text: &str) -> anyhow::Result<i32> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: i32 = number.parse().map_err(|_| {
        anyhow::anyhow!("`--retention {text}`: expected a number of days like `90d`")
    })?;
    match unit {
        "d" | "" => Ok(number.max(1)),
        "h" => Ok((number + 23) / 24),
        _ => bail!("`--retention {text}`: expected days (`90d`) or hours (`12h`)"),
    }
}

/// Who runs this command: `$USER`, else `$LOGNAME` (cron, `su`), else the numeric user id
/// (containers without either), so an audit record always names someone.
pub fn os_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .filter_map(|key| std::env::var(key).ok())
        .find(|name| !name.trim().is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
            Some(format!("uid{}", uid.split_whitespace().next()?))
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// Appends one record for an action taken from the CLI, if auditing is on.
pub async fn record(store: &dyn Store, action: &str, target: &str) -> anyhow::Result<()> {
    if store.audit_settings().await?.is_some_and(|(on, _)| on) {
        let actor = format!("cli:{}", os_user());
        let record = AuditRecord {
            at: time::OffsetDateTime::now_utc(),
            actor,
            action: action.to_string(),
            target: target.to_string(),
            decision: "done".to_string(),
            reason: String::new(),
        };
        store.record_audit(&[record]).await?;
    }
    Ok(())
}

pub async fn run(command: &AdminCommand, config: &Config) -> anyhow::Result<()> {
    let AdminCommand::Audit(command) = command;
    let (store, _) = crate::backends::connect_store(config).await?;
    match command {
        AuditCommand::Enable { retention, .. } => {
            let days = retention_days(retention)?;
            store.set_audit(true, days).await?;
            record(&*store, "audit.enable", &format!("retention {days}d")).await?;
            crate::cli_out::say!("audit on, records kept {days} days");
        }
        AuditCommand::Disable(_) => {
            record(&*store, "audit.disable", "").await?;
            let days = store.audit_settings().await?.map_or(90, |(_, days)| days);
            store.set_audit(false, days).await?;
            crate::cli_out::say!("audit off");
        }
        AuditCommand::Show { lines, .. } => {
            crate::cli_out::say!(
                "{:<20} {:<20} {:<16} {:<16} {:<8} REASON",
                "AT (UTC)",
                "ACTOR",
                "ACTION",
                "TARGET",
                "DECISION"
            );
            for r in store.audit_records(*lines).await? {
                let at = format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    r.at.year(),
                    r.at.month() as u8,
                    r.at.day(),
                    r.at.hour(),
                    r.at.minute(),
                    r.at.second()
                );
                crate::cli_out::say!(
                    "{at:<20} {:<20} {:<16} {:<16} {:<8} {}",
                    r.actor,
                    r.action,
                    r.target,
                    r.decision,
                    r.reason
                );
            }
        }
    }
    Ok(())
}
