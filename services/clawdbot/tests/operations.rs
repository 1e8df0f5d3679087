//! What operators rely on: IP allow-lists at ingress, and metrics that move with traffic.

mod common;

use std::time::Duration;

use common::{Backend, Clawdbot, Ports, Setup};

#[tokio::test]
async fn requests_from_outside_allowed_ips_get_403_and_probes_stay_open() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let config = setup.config("", ports.egress, "security:\n  allowed_ips: [\"10.0.0.0/8\", \"192.168.1.7\"]\n  trust_forwarded_for: true\n");
    let bot = Clawdbot::start(&["up"], &config, &ports).await;

    assert_eq!(
        setup
            .post_group_message(ports.ingress, 1, 1, "/echo from loopback")
            .await,
        403
    );
    let health = setup
        .http
        .get(format!("http://127.0.0.1:{}/healthz", ports.ingress))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "probes are not restricted");
    assert!(
        bot.logs()
            .contains("request from outside security.allowed_ips refused"),
        "{}",
        bot.logs()
    );
    assert!(bot.logs().contains("127.0.0.1"), "the address is logged");

    // Behind a trusted proxy, the forwarded address decides.
    let body = clawdbot_testkit::onebot_group_message(common::SELF_ID, 1, 2, 2, "/echo via proxy");
    let signature = clawdbot_testkit::onebot_signature(common::SECRET, body.as_bytes());
    let allowed = setup
        .http
        .post(format!(
            "http://127.0.0.1:{}/clawdbot/onebot/callback",
            ports.ingress
        ))
        .header("x-forwarded-for", "10.1.2.3, 172.16.0.1")
        .header("x-signature", signature)
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(allowed.status(), 204);
    assert!(
        setup
            .mock
            .wait_for(1, Duration::from_secs(10))
            .await
            .iter()
            .any(|m| m.text() == "via proxy")
    );
    let sandbox = setup
        .http
        .get(format!("http://127.0.0.1:{}/sandbox", ports.ingress))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(sandbox.status(), 403, "the sandbox page is restricted too");
}

