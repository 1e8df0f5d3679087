//! `clawdbot dlq` as an operator runs it against a cluster: list and show a message the
//! workers gave up on, replay it (answered once, audited), purge.

mod common;

use std::time::Duration;

use clawdbot_bus::{Stream, Streams};
use common::{Backend, Clawdbot, Ports, Setup};

const WAIT: Duration = Duration::from_secs(15);

/// Runs `clawdbot <args> --config <config>`; returns (success, stdout + stderr).
fn cli(args: &[&str], config: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("CLAWDBOT_LOG", "error")
        .output()
        .expect("clawdbot runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn a_dead_letter_is_listed_shown_replayed_once_and_purged() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.default_config(&ports);
    let (ok, out) = cli(&["admin", "audit", "enable"], &config);
    assert!(ok, "{out}");

    // A message that a worker gave up on (here by hand: a consumer that dead-letters it).
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 31, 1, "/echo revived")
            .await,
        204
    );
    let bus = &setup.redis().bus;
    bus.ensure_group(Stream::Inbound, clawdbot_bus::SKILLS_GROUP)
        .await
        .expect("group");
    let mut consumer = bus
        .consumer(Stream::Inbound, clawdbot_bus::SKILLS_GROUP, "gave-up")
        .await
        .expect("consumer");
    let entries = consumer
        .read(10, Duration::from_secs(2))
        .await
        .expect("read");
    assert_eq!(entries.len(), 1);
    bus.dead_letter(
        Stream::Inbound,
        clawdbot_bus::SKILLS_GROUP,
        &entries[0],
        "skill `echo` failed: test",
    )
    .await
    .expect("dead letter");

    let (ok, listed) = cli(
        &["dlq", "list", "--since", "1h", "--platform", "onebot"],
        &config,
    );
    assert!(ok, "{listed}");
    assert!(listed.contains("skill `echo` failed: test"), "{listed}");
    assert!(listed.contains("1 dead letters"), "{listed}");
    let id = listed
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().next())
        .expect("an id")
        .to_string();
    let (ok, other_platform) = cli(&["dlq", "list", "--platform", "wecom"], &config);
    assert!(
        ok && other_platform.contains("0 dead letters"),
        "{other_platform}"
    );

    let (ok, shown) = cli(&["dlq", "show", &id], &config);
    assert!(ok, "{shown}");
    for expected in [
        "/echo revived",
        "group 31",
        "skill `echo` failed: test",
        "onebot",
    ] {
        assert!(
            shown.contains(expected),
            "`{expected}` missing from:\n{shown}"
        );
    }

    let (ok, dry) = cli(&["dlq", "replay", &id, "--dry-run"], &config);
    assert!(ok && dry.contains("would replay"), "{dry}");
    assert_eq!(
        bus.stats(Stream::Dead).await.expect("stats").length,
        1,
        "a dry run changes nothing"
    );

    // Workers and egress up: the replayed message is answered, once.
    let _worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let (ok, replayed) = cli(&["dlq", "replay", &id], &config);
    assert!(ok && replayed.contains("1 replayed"), "{replayed}");
    let sent = setup.mock.wait_for(1, WAIT).await;
    assert_eq!(sent.first().map(|m| m.text()), Some("revived".to_string()));
    let (ok, again) = cli(&["dlq", "replay", &id], &config);
    assert!(!ok, "replaying a replayed dead letter fails: {again}");
    assert!(again.contains(&format!("no dead letter `{id}`")), "{again}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.mock.sent_count(), 1, "answered once");

    let (ok, audit) = cli(&["admin", "audit", "show"], &config);
    assert!(ok && audit.contains("dlq.replay"), "{audit}");

    // Purge: a fresh dead letter survives a purge of older ones, then goes with `0s`.
    consumer_dead_letters_one_more(&setup).await;
    let (ok, kept) = cli(&["dlq", "purge", "--older-than", "1h"], &config);
    assert!(
        ok && kept.contains("0 dead letters older than 1h purged"),
        "{kept}"
    );
    let (ok, purged) = cli(&["dlq", "purge", "--older-than", "0s"], &config);
    assert!(ok && purged.contains("1 dead letters"), "{purged}");
}

async fn consumer_dead_letters_one_more(setup: &Setup) {
    let bus = &setup.redis().bus;
    bus.ensure_group(Stream::Inbound, "purge-test")
        .await
        .expect("group");
    let mut consumer = bus
        .consumer(Stream::Inbound, "purge-test", "c")
        .await
        .expect("consumer");
    let entries = consumer
        .read(1, Duration::from_secs(1))
        .await
        .expect("read");
    bus.dead_letter(Stream::Inbound, "purge-test", &entries[0], "for the purge")
        .await
        .expect("dead letter");
}

#[test]
fn dlq_without_a_cluster_says_where_the_dead_letters_are() {
    let config = std::env::temp_dir().join(format!(
        "clawdbot-dlq-{}.yaml",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::write(&config, "storage: { type: sqlite, path: /tmp/x.db }\n").expect("config");
    let (ok, out) = cli(&["dlq", "list"], &config);
    assert!(!ok, "{out}");
    assert!(out.contains("`cluster.redis`"), "{out}");
    let _removed = std::fs::remove_file(config);
}
