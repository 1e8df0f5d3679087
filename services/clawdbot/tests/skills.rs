//! Skills and permissions end to end: rules reloaded from a permissions file, rate limits held
//! across worker processes, skills switched off cluster-wide from the CLI, `help` showing only
//! what the asker may use.

mod common;

use std::time::Duration;

use common::{Backend, Clawdbot, Ports, Setup};

const WAIT: Duration = Duration::from_secs(10);

/// Splits a setup's config into a directory: the main file plus `permissions.yaml`.
fn config_dir(setup: &Setup, ports: &Ports, permissions: &str) -> std::path::PathBuf {
    let file = setup.default_config(ports);
    let dir = setup
        .dir
        .join(format!("config-{}", clawdbot_testkit::random_suffix()));
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::rename(&file, dir.join("10-main.yaml")).expect("move main config");
    std::fs::write(dir.join("permissions.yaml"), permissions).expect("permissions");
    dir
}

/// Waits until the mock has received a message with `text`, or `WAIT` passed.
async fn wait_for_text(setup: &Setup, text: &str) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if setup.mock.sent().iter().any(|m| m.text() == text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn count_text(setup: &Setup, text: &str) -> usize {
    setup
        .mock
        .sent()
        .iter()
        .filter(|m| m.text() == text)
        .count()
}

#[tokio::test]
async fn permissions_reload_on_change_and_a_broken_file_keeps_the_old_rules() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let dir = config_dir(&setup, &ports, "skills:\n  echo:\n    deny_users: [42]\n");
    let bot = Clawdbot::start(&["up"], &dir, &ports).await;

    // 42 is denied; 43 is not. 43's echo arriving proves 42's was handled (and refused).
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 1, 42, 1, "/echo from 42")
            .await,
        204
    );
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 1, 43, 2, "/echo from 43")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "from 43").await);
    assert_eq!(count_text(&setup, "from 42"), 0, "denied by deny_users");

    // A broken file: rejected, old rules kept.
    std::fs::write(
        dir.join("permissions.yaml"),
        "skills:\n  echo:\n    rate_limit: lots\n",
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(
        bot.logs().contains("config change rejected"),
        "{}",
        bot.logs()
    );
    assert!(
        bot.logs().contains("skills.echo.rate_limit"),
        "the log names the key: {}",
        bot.logs()
    );
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 1, 42, 3, "/echo still 42")
            .await,
        204
    );
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 1, 43, 4, "/echo still 43")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "still 43").await);
    assert_eq!(
        count_text(&setup, "still 42"),
        0,
        "the old rules are still in force"
    );

    // A good file: applied without a restart.
    std::fs::write(
        dir.join("permissions.yaml"),
        "skills:\n  echo:\n    allow_users: [42]\n",
    )
    .expect("write");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 1, 42, 5, "/echo now 42")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "now 42").await, "{}", bot.logs());
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 1, 43, 6, "/echo now 43")
            .await,
        204
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_text(&setup, "now 43"), 0, "43 is not in allow_users");
}

#[tokio::test]
async fn a_rate_limit_holds_at_exactly_n_per_window_across_two_worker_processes() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.config(
        &setup.redis_url(),
        ports.egress,
        "skills:\n  echo:\n    rate_limit: 3/60s\n    on_rate_limit: silent\nworker:\n  block_ms: 100\n",
    );
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _w1 = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let _w2 = Clawdbot::start(&["worker"], &config, &Ports::new()).await;

    let texts: Vec<String> = (0..12).map(|id| format!("/echo r{id}")).collect();
    let posts = texts
        .iter()
        .enumerate()
        .map(|(id, text)| setup.post_group_message_from(ports.ingress, 9, 42, id as i64, text));
    assert!(
        futures::future::join_all(posts)
            .await
            .iter()
            .all(|s| *s == 204)
    );
    // Another user has their own budget; their echo arriving means the 12 were handled.
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 9, 43, 100, "/echo other user")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "other user").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from_42 = setup
        .mock
        .sent()
        .iter()
        .filter(|m| m.text().starts_with('r'))
        .count();
    assert_eq!(
        from_42,
        3,
        "exactly the limit got through: {:?}",
        setup
            .mock
            .sent()
            .iter()
            .map(|m| m.text())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_user_over_the_limit_gets_a_notice_when_configured() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let config = setup.config(
        "",
        ports.egress,
        "skills:\n  echo:\n    rate_limit: 1/60s\n",
    );
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 1, "/echo first")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "first").await);
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 2, "/echo second")
            .await,
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while setup.mock.sent_count() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<String> = setup.mock.sent().iter().map(|m| m.text()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("limited to 1 uses per 60 s"), "{texts:?}");
}