/// The text of `/metrics` on `port`.
async fn scrape(setup: &Setup, port: u16) -> String {
    setup
        .http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The sum of `metric`'s series whose labels contain `labels` (several platforms may match).
fn sample(text: &str, metric: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(metric) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// An idle worker's /metrics already carries its series (at 0) with `# HELP` and `# TYPE`, and
/// every process says which release it runs: dashboards show a flat line, not a gap.
#[tokio::test]
async fn an_idle_worker_exports_its_series_described() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.default_config(&ports);
    let _worker = Clawdbot::start(&["worker"], &config, &ports).await;
    // The metrics listener answers before the worker has started its group: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = scrape(&setup, ports.metrics).await;
        if text.contains("clawdbot_worker_acked_total") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for expected in [
        "# HELP clawdbot_worker_acked_total",
        "# TYPE clawdbot_worker_acked_total counter",
        "clawdbot_worker_acked_total{group=\"skills\"} 0",
        "# TYPE clawdbot_dead_letters_total counter",
        "clawdbot_dead_letters_total{group=\"skills\"} 0",
        "# TYPE clawdbot_build_info gauge",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_cpu_seconds_total counter",
        "process_open_fds ",
        "process_start_time_seconds ",
        &format!(
            "clawdbot_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    let resident: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default();
    assert!(resident > 1_000_000.0, "a real resident size: {resident}");
}

#[tokio::test]
async fn metrics_move_as_messages_flow() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let _bot = Clawdbot::start(&["up"], &setup.default_config(&ports), &ports).await;
    let scrape = || scrape(&setup, ports.metrics);
    for id in 0..3 {
        assert_eq!(
            setup
                .post_group_message(ports.ingress, 1, id, &format!("/echo m{id}"))
                .await,
            204
        );
    }
    assert_eq!(setup.post(ports.ingress, "{}", Some("sha1=00")).await, 401);
    setup.mock.wait_for(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = scrape().await;
    assert_eq!(
        sample(&text, "clawdbot_messages_in_total", "platform=\"onebot\""),
        3.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "clawdbot_ingress_requests_total",
            "outcome=\"accepted\""
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "clawdbot_ingress_requests_total",
            "outcome=\"rejected\""
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "clawdbot_errors_total",
            "error_type=\"bad_signature\""
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "clawdbot_egress_deliveries_total",
            "outcome=\"delivered\""
        ),
        3.0
    );
    assert_eq!(
        sample(&text, "clawdbot_skill_calls_total", "skill=\"echo\""),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            "clawdbot_skills_latency_seconds_count",
            "skill=\"echo\""
        ),
        3.0
    );
}

#[tokio::test]
async fn status_lists_every_process_of_the_cluster_with_its_memory() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.default_config(&ports);
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    let _worker = Clawdbot::start(
        &["worker", "--consumer-name", "w-status"],
        &config,
        &Ports::new(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .arg("status")
            .args(extra)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs")
    };
    let status = run(&[]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(text.lines().any(|l| l.starts_with("ingress ")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("worker ") && l.contains("w-status")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("in ")),
        "stream lines: {text}"
    );
    let memory = run(&["--memory"]);
    let text = String::from_utf8_lossy(&memory.stdout);
    assert!(text.contains("RESIDENT") && text.contains(" MiB"), "{text}");
}

/// An embedded `clawdbot up` answers `clawdbot status` (through its metrics listener), and the
/// description's `MALLOC_CONF` is applied by jemalloc — shown as applied, not just as set.
#[tokio::test]
async fn status_reads_an_embedded_up_and_shows_malloc_conf_applied() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let config = setup.config(
        "",
        ports.egress,
        &format!("metrics:\n  listen: \"127.0.0.1:{}\"\n", ports.metrics),
    );
    let _up = Clawdbot::start_with_env(
        &["up"],
        &config,
        &ports,
        &[("MALLOC_CONF", "background_thread:true,metadata_thp:auto")],
    )
    .await;
    let run = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .arg("status")
            .args(extra)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let text = run(&[]);
        if text.lines().any(|l| l.starts_with("up ")) || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(listed.lines().any(|l| l.starts_with("up ")), "{listed}");
    assert!(listed.contains("embedded"), "{listed}");
    let memory = run(&["--memory"]);
    let row = memory
        .lines()
        .find(|l| l.starts_with("up "))
        .unwrap_or_else(|| panic!("{memory}"));
    assert!(row.contains("jemalloc"), "{memory}");
    // jemalloc's default metadata_thp is `disabled`: `auto` proves MALLOC_CONF was read.
    let applied = row.rsplit(' ').next().unwrap_or_default();
    assert!(
        applied.contains("metadata_thp:auto") && applied.contains("background_thread:true"),
        "{memory}"
    );
}

/// Runs curl against `url` with extra `args`; returns (exit success, stdout).
fn curl(args: &[&str], url: &str) -> (bool, String) {
    let output = std::process::Command::new("curl")
        .args(["-sk", "--max-time", "3"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn ingress_serves_tls_and_refuses_tls_1_2_when_1_3_is_the_minimum() {
    let setup = Setup::new(Backend::Embedded).await;
    let (cert, key) = (setup.dir.join("cert.pem"), setup.dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let ports = Ports::new();
    let extra = format!(
        "tls:\n  cert: \"{}\"\n  key: \"{}\"\n  min_version: TLSv1.3\n",
        cert.display(),
        key.display()
    );
    let config = setup.config("", ports.egress, &extra);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
        .args([
            "up",
            "--listen",
            &format!("127.0.0.1:{}", ports.ingress),
            "--metrics-listen",
            &format!("127.0.0.1:{}", ports.metrics),
            "--config",
        ])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let url = format!("https://127.0.0.1:{}/healthz", ports.ingress);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !curl(&["--tlsv1.3"], &url).0 {
        assert!(tokio::time::Instant::now() < deadline, "no https");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        curl(&["--tlsv1.3"], &url),
        (true, "ok".to_string()),
        "TLS 1.3 works"
    );
    assert!(
        !curl(&["--tlsv1.2", "--tls-max", "1.2"], &url).0,
        "a TLS 1.2 client is refused"
    );
    let _killed = child.start_kill();
}

#[tokio::test]
async fn the_audit_trail_records_admin_actions_denials_and_admin_only_calls() {
    let setup = Setup::new(Backend::Embedded).await;
    let ports = Ports::new();
    let config = setup.config("", ports.egress, "skills:\n  echo:\n    deny_users: [666]\n    admin_only: false\n  help:\n    admin_only: true\n");
    let _bot = Clawdbot::start(&["up"], &config, &ports).await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs")
    };
    let enabled = cli(&["admin", "audit", "enable", "--retention", "90d"]);
    assert!(
        enabled.status.success(),
        "{}",
        String::from_utf8_lossy(&enabled.stderr)
    );
    assert!(cli(&["skill", "disable", "faq"]).status.success());
    tokio::time::sleep(Duration::from_millis(800)).await;
    // A denial, and a call of an admin-only skill by a platform admin.
    assert_eq!(
        setup
            .post_group_message_from(ports.ingress, 2, 666, 1, "/echo denied")
            .await,
        204
    );
    let body = clawdbot_testkit::onebot_group_message(common::SELF_ID, 2, 7, 2, "/help")
        .replace("\"role\":\"member\"", "\"role\":\"admin\"");
    let signature = clawdbot_testkit::onebot_signature(common::SECRET, body.as_bytes());
    assert_eq!(
        setup.post(ports.ingress, &body, Some(&signature)).await,
        204
    );
    setup.mock.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let shown = cli(&["admin", "audit", "show"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.lines().any(|l| l.contains("audit.enable")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("skill.disable") && l.contains("faq")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("onebot:666")
            && l.contains("echo")
            && l.contains("denied")
            && l.contains("deny_users")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("onebot:7") && l.contains("help") && l.contains("allowed")),
        "{text}"
    );
}

#[tokio::test]
async fn a_full_queue_answers_503_so_the_platform_retries_and_performance_knobs_apply() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    // No worker: the queue only fills. performance.max_queue_size bounds it.
    let config = setup.config(&setup.redis_url(), ports.egress, "performance:\n  worker_threads: 1\n  max_queue_size: 100\n  batch: { size: 50, interval_ms: 100 }\n");
    let _ingress = Clawdbot::start(&["ingress"], &config, &ports).await;
    // Many senders, as a busy group (one sender this fast reads as a bot loop to the worker).
    for id in 0..100 {
        assert_eq!(
            setup
                .post_group_message_from(ports.ingress, 1, 5000 + id, id, "/echo fill")
                .await,
            204,
            "message {id}"
        );
    }
    assert_eq!(
        setup
            .post_group_message(ports.ingress, 1, 100, "/echo one too many")
            .await,
        503
    );
    // The refused message was not remembered: once there is room, its retry is accepted.
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if setup
            .post_group_message(ports.ingress, 1, 100, "/echo one too many")
            .await
            == 204
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retry was never accepted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        setup
            .mock
            .wait_for(101, Duration::from_secs(15))
            .await
            .iter()
            .any(|m| m.text() == "one too many")
    );
}

/// `clawdbot log show|analyze` answers for the whole cluster: a split cluster (ingress, worker,
/// egress as separate processes) records its warnings and skill calls in the store, and the CLI
/// on another "machine" (process) reads them back filtered and counted.
#[tokio::test]
async fn log_show_and_analyze_answer_for_every_process_of_the_cluster() {
    let setup = Setup::new(Backend::Cluster).await;
    let egress_ports = Ports::new();
    let config = setup.config(
        &setup.redis_url(),
        egress_ports.egress,
        "worker:\n  block_ms: 200\n",
    );
    let ingress_ports = Ports::new();
    let _ingress = Clawdbot::start(&["ingress"], &config, &ingress_ports).await;
    let _egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let _worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    // A forged callback (a warning in the ingress) and three echoes (skill calls in the worker).
    let body = clawdbot_testkit::onebot_group_message(common::SELF_ID, 5, 6, 7, "/echo forged");
    assert_eq!(
        setup
            .post(ingress_ports.ingress, &body, Some("sha1=00"))
            .await,
        401
    );
    for n in 0..3 {
        assert_eq!(
            setup
                .post_group_message(ingress_ports.ingress, 5, 100 + n, "/echo hi")
                .await,
            204
        );
    }
    setup.mock.wait_for(3, Duration::from_secs(10)).await;
    // The writers flush once a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_clawdbot"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, shown, err) = cli(&["log", "show", "--grep", "SIGNATURE", "--lines", "10"]);
    assert!(ok, "{err}");
    // Like `tail -n 0`: none of the past.
    let (ok, none, err) = cli(&["log", "show", "--grep", "SIGNATURE", "--lines", "0"]);
    assert!(ok, "{err}");
    assert!(!none.contains("callback rejected"), "{none}");
    let line = shown
        .lines()
        .find(|l| l.contains("callback rejected"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.contains("WARN") && line.contains("ingress") && line.contains("platform=onebot"),
        "{line}"
    );
    let (_, errors, _) = cli(&["log", "show", "--level", "error"]);
    assert!(
        !errors.contains("callback rejected"),
        "warnings are not errors: {errors}"
    );
    let (ok, analyzed, err) = cli(&["log", "analyze", "--by", "skill", "--last", "1h"]);
    assert!(ok, "{err}");
    let echo = analyzed
        .lines()
        .find(|l| l.starts_with("echo"))
        .unwrap_or_else(|| panic!("{analyzed}"));
    let numbers: Vec<&str> = echo.split_whitespace().collect();
    assert_eq!(
        numbers,
        vec!["echo", "3", "0", "0"],
        "three calls, no failures: {analyzed}"
    );
    let (ok, by_platform, _) = cli(&["log", "analyze", "--by", "platform"]);
    assert!(
        ok && by_platform.lines().any(|l| l.starts_with("onebot")),
        "{by_platform}"
    );
    let (ok, _, err) = cli(&["log", "show", "--since", "yesterday"]);
    assert!(!ok && err.contains("`--since yesterday`"), "{err}");
}

/// Runs openssl with `args` in `dir`, panicking with its stderr if it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA, and certificates it signs for `egress` (server) and `worker` (client); and a second,
/// unrelated CA's client certificate.
fn internal_certificates(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-days", "1", "-subj", "/CN=clawdbot test CA", "-keyout"]);
        let (key, cert) = (format!("{ca}.key"), format!("{ca}.pem"));
        args.extend([key.as_str(), "-out", cert.as_str()]);
        openssl(dir, &args);
    }
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:egress\n").expect("ext");
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
    for (name, ca, ext) in [
        ("egress", "ca", "server.ext"),
        ("worker", "ca", "client.ext"),
        ("intruder", "other-ca", "client.ext"),
    ] {
        let mut args = vec!["req"];
        args.extend(ec);
        let (key, csr, cert, subject) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN={name}"),
        );
        args.extend([
            "-subj",
            subject.as_str(),
            "-keyout",
            key.as_str(),
            "-out",
            csr.as_str(),
        ]);
        openssl(dir, &args);
        let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                ext,
                "-out",
                &cert,
            ],
        );
    }
}

