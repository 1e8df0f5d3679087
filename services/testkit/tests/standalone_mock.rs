//! `clawdbot-mock` as an operator runs it: a process per platform, its `/config` pasted into
//! a real `clawdbot up`, an event injected over the control API, the echo read back from what
//! the mock received — and faults programmed over the same API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clawdbot_testkit::free_port;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(20);

fn mock_binary() -> &'static str {
    env!("CARGO_BIN_EXE_clawdbot-mock")
}

/// The clawdbot binary beside the mock (both come out of `cargo test --workspace`).
fn clawdbot_binary() -> PathBuf {
    let path = Path::new(mock_binary()).with_file_name("clawdbot");
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace) so it is built",
        path.display()
    );
    path
}

/// The mock's control API.
struct Control(String);

struct Running {
    control: Control,
    ingress: u16,
    _mock: Child,
    _clawdbot: Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _gone = std::fs::remove_dir_all(&self.dir);
    }
}

fn http() -> reqwest::Client {
    clawdbot_core::tls::http_client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Waits for `url` to answer 200.
async fn wait_ready(url: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(answer) = http().get(url).send().await
            && answer.status() == 200
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `clawdbot-mock <platform> <extra…>` and a `clawdbot up` with the config the mock
/// hands out (plus this test's ports and data directory).
async fn start(platform: &str, extra: &[&str]) -> Running {
    let (api, control, ingress, egress, metrics) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let mock = Command::new(mock_binary())
        .args([platform, "--listen", &format!("127.0.0.1:{api}")])
        .args(["--control", &format!("127.0.0.1:{control}")])
        .args(["--callback", &format!("http://127.0.0.1:{ingress}")])
        .args(extra)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clawdbot-mock");
    let control = format!("http://127.0.0.1:{control}");
    wait_ready(&format!("{control}/")).await;
    let config = http()
        .get(format!("{control}/config"))
        .send()
        .await
        .expect("GET /config")
        .text()
        .await
        .expect("config text");
    assert!(config.contains(&format!("127.0.0.1:{api}")), "{config}");
    let dir = std::env::temp_dir().join(format!(
        "clawdbot-mock-{}",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("clawdbot.yaml");
    let whole = format!(
        "{config}storage: {{ type: sqlite, path: \"{}\" }}\negress: {{ listen: \"127.0.0.1:{egress}\", endpoint: \"http://127.0.0.1:{egress}\" }}\nmetrics: {{ listen: \"127.0.0.1:{metrics}\" }}\ntelemetry: {{ log_format: text }}\n",
        dir.join("clawdbot.db").display()
    );
    std::fs::write(&path, whole).expect("write config");
    let clawdbot = Command::new(clawdbot_binary())
        .args(["up", "--config"])
        .arg(&path)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clawdbot up");
    wait_ready(&format!("http://127.0.0.1:{ingress}/readyz")).await;
    Running {
        control: Control(control),
        ingress,
        _mock: mock,
        _clawdbot: clawdbot,
        dir,
    }
}

impl Control {
    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let answer = http()
            .post(format!("{}{path}", self.0))
            .json(body)
            .send()
            .await
            .expect("control API answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or_default())
    }

    /// What the mock received, once it holds `count` or `within` passed.
    async fn received_within(&self, count: usize, within: Duration) -> Vec<Value> {
        let answer: Value = http()
            .get(format!(
                "{}/received?count={count}&timeout_ms={}",
                self.0,
                within.as_millis()
            ))
            .send()
            .await
            .expect("GET /received")
            .json()
            .await
            .expect("JSON");
        answer["received"].as_array().cloned().unwrap_or_default()
    }

    async fn received(&self, count: usize) -> Vec<Value> {
        self.received_within(count, WAIT).await
    }
}

/// Injects `/echo hello <platform>` and expects exactly that one answer.
async fn echoes(platform: &str, extra: &[&str]) {
    let running = start(platform, extra).await;
    let (status, answer) = running
        .control
        .post(
            "/inject",
            &json!({"text": format!("/echo hello {platform}"), "user": "20002", "group": "30003"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["delivered"] == "socket"
            || (200..300).contains(&answer["status"].as_u64().unwrap_or(0)),
        "clawdbot took the event: {answer}"
    );
    let received = running.control.received(1).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["text"], format!("hello {platform}"));
    let later = running
        .control
        .received_within(2, Duration::from_millis(500))
        .await;
    assert_eq!(later.len(), 1, "answered once: {later:?}");
    assert_ne!(running.ingress, 0);
}

#[tokio::test]
async fn onebot_mock_process_drives_a_real_clawdbot() {
    echoes("onebot", &["--secret", "s3cret", "--token", "t0ken"]).await;
}

#[tokio::test]
async fn wecom_mock_process_drives_a_real_clawdbot() {
    echoes("wecom", &[]).await;
}

#[tokio::test]
async fn dingtalk_mock_process_drives_a_real_clawdbot() {
    echoes("dingtalk", &[]).await;
}

#[tokio::test]
async fn qq_mock_process_drives_a_real_clawdbot() {
    echoes("qq", &[]).await;
}

#[tokio::test]
async fn programmed_failures_are_retried_and_the_answer_still_arrives_once() {
    let running = start("onebot", &[]).await;
    let (status, answer) = running
        .control
        .post(
            "/faults",
            &json!({"count": 2, "status": 503, "body": {"status": "failed", "retcode": 503}}),
        )
        .await;
    assert_eq!((status, answer["faults_pending"].as_u64()), (200, Some(2)));
    running
        .control
        .post(
            "/inject",
            &json!({"text": "/echo after two failures", "group": "30003"}),
        )
        .await;
    let received = running.control.received(1).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["text"], "after two failures");
    let state: Value = http()
        .get(&running.control.0)
        .send()
        .await
        .expect("GET /")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        state["faults_pending"], 0,
        "both failures were met: {state}"
    );
}

#[tokio::test]
async fn the_control_api_and_the_command_line_refuse_bad_input_by_name() {
    let running = start("qq", &[]).await;
    let (status, answer) = running.control.post("/inject", &json!({"user": "u"})).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("text"),
        "{answer}"
    );
    let (status, answer) = running
        .control
        .post("/faults", &json!({"status": 42}))
        .await;
    assert_eq!(status, 400, "{answer}");

    let refused = Command::new(mock_binary())
        .arg("telegram")
        .output()
        .await
        .expect("run clawdbot-mock");
    assert_eq!(refused.status.code(), Some(64));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("telegram") && said.contains("onebot, wecom, dingtalk, qq"),
        "{said}"
    );
}

/// DingTalk's official Stream SDK (`pip install dingtalk-stream`), code clawdbot did not write,
/// runs a bot against `clawdbot-mock dingtalk`: it opens the connection with the app's
/// credentials, takes the message the mock pushes over the Stream WebSocket, and answers
/// through the message's sessionWebhook — which the mock records.
#[tokio::test]
async fn dingtalks_official_stream_sdk_runs_a_bot_against_the_mock() {
    let (api, control) = (free_port(), free_port());
    let _mock = Command::new(mock_binary())
        .args(["dingtalk", "--listen", &format!("127.0.0.1:{api}")])
        .args(["--control", &format!("127.0.0.1:{control}")])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn clawdbot-mock");
    let control = Control(format!("http://127.0.0.1:{control}"));
    wait_ready(&format!("{}/", control.0)).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/dingtalk_stream_echo.py");
    let _sdk = Command::new("python3")
        .arg(&script)
        .env(
            "DINGTALK_OPENAPI_ENDPOINT",
            format!("http://127.0.0.1:{api}"),
        )
        .env("APP_KEY", "dingmockkey")
        .env("APP_SECRET", "mock-app-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs (the test command installs dingtalk-stream)");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state: Value = http()
            .get(&control.0)
            .send()
            .await
            .expect("GET /")
            .json()
            .await
            .expect("JSON");
        if state["connections"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the SDK never connected (is dingtalk-stream installed? {state})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, answer) = control
        .post(
            "/inject",
            &json!({"text": "hello sdk", "user": "zhangsan", "group": "cidG1"}),
        )
        .await;
    assert_eq!(
        (status, answer["delivered"].as_str()),
        (200, Some("socket")),
        "{answer}"
    );
    let received = control.received(1).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["text"], "sdk echo: hello sdk");
    assert!(
        received[0]["via"]
            .as_str()
            .is_some_and(|v| v.starts_with("session:")),
        "answered through the sessionWebhook: {received:?}"
    );
}
