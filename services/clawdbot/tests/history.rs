//! History an operator can read: `clawdbot history show|export` against what a running
//! clawdbot recorded, and `history.retention` deleting what is older — on every backend,
//! MongoDB included (the echo round trip with its history there).

mod common;

use std::time::Duration;

use clawdbot_store::{Direction, HistoryRecord};
use common::{Backend, Clawdbot, Ports, Setup};

const WAIT: Duration = Duration::from_secs(15);

clawdbot_testkit::backend_suite!(Setup {
    cluster => Backend::Cluster,
    embedded => Backend::Embedded,
    mongodb => Backend::ClusterMongo,
    history_sink => Backend::ClusterSink,
}; cases; [
    history_show_and_export_read_back_what_was_said_and_answered,
    history_past_its_retention_is_deleted_at_start,
]);

/// Runs `clawdbot history <args> --config <config>`; returns (success, stdout, stderr).
fn history(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
        .arg("history")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

mod cases {
    use super::*;

    pub async fn history_show_and_export_read_back_what_was_said_and_answered(setup: Setup) {
        let ports = Ports::new();
        let config = setup.default_config(&ports);
        let _bot = Clawdbot::start(&["up"], &config, &ports).await;
        for (n, text) in ["/echo 早上好", "/echo second", "/echo THIRD"]
            .iter()
            .enumerate()
        {
            let n = n as i64 + 1;
            assert!(
                setup
                    .post_group_message(ports.ingress, 30003, n, text)
                    .await
                    .is_success()
            );
        }
        setup
            .post_group_message(ports.ingress, 40004, 9, "/echo elsewhere")
            .await;
        setup.mock.wait_for(4, WAIT).await;
        // History lags replies by the writer's linger: wait for all 8 rows.
        let deadline = tokio::time::Instant::now() + WAIT;
        while (setup.history("30003").await.len() < 6 || setup.history("40004").await.len() < 2)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let (ok, shown, err) = history(&config, &["show", "--conversation", "30003"]);
        assert!(ok, "{err}");
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 6, "3 in, 3 out, oldest first:\n{shown}");
        assert!(
            lines[0].contains(" in ") && lines[0].ends_with("/echo 早上好"),
            "{shown}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" out ") && l.ends_with("THIRD")),
            "{shown}"
        );
        assert!(!shown.contains("elsewhere"), "one conversation: {shown}");

        let (ok, found, err) = history(&config, &["show", "--grep", "third", "--limit", "1"]);
        assert!(ok, "{err}");
        assert_eq!(
            found.lines().next().map(|l| l.ends_with("THIRD")),
            Some(true),
            "{found}"
        );
        assert!(
            found.contains("1 earlier rows not shown"),
            "the in row is older: {found}"
        );

        let (ok, exported, err) =
            history(&config, &["export", "--since", "1h", "--format", "jsonl"]);
        assert!(ok, "{err}");
        let rows: Vec<serde_json::Value> = exported
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
            .collect();
        assert_eq!(rows.len(), 8, "{exported}");
        assert!(
            rows.iter()
                .all(|r| r["created_at"].is_string() && r["platform"] == "onebot")
        );
        assert_eq!(rows.iter().filter(|r| r["direction"] == "out").count(), 4);

        let (ok, _, err) = history(&config, &["export", "--since", "1h", "--format", "csv"]);
        assert!(
            !ok && err.contains("`--format csv`") && err.contains("jsonl"),
            "{err}"
        );
    }

    pub async fn history_past_its_retention_is_deleted_at_start(setup: Setup) {
        let ports = Ports::new();
        let old = time::OffsetDateTime::now_utc() - time::Duration::days(40);
        let row = |id: &str, at| HistoryRecord {
            id: id.into(),
            direction: Direction::In,
            platform: "onebot".into(),
            bot_id: "default".into(),
            conversation_kind: "group".into(),
            conversation_id: "50005".into(),
            sender_id: "1".into(),
            platform_message_id: id.into(),
            event_type: "message.group.normal".into(),
            skill: String::new(),
            in_reply_to: String::new(),
            status: String::new(),
            text: id.into(),
            payload: Vec::new(),
            created_at: at,
        };
        let store = setup.store().await;
        store
            .write_history(&[
                row("forty-days-old", old),
                row("today", time::OffsetDateTime::now_utc()),
            ])
            .await
            .expect("write");
        let config = setup.config(
            &setup.redis_url(),
            ports.egress,
            "worker:\n  block_ms: 200\nhistory:\n  retention: 30d\n",
        );
        let bot = Clawdbot::start(&["up"], &config, &ports).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let left = loop {
            let left: Vec<String> = setup
                .history("50005")
                .await
                .into_iter()
                .map(|r| r.id)
                .collect();
            if left.len() == 1 || tokio::time::Instant::now() > deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(left, ["today"]);
        // Logged once the delete has returned: a moment after the rows are gone.
        while !bot.logs().contains("history past retention deleted") {
            assert!(tokio::time::Instant::now() < deadline, "{}", bot.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let bad = setup.config(
            &setup.redis_url(),
            ports.egress,
            "history:\n  retention: forever\n",
        );
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .args(["config", "check"])
            .arg(&bad)
            .output()
            .expect("runs");
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{said}");
        assert!(
            said.contains("`history.retention`") && said.contains("`forever`"),
            "{said}"
        );
    }
}
