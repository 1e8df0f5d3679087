//! `clawdbot history show|export`: the message history read back from the store, one page at
//! a time, so neither command holds more than a page (or `show`'s `--limit` rows) in memory.

use std::collections::VecDeque;

use anyhow::bail;
use clawdbot_config::Config;
use clawdbot_store::{Direction, HistoryQuery, HistoryRecord, HistoryStore};
use serde_json::json;
use time::OffsetDateTime;

use crate::cli::HistoryCommand;
use crate::log_cli::{format_at, parse_span};

/// Rows per read.
const PAGE: i64 = 500;

pub async fn run(command: &HistoryCommand, config: &Config) -> anyhow::Result<()> {
    let (store, _) = crate::backends::connect_store(config).await?;
    match command {
        HistoryCommand::Show {
            conversation,
            platform,
            since,
            limit,
            grep,
            ..
        } => {
            if *limit < 1 {
                bail!("`--limit {limit}`: expected 1 or more");
            }
            let query = HistoryQuery {
                platform: platform.clone(),
                conversation_id: conversation.clone(),
                since: Some(OffsetDateTime::now_utc() - parse_span("--since", since)?),
                grep: grep.clone(),
                after: None,
                limit: PAGE,
            };
            show(store.as_ref(), query, *limit as usize).await
        }
        HistoryCommand::Export {
            since,
            format,
            conversation,
            platform,
            ..
        } => {
            if format != "jsonl" {
                bail!("`--format {format}`: the one format is `jsonl` (a JSON object per line)");
            }
            let query = HistoryQuery {
                platform: platform.clone(),
                conversation_id: conversation.clone(),
                since: Some(OffsetDateTime::now_utc() - parse_span("--since", since)?),
                grep: None,
                after: None,
                limit: PAGE,
            };
            each_page(store.as_ref(), query, |row| {
                crate::cli_out::line(&as_json(row).to_string());
            })
            .await
            .map(|_| ())
        }
    }
}

/// Prints the latest `limit` rows matching `query`, oldest first.
async fn show(store: &dyn HistoryStore, query: HistoryQuery, limit: usize) -> anyhow::Result<()> {
    let mut latest: VecDeque<HistoryRecord> = VecDeque::with_capacity(limit);
    let since = query.since;
    let total = each_page(store, query, |row| {
        if latest.len() == limit {
            latest.pop_front();
        }
        latest.push_back(row.clone());
    })
    .await?;
    if latest.is_empty() {
        let since = since.map(format_at).unwrap_or_default();
        crate::cli_out::say!("no messages recorded since {since} that match");
        return Ok(());
    }
    for row in &latest {
        print_row(row);
    }
    if total > latest.len() {
        crate::cli_out::say!(
            "({} earlier rows not shown: raise --limit, or narrow with --since / --grep)",
            total - latest.len()
        );
    }
    Ok(())
}

/// Calls `each` on every row matching `query`, page by page; returns how many there were.
async fn each_page(
    store: &dyn HistoryStore,
    mut query: HistoryQuery,
    mut each: impl FnMut(&HistoryRecord),
) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let page = store.history_page(&query).await?;
        total += page.len();
        page.iter().for_each(&mut each);
        match page.last() {
            Some(last) if page.len() as i64 == query.limit => {
                query.after = Some((last.created_at, last.id.clone()));
            }
            _ => return Ok(total),
        }
    }
}

fn print_row(row: &HistoryRecord) {
    let conversation = format!("{}:{}", row.conversation_kind, row.conversation_id);
    match row.direction {
        Direction::In => crate::cli_out::say!(
            "{}  in   {:<8} {:<24} {:<16} {}",
            format_at(row.created_at),
            row.platform,
            conversation,
            row.sender_id,
            row.text
        ),
        Direction::Out => crate::cli_out::say!(
            "{}  out  {:<8} {:<24} {:<16} {}{}",
            format_at(row.created_at),
            row.platform,
            conversation,
            format!("{} {}", row.skill, row.status).trim(),
            row.text,
            if row.status == "failed" {
                "  (not delivered)"
            } else {
                ""
            }
        ),
    }
}

/// One exported row: every column but the binary payload (the protobuf the row was made of).
fn as_json(row: &HistoryRecord) -> serde_json::Value {
    let at = row
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "id": row.id,
        "direction": row.direction.as_str(),
        "platform": row.platform,
        "bot_id": row.bot_id,
        "conversation_kind": row.conversation_kind,
        "conversation_id": row.conversation_id,
        "sender_id": row.sender_id,
        "platform_message_id": row.platform_message_id,
        "event_type": row.event_type,
        "skill": row.skill,
        "in_reply_to": row.in_reply_to,
        "status": row.status,
        "text": row.text,
        "created_at": at,
    })
}
