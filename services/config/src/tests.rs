use std::collections::HashMap;

use super::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// A directory of one test's own, removed when dropped.
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _removed = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("clawdbot-config-{}-{nanos:x}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

const ISSUE_EXAMPLE: &str = r#"
onebot:
  self_id: 10001
  secret: "s3cr3t"
  access_token: "tok"
  api_root: "http://127.0.0.1:5700"
cluster:
  redis: "redis://127.0.0.1:6379/0"
storage:
  type: postgresql
  dsn: "postgres://postgres@127.0.0.1:5432/clawdbot"
  pool_size: 20
ingress: { listen: "0.0.0.0:8080" }
egress:  { listen: "0.0.0.0:6771", endpoint: "http://127.0.0.1:6771" }
metrics: { listen: "0.0.0.0:9091" }
"#;

#[test]
fn the_documented_example_loads() {
    let dir = temp_dir();
    let file = write(&dir, "clawdbot.yaml", ISSUE_EXAMPLE);
    let config = Config::load(&file, &HashMap::new()).expect("loads");
    let accounts = config
        .platforms
        .accounts::<clawdbot_platforms::onebot::OneBotConfig>("onebot");
    let account = accounts.first().expect("one account");
    assert_eq!(account.id, "default");
    assert_eq!(account.self_id, 10001);
    assert_eq!(account.secret.as_deref(), Some("s3cr3t"));
    assert!(matches!(
        config.core.storage,
        Some(StorageConfig::Postgresql { pool_size: 20, .. })
    ));
    assert_eq!(config.core.cluster.expect("cluster").key_prefix, "clawdbot");
}

#[test]
fn a_directory_is_merged_and_env_references_are_replaced() {
    let dir = temp_dir();
    write(
        &dir,
        "10-main.yaml",
        "cluster: { redis: \"redis://127.0.0.1:6379\" }\ningress: { listen: \"127.0.0.1:1\" }\n",
    );
    write(
        &dir,
        "20-onebot.yml",
        "onebot:\n  - id: ops\n    self_id: 1\n    secret: \"${OB_SECRET}\"\n    api_root: \"${OB_API:-http://127.0.0.1:5700}\"\n  - id: hr\n    self_id: 2\n    api_root: http://h\n",
    );
    write(
        &dir,
        "30-override.yaml",
        "ingress: { max_body_bytes: 2048 }\n",
    );
    write(&dir, "notes.txt", "not: yaml: at all");
    let env: HashMap<String, String> = [("OB_SECRET".to_string(), "123456".to_string())].into();
    let config = Config::load(&dir, &env).expect("loads");
    let accounts = config
        .platforms
        .accounts::<clawdbot_platforms::onebot::OneBotConfig>("onebot");
    assert_eq!(accounts.len(), 2);
    assert_eq!(
        accounts[0].secret.as_deref(),
        Some("123456"),
        "numeric secrets stay strings"
    );
    assert_eq!(accounts[0].api_root, "http://127.0.0.1:5700");
    assert_eq!(config.core.ingress.listen, "127.0.0.1:1");
    assert_eq!(config.core.ingress.max_body_bytes, 2048);
}

#[test]
fn every_problem_is_reported_at_once_with_its_key_path() {
    let value = serde_json::json!({
        "onebot": {"self_id": 0, "api_root": "ftp://x"},
        "ingress": {"listen": "nowhere"},
        "worker": {"batch_size": 0},
    });
    let error = Config::parse(value)
        .and_then(|c| c.validate().map(|()| c))
        .expect_err("invalid");
    let text = error.to_string();
    for expected in [
        "`onebot.self_id` must be the bot's QQ number, got `0`",
        "`onebot.api_root` must be an http:// or https:// URL, got `ftp://x`",
        "`ingress.listen` must be an address like `0.0.0.0:8080`, got `nowhere`",
        "`worker.batch_size` must be between 1 and 1000, got `0`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn unknown_keys_and_unset_variables_are_named() {
    let error = Config::parse(serde_json::json!({"onebt": {}})).expect_err("unknown section");
    assert!(
        error.to_string().contains("unknown section `onebt`"),
        "{error}"
    );
    let error =
        Config::parse(serde_json::json!({"ingress": {"listen": "0.0.0.0:1", "max_body": 1}}))
            .expect_err("unknown key");
    assert!(
        error.to_string().contains("`ingress.max_body`") || error.to_string().contains("max_body"),
        "{error}"
    );
    let dir = temp_dir();
    let file = write(
        &dir,
        "c.yaml",
        "onebot: { self_id: 1, api_root: \"${MISSING_API}\" }\n",
    );
    let error = Config::load(&file, &HashMap::new()).expect_err("unset variable");
    assert!(
        error
            .to_string()
            .contains("`onebot.api_root`: environment variable `MISSING_API` is not set"),
        "{error}"
    );
}

#[test]
fn a_typo_in_the_storage_type_lists_the_valid_ones() {
    let error = Config::parse(serde_json::json!({"storage": {"type": "postgres", "dsn": "x"}}))
        .expect_err("bad type");
    let text = error.to_string();
    assert!(
        text.contains("postgresql") && text.contains("sqlite"),
        "{text}"
    );
}

#[test]
fn a_wecom_app_in_its_own_file_of_the_directory_loads_with_its_secret_from_the_env() {
    let dir = temp_dir();
    write(
        &dir,
        "clawdbot.yaml",
        "ingress: { listen: \"127.0.0.1:1\" }\n",
    );
    write(
        &dir,
        "wechat.yaml",
        "wechat_enterprise:\n  corp_id: \"wwxxxxxxxxxxxxxx\"\n  secret: \"${WECOM_SECRET}\"\n  agent_id: 1000002\n  token: \"OPENCLAW\"\n  encoding_aes_key: \"jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC\"\n",
    );
    let env: HashMap<String, String> = [("WECOM_SECRET".to_string(), "s3".to_string())].into();
    let config = Config::load(&dir, &env).expect("loads");
    let apps = config
        .platforms
        .accounts::<clawdbot_platforms::wecom::WeComConfig>("wecom");
    let app = apps.first().expect("one app");
    assert_eq!(
        (app.id.as_str(), app.secret.as_str(), app.agent_id),
        ("default", "s3", 1_000_002)
    );

    write(
        &dir,
        "wechat.yaml",
        "wechat_enterprise:\n  corp_id: \"ww\"\n  secret: \"x\"\n  agent_id: 0\n  token: \"t\"\n  encoding_aes_key: \"short\"\n",
    );
    let problems = Config::load(&dir, &env).expect_err("invalid").to_string();
    for expected in [
        "`wechat_enterprise.agent_id` must be the app's AgentId, got `0`",
        "`wechat_enterprise.encoding_aes_key` must be 43 characters, got 5",
    ] {
        assert!(problems.contains(expected), "{problems}");
    }
}

/// The product description's own keys: `performance.io_timeout` and `batch.interval` in
/// milliseconds, `cluster.enabled` and `cluster.nodes` (accepted, and said to be unused).
#[test]
fn the_product_descriptions_keys_are_accepted_with_their_units() {
    let mut config = Config::parse(serde_json::json!({
        "cluster": {"enabled": true, "redis": "redis://10.0.0.5:6379", "nodes": ["10.0.0.1:6771", "10.0.0.2:6771"]},
        "performance": {"io_timeout": 5000, "batch": {"size": 100, "interval": 50}},
    }))
    .expect("parses");
    config.validate().expect("valid");
    config.core.apply_derived_settings();
    assert_eq!(config.core.performance.io_timeout_secs, Some(5), "5000 ms");
    assert_eq!(config.core.history.linger_ms, 50, "batch.interval in ms");
    assert_eq!(config.core.worker.batch_size, 100);
    let notes = config.core.notes();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("through Redis"), "{notes:?}");

    let mut off =
        Config::parse(serde_json::json!({"cluster": {"enabled": false}})).expect("parses");
    off.validate().expect("no redis needed when disabled");
    off.core.apply_derived_settings();
    assert!(off.core.cluster.is_none(), "embedded");

    let both = Config::parse(
        serde_json::json!({"performance": {"io_timeout": 5000, "io_timeout_secs": 5}}),
    )
    .expect("parses");
    let error = both.validate().expect_err("one of the two");
    assert!(error.to_string().contains("keep one"), "{error}");
}

/// Every unknown key of every section in one run, each with the nearest valid key: in a
/// platform's account and in the core sections alike.
#[test]
fn every_unknown_key_is_named_at_once_with_the_nearest_valid_key() {
    let error = Config::parse(serde_json::json!({
        "onebot": {"self_id": 1, "api_root": "http://127.0.0.1:5700", "acess_token": "t", "secrett": "s"},
        "worker": {"batch_sise": 10},
        "ingress": {"lisen": "0.0.0.0:8080"},
    }))
    .expect_err("unknown keys");
    let text = error.to_string();
    for expected in [
        "`onebot.acess_token`",
        "did you mean `access_token`",
        "`onebot.secrett`",
        "did you mean `secret`",
        "`worker.batch_sise`",
        "did you mean `batch_size`",
        "`ingress.lisen`",
        "did you mean `listen`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// A config file that does not name a listener keeps it on loopback, as `clawdbot up` without
/// a file does: writing a config never opens a port to the network by itself.
#[test]
fn listeners_stay_on_loopback_unless_the_config_opens_them() {
    let config = Config::parse(serde_json::json!({"storage": {"type": "sqlite", "path": "x.db"}}))
        .expect("valid");
    assert_eq!(config.core.ingress.listen, "127.0.0.1:8080");
    assert_eq!(config.core.egress.listen, "127.0.0.1:6771");
    assert_eq!(config.core.metrics.listen, "127.0.0.1:9091");
    let opened =
        Config::parse(serde_json::json!({"ingress": {"listen": "0.0.0.0:8080"}})).expect("valid");
    assert_eq!(opened.core.ingress.listen, "0.0.0.0:8080");
}

/// The description's MongoDB config, verbatim, is accepted; in a cluster it must say where the
/// relational concerns live, and the error says why.
#[test]
fn the_description_mongodb_storage_is_accepted_and_a_cluster_names_its_control_store() {
    let verbatim = serde_json::json!({"storage": {
        "type": "mongodb",
        "uri": "mongodb://user:pass@mongo1:27017,mongo2:27017/clawdbot?replicaSet=rs0",
        "write_concern": "majority",
    }});
    let checked =
        |value: serde_json::Value| Config::parse(value).and_then(|c| c.validate().map(|()| c));
    let config = checked(verbatim.clone()).expect("valid on one machine");
    assert!(
        config
            .core
            .notes()
            .iter()
            .any(|n| n.contains("history goes to MongoDB") && n.contains("./clawdbot.db")),
        "config check says where each concern goes: {:?}",
        config.core.notes()
    );
    assert!(matches!(
        config.core.storage,
        Some(StorageConfig::Mongodb { ref write_concern, .. }) if write_concern == "majority"
    ));
    let mut clustered = verbatim;
    clustered["cluster"] = serde_json::json!({"redis": "redis://r:6379"});
    let problems = checked(clustered.clone())
        .expect_err("no control store")
        .problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`storage.control`") && p.contains("postgresql")),
        "{problems:?}"
    );
    clustered["storage"]["control"] =
        serde_json::json!({"type": "postgresql", "dsn": "postgres://p/db"});
    checked(clustered.clone()).expect("with a Postgres control store");
    clustered["storage"]["uri"] = "mysql://x".into();
    let problems = checked(clustered).expect_err("not mongodb").problems;
    assert!(
        problems.iter().any(|p| p.contains("`storage.uri`")),
        "{problems:?}"
    );
}

/// Unsigned skills: accepted on one machine unless refused, refused in a cluster unless
/// allowed; the config remembers when one machine is the only reason (said at load).
#[test]
fn unsigned_skills_run_on_one_machine_and_not_in_a_cluster_unless_the_config_says() {
    let derived = |value: serde_json::Value| {
        let mut config = Config::parse(value).expect("parses");
        config.core.apply_derived_settings();
        config.core.worker.wasm
    };
    let local = Config::embedded().core.worker.wasm;
    assert!(local.allows_unsigned() && local.unsigned_by_default);
    let cluster = derived(serde_json::json!({"cluster": {"redis": "redis://r:6379"}}));
    assert!(!cluster.allows_unsigned() && !cluster.unsigned_by_default);
    let refused = derived(serde_json::json!({"worker": {"wasm": {"allow_unsigned": false}}}));
    assert!(!refused.allows_unsigned());
    let allowed = derived(serde_json::json!({
        "cluster": {"redis": "redis://r:6379"},
        "worker": {"wasm": {"allow_unsigned": true}},
    }));
    assert!(allowed.allows_unsigned() && !allowed.unsigned_by_default);
}

/// docs/config.md is what the code says: regenerate it with
/// `cargo run -- config reference > docs/config.md` after changing a config type.
#[test]
fn the_checked_in_config_reference_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == crate::reference::markdown(),
        "docs/config.md is stale: run `cargo run -- config reference > docs/config.md`"
    );
}

