//! `clawdbot log show|analyze`: the events every process recorded in the store, as tables.

use std::time::Duration;

use anyhow::bail;
use clawdbot_config::Config;
use clawdbot_store::{LogGroup, LogQuery, LogRecord, LogStore};
use time::OffsetDateTime;

use crate::cli::LogCommand;

/// Parses `30m`, `24h`, `7d` (or seconds with `s`) into a duration; `flag` names it in errors.
pub fn parse_span(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let Ok(number) = number.parse::<u64>() else {
        bail!("`{flag} {text}`: expected a number and a unit, like `30m`, `24h` or `7d`");
    };
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" | "" => number * 3600,
        "d" => number * 86_400,
        _ => bail!("`{flag} {text}`: the unit must be s, m, h or d"),
    };
    Ok(Duration::from_secs(seconds))
}

/// The levels at or above `level`.
fn levels(level: &str) -> anyhow::Result<Vec<String>> {
    let levels: &[&str] = match level.to_ascii_lowercase().as_str() {
        "error" => &["ERROR"],
        "warn" | "warning" => &["ERROR", "WARN"],
        "info" => &["ERROR", "WARN", "INFO"],
        other => bail!("`--level {other}`: expected `error`, `warn` or `info`"),
    };
    Ok(levels.iter().map(|l| l.to_string()).collect())
}

pub(crate) fn format_at(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at.format(format).unwrap_or_default()
}

fn print_record(record: &LogRecord) {
    let mut line = format!(
        "{}  {:<5}  {:<7} {:<18}",
        format_at(record.at),
        record.level,
        record.role,
        record.instance
    );
    for (name, value) in [
        ("platform", &record.platform),
        ("skill", &record.skill),
        ("error", &record.error_type),
    ] {
        if !value.is_empty() {
            line.push_str(&format!(" {name}={value}"));
        }
    }
    line.push_str("  ");
    line.push_str(&record.message);
    if record.count > 1 {
        line.push_str(&format!(" (x{})", record.count));
    }
    if !record.fields.is_empty() {
        line.push_str("  ");
        line.push_str(&record.fields);
    }
    crate::cli_out::say!("{line}");
}

pub async fn run(command: &LogCommand, config: &Config) -> anyhow::Result<()> {
    let (store, _) = crate::backends::connect_store(config).await?;
    match command {
        LogCommand::Show {
            level,
            lines,
            grep,
            since,
            platform,
            skill,
            follow,
            ..
        } => {
            if *lines < 0 {
                bail!("`--lines {lines}`: expected 0 or more");
            }
            let mut query = LogQuery {
                levels: levels(level)?,
                grep: grep.clone(),
                platform: platform.clone(),
                skill: skill.clone(),
                since: OffsetDateTime::now_utc() - parse_span("--since", since)?,
                // What one read takes (while following too); `--lines 0` skips the first.
                limit: (*lines).clamp(1, 100_000),
            };
            // `--lines 0` shows none of the past (with --follow: only what comes next), as
            // `tail -n 0` does.
            let mut records = if *lines == 0 {
                Vec::new()
            } else {
                store.logs(&query).await?
            };
            records.reverse();
            if records.is_empty() && !follow && *lines > 0 {
                crate::cli_out::say!("no events recorded since {}", format_at(query.since));
            }
            for record in &records {
                print_record(record);
            }
            if *follow {
                let from = match records.last() {
                    Some(record) => Some(record.at),
                    None if *lines == 0 => Some(OffsetDateTime::now_utc()),
                    None => None,
                };
                follow_logs(&*store, &mut query, from).await?;
            }
        }
        LogCommand::Analyze { by, last, .. } => {
            let group = match by.as_str() {
                "skill" => LogGroup::Skill,
                "platform" => LogGroup::Platform,
                "error" => LogGroup::Error,
                other => bail!("`--by {other}`: expected `skill`, `platform` or `error`"),
            };
            let since = OffsetDateTime::now_utc() - parse_span("--last", last)?;
            let rows = store.log_summary(group, since).await?;
            crate::cli_out::say!(
                "{:<28} {:>10} {:>8} {:>9}",
                by.to_uppercase(),
                "EVENTS",
                "ERRORS",
                "WARNINGS"
            );
            for row in &rows {
                crate::cli_out::say!(
                    "{:<28} {:>10} {:>8} {:>9}",
                    row.key,
                    row.total,
                    row.errors,
                    row.warnings
                );
            }
            if rows.is_empty() {
                crate::cli_out::say!("(nothing recorded since {})", format_at(since));
            }
        }
    }
    Ok(())
}

/// Prints events recorded after `last`, once a second, until interrupted.
async fn follow_logs(
    store: &dyn LogStore,
    query: &mut LogQuery,
    mut last: Option<OffsetDateTime>,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = clawdbot_core::shutdown::signal() => return Ok(()),
        }
        if let Some(last) = last {
            query.since = last + time::Duration::milliseconds(1);
        }
        let mut records = store.logs(query).await?;
        records.reverse();
        for record in &records {
            print_record(record);
        }
        if let Some(newest) = records.last() {
            last = Some(newest.at);
        }
    }
}
