//! `clawdbot dlq list|show|replay|purge`: the messages the workers gave up on, for an operator
//! to read, send back, or drop. Every change is audited like the other admin commands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clawdbot_bus::{Bus, DeadLetter, Replayed};
use clawdbot_config::Config;
use clawdbot_core::proto::Envelope;
use prost::Message;

use crate::cli::DlqCommand;
use crate::log_cli::parse_span;

/// Dead letters read per page while listing.
const PAGE: usize = 500;

pub async fn run(command: &DlqCommand, config: &Config) -> anyhow::Result<()> {
    if config.core.cluster.is_none() {
        bail!(
            "no `cluster.redis` in the config: with the embedded bus the dead letters live inside the running `clawdbot up` and are gone with it; give the config of the cluster (--config)"
        );
    }
    let bus = crate::backends::connect_bus(config, false).await?;
    match command {
        DlqCommand::List {
            since,
            platform,
            skill,
            ..
        } => {
            let since = since
                .as_deref()
                .map(|s| parse_span("--since", s))
                .transpose()?;
            list(&bus, since, platform.as_deref(), skill.as_deref()).await
        }
        DlqCommand::Show { id, .. } => show(&bus, id).await,
        DlqCommand::Replay {
            id, all, dry_run, ..
        } => {
            let ids = match (id, all) {
                (Some(id), false) => vec![id.clone()],
                (None, true) => all_ids(&bus).await?,
                _ => bail!("give one dead letter ID, or --all"),
            };
            replay(&bus, config, &ids, *dry_run).await
        }
        DlqCommand::Purge { older_than, .. } => {
            let age = parse_span("--older-than", older_than)?;
            purge(&bus, config, older_than, age).await
        }
    }
}

/// A dead letter with its envelope read, where it can be.
struct Shown {
    dead: DeadLetter,
    envelope: Option<Envelope>,
}

impl Shown {
    fn new(dead: DeadLetter) -> Self {
        let envelope = Envelope::decode(dead.payload.as_slice()).ok();
        Self { dead, envelope }
    }

    fn platform(&self) -> &str {
        self.envelope.as_ref().map_or("?", |e| e.platform.as_str())
    }
}

/// When a stream id was written (its millisecond part).
fn id_ms(id: &str) -> u64 {
    id.split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_default()
}

fn format_ms(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(crate::log_cli::format_at)
        .unwrap_or_default()
}

/// Every dead letter, page by page (the stream is bounded: it keeps the newest 100,000).
async fn every_dead_letter(bus: &Arc<dyn Bus>) -> anyhow::Result<Vec<DeadLetter>> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let page = bus.dead_letters(&after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(all);
        };
        after = last.id.clone();
        let full = page.len() == PAGE;
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

async fn list(
    bus: &Arc<dyn Bus>,
    since: Option<Duration>,
    platform: Option<&str>,
    skill: Option<&str>,
) -> anyhow::Result<()> {
    let oldest_ms = since.map_or(0, |since| {
        clawdbot_core::now_ms().saturating_sub(since.as_millis() as i64) as u64
    });
    let shown: Vec<Shown> = every_dead_letter(bus)
        .await?
        .into_iter()
        .filter(|dead| id_ms(&dead.id) >= oldest_ms)
        .map(Shown::new)
        .filter(|shown| platform.is_none_or(|p| shown.platform() == p))
        // The reason names the skill that failed, when one did.
        .filter(|shown| skill.is_none_or(|s| shown.dead.reason.contains(s)))
        .collect();
    crate::cli_out::line(&format!(
        "{:<16} {:<20} {:<9} {:<10} {:>4}  REASON",
        "ID", "AT (UTC)", "PLATFORM", "GROUP", "TRIES"
    ));
    for shown in &shown {
        crate::cli_out::line(&format!(
            "{:<16} {:<20} {:<9} {:<10} {:>4}  {}",
            shown.dead.id,
            format_ms(id_ms(&shown.dead.id)),
            shown.platform(),
            shown.dead.group,
            shown.dead.deliveries,
            shown.dead.reason
        ));
    }
    crate::cli_out::line(&format!("{} dead letters", shown.len()));
    Ok(())
}