#[tokio::test]
async fn disabling_a_skill_from_the_cli_stops_it_on_every_worker_within_a_second() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.default_config(&ports);
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _w1 = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let _w2 = Clawdbot::start(&["worker"], &config, &Ports::new()).await;

    assert_eq!(
        setup
            .post_group_message(ports.ingress, 5, 1, "/echo before")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "before").await);

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("cli runs")
    };
    let disabled = cli(&["skill", "disable", "echo"]);
    assert!(
        disabled.status.success(),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for id in 2..8 {
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 5, id, &format!("/echo off{id}"))
                .await,
            204
        );
    }
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 5, 50, "/help")
            .await,
        204
    );
    let help = loop {
        if let Some(help) = setup
            .mock
            .sent()
            .iter()
            .map(|m| m.text())
            .find(|t| t.starts_with("What you can use"))
        {
            break help;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!help.contains("/echo"), "help no longer lists echo: {help}");
    assert_eq!(
        setup
            .mock
            .sent()
            .iter()
            .filter(|m| m.text().starts_with("off"))
            .count(),
        0,
        "no worker echoes"
    );

    let listed = cli(&["skill", "list"]);
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("echo") && l.contains(" no ")),
        "{listing}"
    );

    let enabled = cli(&["skill", "enable", "echo"]);
    assert!(enabled.status.success());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 5, 99, "/echo back")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "back").await);
    let unknown = cli(&["skill", "disable", "ehco"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no skill named `ehco`"));
}

#[tokio::test]
async fn help_lists_only_what_the_asker_may_use() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let config = setup.config("", ports.egress, "skills:\n  echo:\n    allow_users: [7]\n");
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 1, "/help")
            .await,
        204
    );
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 7, 2, "/help")
            .await,
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while setup.mock.sent_count() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let texts: Vec<String> = setup.mock.sent().iter().map(|m| m.text()).collect();
    assert_eq!(
        texts.iter().filter(|t| t.contains("/echo")).count(),
        1,
        "only user 7 sees echo: {texts:?}"
    );
    assert!(texts.iter().all(|t| t.contains("/help")), "{texts:?}");
}

