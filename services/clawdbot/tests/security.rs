//! Secrets at rest (`clawdbot security`): sealed in the store, rotated without downtime, and
//! issued API keys honoured by a running ingress. Real clawdbot processes, real Postgres.

mod common;

use clawdbot_store::{AuditStore, SecretStore};
use std::time::Duration;

use clawdbot_store::keyring::{Keyring, MasterKey};
use common::{Backend, Clawdbot, Ports, Setup};

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// Runs `clawdbot security ARGS --config CONFIG` with `env`, `stdin` piped in; returns
/// (success, stdout, stderr).
fn security(
    config: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
        .arg("security")
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("CLAWDBOT_MASTER_KEY")
        .env_remove("CLAWDBOT_MASTER_KEYS_PREVIOUS")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("clawdbot runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let output = child.wait_with_output().expect("clawdbot exits");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ring(current: &str, previous: &[&str]) -> Keyring {
    let parse = |k: &str| MasterKey::parse(k, "test").expect("test key");
    Keyring::new(parse(current), previous.iter().map(|k| parse(k)).collect())
}

#[tokio::test]
async fn rotate_keys_leaves_every_secret_readable_with_the_new_key_only() {
    let setup = Setup::new(Backend::Cluster).await;
    let config = setup.config(&setup.redis_url(), 1, "");
    let with_a = [("CLAWDBOT_MASTER_KEY", KEY_A)];
    let store = setup.postgres().store.clone();
    store.set_audit(true, 90).await.expect("audit on");
    let (ok, _, err) = security(
        &config,
        &["set", "wecom-secret"],
        &with_a,
        "corp-secret-value\n",
    );
    assert!(ok, "{err}");
    let (ok, out, err) = security(
        &config,
        &["issue-key", "notify", "--name", "hr"],
        &with_a,
        "",
    );
    assert!(ok, "{err}");
    let hr_key = out.trim().to_string();
    assert!(hr_key.starts_with("cbk_"), "{out}");

    // At rest: nothing in clear, each row names the key it is under.
    let rows = store.secrets().await.expect("rows");
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let sealed = String::from_utf8_lossy(&row.sealed);
        assert!(!sealed.contains("corp-secret-value") && !sealed.contains(&hr_key));
        assert_eq!(row.key_id, ring(KEY_A, &[]).current().id());
    }

    // Without the old key in the ring a rotation names what it cannot open and fails.
    let (ok, _, err) = security(
        &config,
        &["rotate-keys", "--all"],
        &[("CLAWDBOT_MASTER_KEY", KEY_B)],
        "",
    );
    assert!(!ok);
    assert!(
        err.contains("wecom-secret") && err.contains("CLAWDBOT_MASTER_KEYS_PREVIOUS"),
        "{err}"
    );

    let (ok, out, err) = security(
        &config,
        &["rotate-keys", "--all", "--grace", "1h"],
        &[
            ("CLAWDBOT_MASTER_KEY", KEY_B),
            ("CLAWDBOT_MASTER_KEYS_PREVIOUS", KEY_A),
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("2 secrets re-sealed"), "{out}");
    assert!(out.contains("1 API keys rotated"), "{out}");

    let rows = store.secrets().await.expect("rows");
    assert_eq!(
        rows.len(),
        3,
        "the new key, the old key in its grace, the value: {rows:?}"
    );
    let new_only = ring(KEY_B, &[]);
    let old_only = ring(KEY_A, &[]);
    let mut opened = Vec::new();
    for row in &rows {
        let plain = new_only
            .open(&row.name, &row.key_id, &row.sealed)
            .unwrap_or_else(|e| panic!("{} does not open with the new key: {e}", row.name));
        assert!(old_only.open(&row.name, &row.key_id, &row.sealed).is_err());
        opened.push((row.name.clone(), String::from_utf8(plain).expect("utf-8")));
    }
    let value = |name: &str| {
        opened
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect("present")
    };
    assert_eq!(value("wecom-secret"), "corp-secret-value");
    let new_key = value("notify/hr");
    assert!(new_key.starts_with("cbk_") && new_key != hr_key, "rotated");
    let kept = rows
        .iter()
        .find(|r| r.name.starts_with("notify/hr@"))
        .expect("old key kept for its grace");
    assert_eq!(value(&kept.name), hr_key);
    assert!(kept.expires_at.is_some());

    let (ok, out, err) = security(&config, &["list"], &[("CLAWDBOT_MASTER_KEY", KEY_B)], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("0 under an older key") && !out.contains('!'),
        "{out}"
    );

    let actions: Vec<String> = store
        .audit_records(50)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| format!("{} {}", r.action, r.target))
        .collect();
    for expected in [
        "secret.set wecom-secret",
        "api_key.issue notify/hr",
        "api_keys.rotate 1 keys",
    ] {
        assert!(
            actions.contains(&expected.to_string()),
            "{expected} in {actions:?}"
        );
    }
    assert!(
        actions.iter().any(|a| a.starts_with("keys.rotate_master ")),
        "{actions:?}"
    );
}