/// With `internal_tls`, workers reach egress over mutual TLS: messages flow, while a plain
/// client, a TLS client without a certificate and one with a certificate from another CA are
/// all refused.
#[tokio::test]
async fn workers_and_egress_talk_over_mutual_tls_and_strangers_are_refused() {
    let setup = Setup::new(Backend::Cluster).await;
    let dir = setup.dir.join("pki");
    std::fs::create_dir_all(&dir).expect("pki dir");
    internal_certificates(&dir);
    let path = |name: &str| dir.join(name).display().to_string();
    let tls = |cert: &str| {
        format!(
            "internal_tls:\n  ca: \"{}\"\n  cert: \"{}\"\n  key: \"{}\"\n",
            path("ca.pem"),
            path(&format!("{cert}.pem")),
            path(&format!("{cert}.key"))
        )
    };
    let egress_ports = Ports::new();
    let with_endpoint = |cert: &str| {
        // The config's egress.endpoint is plain; internal_tls needs https.
        let config = setup.config(
            &setup.redis_url(),
            egress_ports.egress,
            &format!("worker:\n  block_ms: 200\n{}", tls(cert)),
        );
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(
            &config,
            text.replace("endpoint: \"http://", "endpoint: \"https://"),
        )
        .expect("config");
        config
    };
    let egress_config = with_endpoint("egress");
    let worker_config = with_endpoint("worker");
    let ingress_ports = Ports::new();
    let _egress = Clawdbot::start(&["egress"], &egress_config, &egress_ports).await;
    let _ingress = Clawdbot::start(&["ingress"], &worker_config, &ingress_ports).await;
    let worker = Clawdbot::start(&["worker"], &worker_config, &Ports::new()).await;
    assert_eq!(
        setup
            .post_group_message(ingress_ports.ingress, 8, 1, "/echo over mtls")
            .await,
        204
    );
    let sent = setup.mock.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(sent.len(), 1, "worker logs:\n{}", worker.logs());
    assert_eq!(sent[0].text(), "over mtls");

    use clawdbot_core::proto::egress_client::EgressClient;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let reply = || clawdbot_core::proto::SendRequest {
        reply: Some(clawdbot_core::proto::Reply {
            id: "stranger".into(),
            platform: "onebot".into(),
            bot_id: "default".into(),
            ..Default::default()
        }),
    };
    let address = format!("https://127.0.0.1:{}", egress_ports.egress);
    let ca = Certificate::from_pem(std::fs::read(dir.join("ca.pem")).expect("ca"));
    // Plain HTTP/2 to a TLS port.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", egress_ports.egress))
        .expect("uri")
        .connect()
        .await;
    if let Ok(channel) = plain {
        assert!(
            EgressClient::new(channel).send(reply()).await.is_err(),
            "plain gRPC refused"
        );
    }
    for who in [None, Some("intruder")] {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .domain_name("egress");
        if let Some(who) = who {
            let identity = Identity::from_pem(
                std::fs::read(dir.join(format!("{who}.pem"))).expect("cert"),
                std::fs::read(dir.join(format!("{who}.key"))).expect("key"),
            );
            tls = tls.identity(identity);
        }
        let channel = Channel::from_shared(address.clone())
            .expect("uri")
            .tls_config(tls)
            .expect("tls");
        let refused = match channel.connect().await {
            Err(_) => true,
            Ok(channel) => EgressClient::new(channel).send(reply()).await.is_err(),
        };
        assert!(refused, "{who:?} must be refused");
    }
}
