//! OneBot v11 over WebSocket, end to end against the mock implementation's own WebSocket code:
//! reverse (the implementation connects to `/clawdbot/onebot/ws`, token checked) and forward
//! (clawdbot connects to the implementation), events in and the reply's API call out on the
//! same socket, on both backends; and a forward socket's holder killed mid-way, taken over by
//! the other ingress of a cluster.

mod common;

use std::time::Duration;

use common::{Backend, Clawdbot, Ports, SELF_ID, Setup};

const WAIT: Duration = Duration::from_secs(10);

clawdbot_testkit::backend_suite!(Setup { cluster => Backend::Cluster, embedded => Backend::Embedded }; cases; [
    a_reverse_socket_carries_the_event_in_and_the_reply_out,
    a_forward_socket_carries_the_event_in_and_the_reply_out,
]);

/// A group message event as NapCat sends it on a socket.
fn group_event(message_id: i64, group: i64, text: &str) -> serde_json::Value {
    serde_json::json!({
        "time": 1_700_000_000 + message_id, "self_id": SELF_ID, "post_type": "message",
        "message_type": "group", "sub_type": "normal", "message_id": message_id,
        "group_id": group, "user_id": 42, "message": [{"type": "text", "data": {"text": text}}],
        "raw_message": text, "font": 0,
        "sender": {"user_id": 42, "nickname": "member", "card": "", "role": "member"},
    })
}

/// Connects without a token and with a wrong one: both refused at the handshake.
async fn handshake_status(url: &str, token: Option<&str>) -> String {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("request");
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => "accepted".into(),
        Err(error) => error.to_string(),
    }
}

mod cases {
    use super::*;

    pub async fn a_reverse_socket_carries_the_event_in_and_the_reply_out(setup: Setup) {
        let ports = Ports::new();
        let config = setup.config_with(
            &setup.redis_url(),
            ports.egress,
            "  transport: ws-reverse\n",
            "worker:\n  block_ms: 200\n",
        );
        let _bot = Clawdbot::start(&["up"], &config, &ports).await;
        let url = format!("ws://127.0.0.1:{}/clawdbot/onebot/ws", ports.ingress);
        assert!(
            handshake_status(&url, None).await.contains("401"),
            "no token"
        );
        assert!(
            handshake_status(&url, Some("wrong")).await.contains("401"),
            "wrong token"
        );
        setup
            .mock
            .connect_reverse(&url, SELF_ID)
            .await
            .expect("the mock connects with the token");
        assert_eq!(
            setup
                .mock
                .push_event(&group_event(1, 321, "/echo over the socket")),
            1
        );
        let sent = setup.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].text(), "over the socket");
        assert_eq!(sent[0].via, "ws", "the reply left on the socket");
        assert_eq!(sent[0].group_id, Some(321));
    }

    pub async fn a_forward_socket_carries_the_event_in_and_the_reply_out(setup: Setup) {
        let ports = Ports::new();
        let config = setup.config_with(
            &setup.redis_url(),
            ports.egress,
            &format!(
                "  transport: ws-forward\n  ws_url: \"{}\"\n",
                setup.mock.ws_url()
            ),
            "worker:\n  block_ms: 200\n",
        );
        let _bot = Clawdbot::start(&["up"], &config, &ports).await;
        assert!(
            setup.mock.wait_sockets_opened(1, WAIT).await >= 1,
            "connected"
        );
        assert_eq!(
            setup.mock.push_event(&group_event(1, 654, "/echo forward")),
            1
        );
        let sent = setup.mock.wait_for(1, WAIT).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].text(), "forward");
        assert_eq!(sent[0].via, "ws");
    }
}

/// Two ingresses of a cluster: one holds the forward socket; killed with SIGKILL, the other
/// connects within the lease and the conversation goes on over the new socket.
#[tokio::test]
async fn a_killed_forward_socket_holder_is_taken_over_by_the_other_ingress() {
    let setup = Setup::new(Backend::Cluster).await;
    let ports = Ports::new();
    let config = setup.config_with(
        &setup.redis_url(),
        ports.egress,
        &format!(
            "  transport: ws-forward\n  ws_url: \"{}\"\n  ws_lease_secs: 3\n",
            setup.mock.ws_url()
        ),
        "worker:\n  block_ms: 200\n",
    );
    let egress_ports = Ports {
        metrics: clawdbot_testkit::free_port(),
        ..ports.clone()
    };
    let egress = Clawdbot::start(&["egress"], &config, &egress_ports).await;
    let worker = Clawdbot::start(&["worker"], &config, &Ports::new()).await;
    let mut first = Clawdbot::start(&["ingress"], &config, &Ports::new()).await;
    let mut second = Clawdbot::start(&["ingress"], &config, &Ports::new()).await;
    assert!(setup.mock.wait_sockets_opened(1, WAIT).await >= 1);
    setup.mock.push_event(&group_event(1, 777, "/echo before"));
    assert_eq!(setup.mock.wait_for(1, WAIT).await.len(), 1);
    // Killed between the implementation's answer and its relay to egress, the holder would
    // leave that send's outcome unknown (resent after `late_answer_secs`): wait until egress
    // has it, as a test of the takeover rather than of that window.
    delivered(egress_ports.metrics, 1).await;

    let connected = |process: &Clawdbot| process.logs().contains("onebot websocket connected");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(connected(&first) || connected(&second)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no holder logged its socket"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let holder_is_first = connected(&first);
    let (holder, other) = if holder_is_first {
        (&mut first, &second)
    } else {
        (&mut second, &first)
    };
    holder.child.kill().await.expect("kill -9");
    assert!(
        setup
            .mock
            .wait_sockets_opened(2, Duration::from_secs(15))
            .await
            >= 2,
        "taken over:\n{}",
        other.logs()
    );
    // The mock counts the socket at its upgrade, the ingress logs it a moment later.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !other.logs().contains("onebot websocket connected") {
        assert!(tokio::time::Instant::now() < deadline, "{}", other.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The mock may still list the dead socket until its write fails: push until one is live.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut id = 2;
    while setup.mock.sent_count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer after the takeover\n--- ingress:\n{}\n--- egress:\n{}\n--- worker:\n{}",
            other.logs(),
            egress.logs(),
            worker.logs()
        );
        setup
            .mock
            .push_event(&group_event(id, 777, &format!("/echo after {id}")));
        id += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent = setup.mock.sent();
    assert!(sent[1].text().starts_with("after"), "{sent:?}");
    assert!(sent.iter().all(|m| m.via == "ws"));
}

/// Waits until egress (metrics on `port`) counts `count` OneBot deliveries.
async fn delivered(port: u16, count: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let done: f64 = text
            .lines()
            .filter(|l| l.starts_with("clawdbot_egress_deliveries_total"))
            .filter(|l| l.contains("outcome=\"delivered\"") && l.contains("platform=\"onebot\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if done >= count as f64 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "egress never counted the delivery"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