async fn show(bus: &Arc<dyn Bus>, id: &str) -> anyhow::Result<()> {
    let Some(dead) = bus.dead_letter_by_id(id).await? else {
        bail!("no dead letter `{id}` (list them with `clawdbot dlq list`)");
    };
    let shown = Shown::new(dead);
    let dead = &shown.dead;
    let mut lines = vec![
        format!("id:          {}", dead.id),
        format!("at:          {} UTC", format_ms(id_ms(&dead.id))),
        format!("group:       {}", dead.group),
        format!("stream id:   {} (where it failed)", dead.source_id),
        format!("deliveries:  {}", dead.deliveries),
        format!("reason:      {}", dead.reason),
    ];
    match &shown.envelope {
        Some(envelope) => {
            let conversation = envelope.conversation.clone().unwrap_or_default();
            let sender = envelope.sender.clone().unwrap_or_default();
            lines.extend([
                format!(
                    "platform:    {} (account {})",
                    envelope.platform, envelope.bot_id
                ),
                format!(
                    "message:     {} ({})",
                    envelope.message_id, envelope.event_type
                ),
                format!(
                    "conversation: {} {}",
                    conversation
                        .kind()
                        .as_str_name()
                        .trim_start_matches("CONVERSATION_KIND_")
                        .to_lowercase(),
                    conversation.id
                ),
                format!("sender:      {} {}", sender.user_id, sender.display_name),
                format!("text:        {}", envelope.text),
            ]);
        }
        None => lines.push(format!(
            "payload:     {} bytes, not an envelope",
            dead.payload.len()
        )),
    }
    for line in lines {
        crate::cli_out::line(&line);
    }
    Ok(())
}

async fn all_ids(bus: &Arc<dyn Bus>) -> anyhow::Result<Vec<String>> {
    Ok(every_dead_letter(bus)
        .await?
        .into_iter()
        .map(|dead| dead.id)
        .collect())
}

async fn replay(
    bus: &Arc<dyn Bus>,
    config: &Config,
    ids: &[String],
    dry_run: bool,
) -> anyhow::Result<()> {
    if dry_run {
        for id in ids {
            match bus.dead_letter_by_id(id).await? {
                Some(dead) => crate::cli_out::line(&format!(
                    "would replay {id}: {}",
                    Shown::new(dead)
                        .envelope
                        .map(|e| e.text)
                        .unwrap_or_default()
                )),
                None => bail!("no dead letter `{id}`"),
            }
        }
        crate::cli_out::line(&format!("{} would be replayed (dry run)", ids.len()));
        return Ok(());
    }
    let (store, _) = crate::backends::connect_store(config)
        .await
        .context("the audit trail")?;
    let window = Duration::from_secs(config.core.ingress.dedupe_window_secs);
    let mut replayed = 0;
    for id in ids {
        match bus.replay(id, window).await? {
            Replayed::Appended(new_id) => {
                replayed += 1;
                crate::admin_cli::record(&*store, "dlq.replay", id).await?;
                crate::cli_out::line(&format!("replayed {id} as {new_id}"));
            }
            Replayed::AlreadyReplayed => {
                crate::cli_out::line(&format!("{id} was already replayed; not again"));
            }
            Replayed::Missing => bail!("no dead letter `{id}`"),
        }
    }
    crate::cli_out::line(&format!(
        "{replayed} replayed; replies already delivered for them are not sent again"
    ));
    Ok(())
}

async fn purge(
    bus: &Arc<dyn Bus>,
    config: &Config,
    older_than: &str,
    age: Duration,
) -> anyhow::Result<()> {
    let (store, _) = crate::backends::connect_store(config)
        .await
        .context("the audit trail")?;
    let before_ms = clawdbot_core::now_ms().saturating_sub(age.as_millis() as i64) as u64;
    let purged = bus.purge_dead_letters(before_ms).await?;
    crate::admin_cli::record(&*store, "dlq.purge", &format!("older than {older_than}")).await?;
    crate::cli_out::line(&format!(
        "{purged} dead letters older than {older_than} purged"
    ));
    Ok(())
}
