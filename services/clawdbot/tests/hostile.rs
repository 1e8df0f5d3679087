//! Hostile input against a real `clawdbot up` on real sockets: the unauthenticated WeCom nesting
//! bomb (answered 400 at once, with the process's resident memory flat), and slow or numerous
//! clients (headers and bodies that never finish, more connections than the limit) that must
//! not stop a valid request from being answered in its normal time.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Clawdbot, Ports, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC";

/// A WeCom app (never called: its API is a closed port) beside the setup's OneBot account.
fn wecom_app() -> String {
    format!(
        "wechat_enterprise:\n  corp_id: \"wwmockcorp0000001\"\n  secret: \"s\"\n  agent_id: 1000002\n  token: \"t\"\n  encoding_aes_key: \"{AES_KEY}\"\n  api_base: \"http://127.0.0.1:9\"\n"
    )
}

async fn start(setup: &Setup, ingress: &str) -> Clawdbot {
    let ports = Ports::new();
    let extra = format!(
        "worker:\n  block_ms: 200\ningress:\n{ingress}{}",
        wecom_app()
    );
    let config = setup.config(&setup.redis_url(), ports.egress, &extra);
    Clawdbot::start(&["up"], &config, &ports).await
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak (`VmHWM`) to the current RSS.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
}

fn nesting(depth: usize) -> Vec<u8> {
    let mut body = b"<xml>".to_vec();
    body.extend(b"<a>".repeat(depth));
    body.push(b'x');
    body.extend(b"</a>".repeat(depth));
    body.extend(b"</xml>");
    body
}

#[tokio::test]
async fn the_wecom_nesting_bomb_is_400_at_once_with_flat_memory() {
    let setup = Setup::new(Backend::Embedded).await;
    // Bodies up to 16 MiB reach the parser (the default 1 MiB would refuse the larger ones
    // with 413 before it).
    let clawdbot = start(&setup, "  max_body_bytes: 16777216\n").await;
    let pid = clawdbot.child.id().expect("pid");
    let url = format!(
        "http://127.0.0.1:{}/clawdbot/wechat/callback?msg_signature=x&timestamp=1&nonce=1",
        clawdbot.ports.ingress
    );
    for depth in [64_000usize, 200_000, 1_000_000] {
        let body = nesting(depth);
        let size_kib = body.len() as u64 / 1024;
        let (before, _) = memory_kib(pid);
        reset_peak(pid);
        let started = Instant::now();
        let response = setup
            .http
            .post(&url)
            .body(body)
            .send()
            .await
            .expect("answered");
        let took = started.elapsed();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let (_, peak) = memory_kib(pid);
        let grew = peak.saturating_sub(before);
        println!(
            "nesting {depth}: body {size_kib} KiB, answered {status} in {took:?}, RSS {before} KiB, peak +{grew} KiB"
        );
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("deeper than the limit of 8 levels"), "{text}");
        // The body itself is buffered once (up to 7 MiB here); nothing in proportion to the
        // square of the depth. Before the fix, 32k levels took 1.14 GB.
        assert!(grew < 3 * size_kib + 32 * 1024, "peak grew {grew} KiB");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
    // The ingress is fine afterwards.
    let status = setup
        .post_group_message(clawdbot.ports.ingress, 1, 1, "/echo after")
        .await;
    assert!(status.is_success());
    setup.mock.wait_for(1, Duration::from_secs(10)).await;
}

/// Opens a connection that sends the start of a request's headers and then one byte a second,
/// never finishing them (a slowloris client).
async fn slow_client(port: u16) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"POST /clawdbot/onebot/callback HTTP/1.1\r\nHost: x\r\n")
        .await
        .ok()?;
    Some(stream)
}

/// Whether the server closed `stream` (EOF, a reset, or an error answer) within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (a 408, say) before the close: keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

fn raise_own_open_file_limit(needed: u64) {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("open-file limit");
    assert!(
        limit >= needed,
        "this test opens {needed} sockets; the hard open-file limit is {limit}"
    );
}