#[tokio::test]
async fn the_faq_and_http_skills_answer_from_their_config_and_upstream() {
    use clawdbot_testkit::mock::service::MockService;
    let setup = Setup::new(Backend::Embedded).await;
    let service = MockService::start(r#"{"reply":"ticket #7 is open"}"#).await;
    let ports = Ports::new();
    let extra = format!(
        "skills:\n  faq:\n    entries:\n      - keywords: [price]\n        answer: \"from 99 a month\"\n  http:\n    endpoint: \"{}\"\n    commands: [\"/ticket\"]\n    timeout_ms: 500\n",
        service.url("/bot")
    );
    let config = setup.config("", ports.egress, &extra);
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;

    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 1, "what is the price?")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "from 99 a month").await);
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 2, "/ticket 7")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "ticket #7 is open").await);
    let request = service.received().pop().expect("the service was called");
    assert_eq!(request.body["text"], "/ticket 7");
    assert_eq!(request.body["sender"]["user_id"], "42");
    assert_eq!(
        request.body["conversation"],
        serde_json::json!({"kind": "group", "id": "3"})
    );
    assert_eq!(
        request.request_id.as_deref(),
        request.body["id"].as_str(),
        "X-Request-ID is the envelope id"
    );

    // A service that does not answer in time: the user gets an apology, not silence.
    service.delay(Duration::from_secs(2));
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 3, "/ticket 8")
            .await,
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !setup
        .mock
        .sent()
        .iter()
        .any(|m| m.text().contains("not answering"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no apology");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_remote_skill_answers_over_grpc_and_a_hanging_one_gets_an_apology_not_a_loss() {
    use clawdbot_testkit::mock::skill::MockSkill;
    let setup = Setup::new(Backend::Embedded).await;
    let skill = MockSkill::start().await;
    let ports = Ports::new();
    let extra = format!(
        "skills:\n  weather:\n    remote: \"{}\"\n    timeout_ms: 300\n",
        skill.url()
    );
    let config = setup.config("", ports.egress, &extra);
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;

    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 1, "/weather Hangzhou")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "sunny in Hangzhou").await);
    let sent = setup.mock.sent();
    assert_eq!(
        sent[0].group_id,
        Some(3),
        "the worker addressed the reply to the conversation"
    );

    skill.hang();
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 2, "/weather Beijing")
            .await,
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !setup
        .mock
        .sent()
        .iter()
        .any(|m| m.text().contains("weather is not available"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no apology after the timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while !setup
        .history("3")
        .await
        .iter()
        .any(|r| r.text == "/weather Beijing")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message itself is recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(skill.calls(), 2);

    // `help` lists the remote skill with the description it gave.
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 3, "/help")
            .await,
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(help) = setup
            .mock
            .sent()
            .iter()
            .map(|m| m.text())
            .find(|t| t.starts_with("What you can use"))
        {
            assert!(help.contains("/weather <city>: today's weather"), "{help}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no help");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Alertmanager's webhook body (v4) for one firing alert of team ops.
const ALERT: &str = r#"{"receiver":"clawdbot","status":"firing","version":"4","groupKey":"{}:{alertname=\"DiskFull\"}",
"groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","severity":"warning","team":"ops"},
"commonAnnotations":{"summary":"disk 95% full"},"externalURL":"http://alertmanager:9093",
"alerts":[{"status":"firing","labels":{"alertname":"DiskFull","instance":"db-1","team":"ops"},"annotations":{"summary":"disk 95% full"},
"startsAt":"2026-11-25T08:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f1"}]}"#;

#[tokio::test]
async fn alertmanager_alerts_are_forwarded_to_the_routed_groups_once() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let extra = "alertmanager:\n  token: \"am-token\"\nskills:\n  alert_forward:\n    routes:\n      - match: { team: ops }\n        targets: [{ platform: onebot, group: \"987654\" }]\n";
    let config = setup.config("", ports.egress, extra);
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    let url = format!(
        "http://127.0.0.1:{}/clawdbot/alertmanager/callback",
        ports.ingress
    );
    let post = |token: Option<&'static str>| {
        let mut request = setup
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(ALERT);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(post(None).await.expect("answer").status(), 401);
    assert_eq!(post(Some("wrong")).await.expect("answer").status(), 401);
    assert_eq!(post(Some("am-token")).await.expect("answer").status(), 204);
    assert_eq!(
        post(Some("am-token")).await.expect("answer").status(),
        204,
        "Alertmanager's retry"
    );
    let sent = setup.mock.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.mock.sent_count(), 1, "forwarded once: {sent:?}");
    assert_eq!(sent[0].group_id, Some(987654));
    let text = sent[0].text();
    assert!(
        text.starts_with("🔥 [FIRING:1] DiskFull") && text.contains("db-1: disk 95% full"),
        "{text}"
    );
}