/// Every key says what it is (its doc comment), so the reference has no blank line.
#[test]
fn every_config_key_has_a_description() {
    assert_eq!(crate::reference::undocumented_keys(), Vec::<String>::new());
}

/// `storage: {type: custom}`: history on a sink of one's own, checked like MongoDB's split.
#[test]
fn a_custom_history_sink_needs_an_http_endpoint_and_a_shared_control_store_in_a_cluster() {
    let problems = |value: serde_json::Value| {
        Config::parse(value)
            .expect("parses")
            .validate()
            .err()
            .map(|e| e.problems)
            .unwrap_or_default()
    };
    let good = problems(serde_json::json!({
        "cluster": {"redis": "redis://r:6379"},
        "storage": {"type": "custom", "endpoint": "http://sink:50061",
                    "control": {"type": "postgresql", "dsn": "postgres://p/db"}},
    }));
    assert_eq!(good, Vec::<String>::new());
    let bad = problems(serde_json::json!({
        "cluster": {"redis": "redis://r:6379"},
        "storage": {"type": "custom", "endpoint": "sink:50061"},
    }));
    assert!(
        bad.iter()
            .any(|p| p.contains("`storage.endpoint` must be the history sink's http://")),
        "{bad:?}"
    );
    assert!(
        bad.iter().any(|p| p.contains("`storage.control`")),
        "{bad:?}"
    );
}