#[tokio::test]
async fn eleven_hundred_slow_clients_do_not_delay_a_valid_request() {
    const SLOW: usize = 1_100;
    raise_own_open_file_limit(SLOW as u64 + 512);
    let setup = Setup::new(Backend::Embedded).await;
    let clawdbot = start(&setup, "  header_read_timeout_secs: 3\n").await;
    let port = clawdbot.ports.ingress;
    // The normal time, measured first.
    let started = Instant::now();
    assert!(
        setup
            .post_group_message(port, 1, 1, "/echo warm")
            .await
            .is_success()
    );
    let normal = started.elapsed();

    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        slow.push(slow_client(port).await.expect("connects"));
    }
    // Each drips one more header byte, as a slowloris does.
    for stream in &mut slow {
        let _sent = stream.write_all(b"X").await;
    }
    let started = Instant::now();
    let status = setup
        .post_group_message(port, 1, 2, "/echo under load")
        .await;
    let under_load = started.elapsed();
    println!("valid request: {normal:?} alone, {under_load:?} beside {SLOW} slow clients");
    assert!(status.is_success(), "{status}");
    assert!(
        under_load < normal + Duration::from_secs(1),
        "{under_load:?} vs {normal:?}"
    );
    setup.mock.wait_for(2, Duration::from_secs(10)).await;

    // The header timeout (3 s) closes every slow client.
    let mut closed = 0;
    for stream in &mut slow {
        if closed_by_server(stream, Duration::from_secs(8)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, SLOW, "slow clients closed by the server");
}

#[tokio::test]
async fn past_the_connection_limit_new_clients_wait_and_the_limit_is_logged() {
    let setup = Setup::new(Backend::Embedded).await;
    let clawdbot = start(
        &setup,
        "  max_connections: 20\n  header_read_timeout_secs: 2\n",
    )
    .await;
    let port = clawdbot.ports.ingress;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(slow_client(port).await.expect("connects"));
    }
    // Every place is taken: the valid request waits until the header timeout frees one.
    let started = Instant::now();
    let status = setup.post_group_message(port, 1, 1, "/echo waited").await;
    let waited = started.elapsed();
    println!("valid request past the limit answered in {waited:?}");
    assert!(status.is_success(), "{status}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(
        clawdbot.logs().contains("connection limit reached"),
        "{}",
        clawdbot.logs()
    );
    setup.mock.wait_for(1, Duration::from_secs(10)).await;
    drop(slow);
}

#[tokio::test]
async fn a_body_that_never_arrives_is_408_and_logged() {
    let setup = Setup::new(Backend::Embedded).await;
    let clawdbot = start(&setup, "  body_read_timeout_secs: 1\n").await;
    let mut stream = TcpStream::connect(("127.0.0.1", clawdbot.ports.ingress))
        .await
        .expect("connects");
    stream
        .write_all(
            b"POST /clawdbot/onebot/callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"post_type\"",
        )
        .await
        .expect("sent");
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 512];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let logs = clawdbot.logs();
    assert!(
        logs.contains("request body refused") && logs.contains("body_read_timeout_secs"),
        "{logs}"
    );
}

/// Sends one signed OneBot message over `stream` (HTTP/1.1, kept alive) and reads its answer.
async fn request_kept_alive(stream: &mut TcpStream, message_id: i64) -> String {
    let body =
        clawdbot_testkit::onebot_group_message(common::SELF_ID, 1, 42, message_id, "/echo x");
    let signature = clawdbot_testkit::onebot_signature(common::SECRET, body.as_bytes());
    let head = format!(
        "POST /clawdbot/onebot/callback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Self-ID: {}\r\nX-Signature: {signature}\r\nContent-Length: {}\r\n\r\n",
        common::SELF_ID,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(body.as_bytes()).await.expect("body");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_by_the_header_timeout() {
    let setup = Setup::new(Backend::Embedded).await;
    let clawdbot = start(&setup, "  header_read_timeout_secs: 1\n").await;
    let mut stream = TcpStream::connect(("127.0.0.1", clawdbot.ports.ingress))
        .await
        .expect("connects");
    let answer = request_kept_alive(&mut stream, 1).await;
    assert!(answer.starts_with("HTTP/1.1 2"), "{answer}");
    let idle = Instant::now();
    assert!(closed_by_server(&mut stream, Duration::from_secs(5)).await);
    let after = idle.elapsed();
    // Not at once: kept alive, then closed when no next request came within the timeout.
    assert!(
        after >= Duration::from_millis(800),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_connection_is_closed_once_it_reaches_its_maximum_age() {
    let setup = Setup::new(Backend::Embedded).await;
    // The header timeout (30 s) would keep the idle connection; the age (1 s) closes it.
    let clawdbot = start(
        &setup,
        "  header_read_timeout_secs: 30\n  max_connection_age_secs: 1\n",
    )
    .await;
    let mut stream = TcpStream::connect(("127.0.0.1", clawdbot.ports.ingress))
        .await
        .expect("connects");
    let opened = Instant::now();
    let answer = request_kept_alive(&mut stream, 1).await;
    assert!(answer.starts_with("HTTP/1.1 2"), "{answer}");
    assert!(closed_by_server(&mut stream, Duration::from_secs(5)).await);
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );
}