#[tokio::test]
async fn the_notify_api_sends_templated_notices_to_users_and_groups_once() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let extra = "notify:\n  api_keys: [\"hr-key-0123456789abcdef\"]\nskills:\n  notify:\n    templates:\n      attendance: \"Hi {name}, please clock in for {date}.\"\n";
    let config = setup.config("", ports.egress, extra);
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    let url = format!("http://127.0.0.1:{}/api/v1/notify", ports.ingress);
    let body = serde_json::json!({
        "id": "att-2026-11-25",
        "template": "attendance",
        "params": {"name": "Alice", "date": "Nov 25"},
        "targets": [{"platform": "onebot", "group": "555"}, {"platform": "onebot", "user": "42"}],
    });
    let send = |key: &'static str, body: serde_json::Value| {
        setup
            .http
            .post(&url)
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    assert_eq!(
        send("wrong-key-0123456789", body.clone())
            .await
            .expect("answer")
            .status(),
        401
    );
    assert_eq!(
        send("hr-key-0123456789abcdef", body.clone())
            .await
            .expect("answer")
            .status(),
        204
    );
    assert_eq!(
        send("hr-key-0123456789abcdef", body.clone())
            .await
            .expect("answer")
            .status(),
        204,
        "a retry"
    );
    let bad = serde_json::json!({"text": "x", "template": "attendance", "targets": []});
    let refused = send("hr-key-0123456789abcdef", bad).await.expect("answer");
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .expect("reason")
            .contains("exactly one of `template` or `text`")
    );

    let sent = setup.mock.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(setup.mock.sent_count(), 2, "each target once: {sent:?}");
    assert!(
        sent.iter()
            .all(|m| m.text() == "Hi Alice, please clock in for Nov 25.")
    );
    assert!(
        sent.iter()
            .any(|m| m.action == "send_group_msg" && m.group_id == Some(555))
    );
    assert!(
        sent.iter()
            .any(|m| m.action == "send_private_msg" && m.user_id == Some(42))
    );
}

#[tokio::test]
async fn the_ai_skill_asks_an_openai_compatible_endpoint_with_conversation_memory() {
    use clawdbot_testkit::mock::service::MockService;
    let setup = Setup::new(Backend::Embedded).await;
    let llm = MockService::start(r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}]}"#).await;
    let ports = Ports::new();
    let extra = format!(
        "history:\n  linger_ms: 0\nskills:\n  ai:\n    kind: openai\n    endpoint: \"{}\"\n    model: \"test-model\"\n    api_key: \"sk-test\"\n    system_prompt: \"Be brief.\"\n",
        llm.url("/v1/chat/completions")
    );
    let config = setup.config("", ports.egress, &extra);
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;

    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 8, 42, 1, "/ai capital of France?")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "Paris.").await);
    // Let history catch up, then ask again: the first turn goes along.
    let deadline = tokio::time::Instant::now() + WAIT;
    while setup.history("8").await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "history");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 8, 42, 2, "/ai and of Italy?")
            .await,
        204
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while llm.received().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "second call");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let second = &llm.received()[1].body;
    assert_eq!(second["model"], "test-model");
    let messages: Vec<(String, String)> = second["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        messages.first(),
        Some(&("system".to_string(), "Be brief.".to_string()))
    );
    assert!(
        messages.contains(&("user".to_string(), "/ai capital of France?".to_string())),
        "{messages:?}"
    );
    assert!(
        messages.contains(&("assistant".to_string(), "Paris.".to_string())),
        "{messages:?}"
    );
    assert_eq!(
        messages.last(),
        Some(&("user".to_string(), "and of Italy?".to_string()))
    );
}

#[tokio::test]
async fn the_ai_skill_reads_tensorflow_serving_predictions() {
    use clawdbot_testkit::mock::service::MockService;
    let setup = Setup::new(Backend::Embedded).await;
    let serving =
        MockService::start(r#"{"predictions": [{"text": "positive", "score": 0.97}]}"#).await;
    let ports = Ports::new();
    let extra = format!(
        "skills:\n  ai:\n    kind: tfserving\n    endpoint: \"{}\"\n",
        serving.url("/v1/models/sentiment:predict")
    );
    let config = setup.config("", ports.egress, &extra);
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 8, 42, 1, "/ai I love this product")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "positive").await);
    assert_eq!(
        serving.received()[0].body,
        serde_json::json!({"instances": [{"text": "I love this product"}]})
    );
}

