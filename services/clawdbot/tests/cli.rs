//! The binary's answers to bad input: a bad config and a taken port are named, before serving.

use std::process::Command;

fn clawdbot() -> Command {
    Command::new(env!("CARGO_BIN_EXE_clawdbot"))
}

fn temp_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "clawdbot-cli-{}.yaml",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn an_invalid_config_exits_64_naming_every_key() {
    let config = temp_config(
        "onebot: { self_id: 1, api_root: \"ftp://x\" }\nworker: { batch_size: 0 }\ningress: { listen: nowhere }\n",
    );
    for args in [vec!["config", "check"], vec!["up", "--config"]] {
        let output = clawdbot().args(&args).arg(&config).output().expect("runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for key in [
            "`onebot.api_root`",
            "`worker.batch_size`",
            "`ingress.listen`",
        ] {
            assert!(
                stderr.contains(key),
                "{args:?}: {key} missing from:\n{stderr}"
            );
        }
    }
    let _removed = std::fs::remove_file(config);
}

#[test]
fn a_valid_config_checks_ok() {
    let config = temp_config(
        "onebot: { self_id: 1, api_root: \"http://127.0.0.1:5700\" }\ncluster: { redis: \"redis://127.0.0.1:6379\" }\n",
    );
    let output = clawdbot()
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _removed = std::fs::remove_file(config);
}

#[test]
fn a_port_already_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let config = temp_config(
        "onebot: { self_id: 1, api_root: \"http://127.0.0.1:5700\" }\ncluster: { redis: \"redis://127.0.0.1:6379\" }\n",
    );
    let output = clawdbot()
        .args([
            "ingress",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("ingress.listen"),
        "{stderr}"
    );
    let _removed = std::fs::remove_file(config);
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_not_with_a_panic() {
    let dir = std::env::temp_dir().join(format!(
        "clawdbot-pipe-{}",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("clawdbot.yaml");
    std::fs::write(
        &config,
        format!(
            "storage: {{ type: sqlite, path: \"{}\" }}\n",
            dir.join("c.db").display()
        ),
    )
    .expect("config");
    // `clawdbot admin audit show | head -0`: the reader is gone before the first line.
    let mut child = clawdbot()
        .args(["admin", "audit", "show", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _removed = std::fs::remove_dir_all(dir);
}