/// POSTs a notice with `key`; returns the status.
async fn notify(setup: &Setup, ports: &Ports, key: &str) -> u16 {
    let body =
        serde_json::json!({"text": "hello", "targets": [{"platform": "onebot", "group": "555"}]});
    setup
        .http
        .post(format!("http://127.0.0.1:{}/api/v1/notify", ports.ingress))
        .header("authorization", format!("Bearer {key}"))
        .json(&body)
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

/// Polls until `key` gets `status`, for up to 5 s (the ingress re-reads keys every 2 s).
async fn until_status(setup: &Setup, ports: &Ports, key: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = notify(setup, ports, key).await;
        if got == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{key}` still gets {got}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn issued_keys_and_store_secrets_reach_a_running_cluster_without_a_restart() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let env = [("CLAWDBOT_MASTER_KEY", KEY_A)];
    // The config's own notify key is a secret in the store, not in the file.
    let config = setup.config(
        "",
        ports.egress,
        "notify:\n  api_keys: [\"${secret:notify-config-key}\"]\n",
    );
    let (ok, _, err) = security(
        &config,
        &["set", "notify-config-key"],
        &env,
        "from-the-store-0123456789\n",
    );
    assert!(ok, "{err}");
    let bot = Clawdbot::start_with_env(&["up"], &config, &ports, &env).await;
    assert_eq!(
        notify(&setup, &ports, "from-the-store-0123456789").await,
        204
    );
    assert_eq!(notify(&setup, &ports, "cbk_not-issued").await, 401);

    let (ok, out, err) = security(&config, &["issue-key", "notify", "--name", "hr"], &env, "");
    assert!(ok, "{err}");
    let first = out.trim().to_string();
    until_status(&setup, &ports, &first, 204).await;

    let rotate = || {
        let (ok, out, err) = security(
            &config,
            &["rotate-keys", "--api-keys", "--grace", "1h"],
            &env,
            "",
        );
        assert!(ok, "{err}");
        printed_key(&out)
    };
    let second = rotate();
    // Rotated again at once (within the same second, as a script would): both earlier keys keep
    // their grace.
    let third = rotate();
    until_status(&setup, &ports, &third, 204).await;
    for (key, which) in [(&first, "first"), (&second, "second")] {
        assert_eq!(
            notify(&setup, &ports, key).await,
            204,
            "the {which} key's grace"
        );
    }

    let (ok, _, err) = security(&config, &["revoke", "notify/hr"], &env, "");
    assert!(ok, "{err}");
    until_status(&setup, &ports, &third, 401).await;
    let logs = bot.logs();
    assert!(
        !logs.contains(&second) && !logs.contains(&third) && !logs.contains("from-the-store"),
        "no key in the logs"
    );

    // A config naming a secret the store does not hold is refused, naming it.
    let missing = setup.config(
        "",
        ports.egress,
        "notify:\n  api_keys: [\"${secret:nope}\"]\n",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
        .args(["config", "check"])
        .arg(&missing)
        .env("CLAWDBOT_MASTER_KEY", KEY_A)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("notify.api_keys[0]") && err.contains("secret `nope` is not in the store"),
        "{err}"
    );
}

#[tokio::test]
async fn a_remote_skill_token_kept_in_the_store_is_sent_on_every_call() {
    use clawdbot_testkit::mock::skill::MockSkill;
    let setup = Setup::new(Backend::Embedded).await;
    let skill = MockSkill::start_requiring_token("weather-token-42").await;
    let ports = Ports::new();
    let env = [("CLAWDBOT_MASTER_KEY", KEY_B)];
    let extra = format!(
        "skills:\n  weather:\n    remote: \"{}\"\n    timeout_ms: 2000\n    token: \"${{secret:weather-token}}\"\n",
        skill.url()
    );
    let config = setup.config("", ports.egress, &extra);
    let (ok, _, err) = security(&config, &["set", "weather-token"], &env, "weather-token-42");
    assert!(ok, "{err}");
    let _bot = Clawdbot::start_with_env(&["up"], &config, &ports, &env).await;
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 1, "/weather Hangzhou")
            .await,
        204
    );
    let sent = setup.mock.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        sent[0].text(),
        "sunny in Hangzhou",
        "the skill accepted the token"
    );
    assert!(skill.calls() >= 1);
}

/// The API key a `security` command printed (`cbk_…`).
fn printed_key(out: &str) -> String {
    out.split_whitespace()
        .find(|word| word.starts_with("cbk_"))
        .expect("the new key is printed")
        .to_string()
}

/// `issue-key notify` says the key is accepted everywhere: so it is, with no `notify:` section
/// in the config (the notify API is served with its defaults), and a key never issued is 401.
#[tokio::test]
async fn an_issued_notify_key_works_without_a_notify_section() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let env = [("CLAWDBOT_MASTER_KEY", KEY_A)];
    let config = setup.default_config(&ports);
    assert!(
        !std::fs::read_to_string(&config)
            .expect("config")
            .contains("notify:"),
        "no notify section"
    );
    let _bot = Clawdbot::start_with_env(&["up"], &config, &ports, &env).await;
    assert_eq!(notify(&setup, &ports, "cbk_not-issued").await, 401);
    let (ok, out, err) = security(&config, &["issue-key", "notify", "--name", "ops"], &env, "");
    assert!(ok, "{err}");
    until_status(&setup, &ports, out.trim(), 204).await;
    let sent = setup.mock.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 1, "the notice went out: {sent:?}");
}