#[tokio::test]
async fn skill_check_reports_remote_skills_that_do_not_answer() {
    use clawdbot_testkit::mock::skill::MockSkill;
    let setup = Setup::new(Backend::Embedded).await;
    let skill = MockSkill::start().await;
    let ports = Ports::new();
    let check = |extra: String| {
        let config = setup.config("", ports.egress, &extra);
        tokio::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .args(["skill", "check", "--config"])
            .arg(config)
            .output()
    };
    let good = check(format!(
        "skills:\n  weather:\n    remote: \"{}\"\n",
        skill.url()
    ))
    .await
    .expect("runs");
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(
        good.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        stdout.contains("ok    weather") && stdout.contains("version 2.1.0"),
        "{stdout}"
    );
    let dead = format!("http://127.0.0.1:{}", clawdbot_testkit::free_port());
    let bad = check(format!("skills:\n  weather:\n    remote: \"{dead}\"\n"))
        .await
        .expect("runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAIL  weather"));
    let broken = check("skills:\n  faq:\n    entries: [{answer: x}]\n".to_string())
        .await
        .expect("runs");
    assert_eq!(broken.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("`skills.faq.entries[0]` needs"));
}

#[tokio::test]
async fn a_skill_built_and_loaded_on_a_running_cluster_is_served_within_a_second() {
    use clawdbot_testkit::mock::service::MockService;
    use clawdbot_testkit::mock::skill::MockSkill;
    let setup = Setup::new(Backend::Cluster).await;
    let skill = MockSkill::start().await;
    let index = MockService::start(r#"[{"name":"weather","version":"2.1.0","description":"today's weather","download":"https://skills.example/weather.skill"}]"#).await;
    let ports = Ports::new();
    let config = setup.config(
        &setup.redis_url(),
        ports.egress,
        &format!("skill_index: \"{}\"\n", index.url("/index.json")),
    );
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    let cli = |args: Vec<String>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .args(args)
            .output()
    };

    // Before: nobody handles /weather.
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 1, "/weather Hangzhou")
            .await,
        204
    );

    let dir = setup.dir.join("weather-skill");
    std::fs::create_dir_all(&dir).expect("dir");
    let manifest = format!(
        "name: weather\nversion: 2.1.0\ndescription: \"/weather <city>\"\nremote: \"{}\"\ncommands: [\"/weather\"]\n",
        skill.url()
    );
    std::fs::write(dir.join("skill.yaml"), manifest).expect("manifest");
    let archive = setup.dir.join("weather.skill");
    let built = cli(vec![
        "skill".into(),
        "build".into(),
        dir.display().to_string(),
        "--output".into(),
        archive.display().to_string(),
    ])
    .await
    .expect("runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(String::from_utf8_lossy(&built.stdout).contains("sha256"));
    let config_arg = config.display().to_string();
    let loaded = cli(vec![
        "skill".into(),
        "load".into(),
        archive.display().to_string(),
        "--config".into(),
        config_arg.clone(),
    ])
    .await
    .expect("runs");
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 3, 42, 2, "/weather Beijing")
            .await,
        204
    );
    assert!(wait_for_text(&setup, "sunny in Beijing").await);
    assert_eq!(
        skill.calls(),
        1,
        "only the message after the load reached it"
    );

    let listed = cli(vec![
        "skill".into(),
        "list".into(),
        "--remote".into(),
        "--config".into(),
        config_arg,
    ])
    .await
    .expect("runs");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listing.contains("weather") && listing.contains("https://skills.example/weather.skill"),
        "{listing}"
    );
}
