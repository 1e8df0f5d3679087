//! Sends signed OneBot group messages, each with a unique message id, at a fixed rate (open
//! loop, in-flight capped) or with fixed concurrency (closed loop), for a bounded time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clawdbot_testkit::{onebot_group_message, onebot_signature};
use tokio::sync::{Mutex, Semaphore};

use clawdbot_testkit::mock::onebot::SentMessage;
use clawdbot_testkit::mock::qq::{QqEvents, QqSent};
use clawdbot_testkit::mock::wecom::{WeComCallbacks, WeComSent};

use crate::processes::{
    QQ_APP_ID, QQ_SECRET, SECRET, SELF_ID, WECOM_AES_KEY, WECOM_AGENT_ID, WECOM_TOKEN,
};
use crate::{Args, PathKind};

/// What was sent.
#[derive(Default)]
pub struct Sent {
    /// (sequence number, when the request started), for requests answered 2xx.
    pub accepted: Vec<(u64, Instant)>,
    /// Requests answered with another status or not answered.
    pub refused: u64,
    pub started: Option<Instant>,
}

impl Sent {
    pub fn accepted(&self) -> usize {
        self.accepted.len()
    }
}

/// A WeCom reply in the form the report reads.
pub fn as_reply(sent: &WeComSent) -> SentMessage {
    SentMessage {
        action: "message/send".into(),
        group_id: None,
        user_id: None,
        message: serde_json::Value::String(sent.content()),
        via: "http",
        received_at: sent.received_at,
    }
}

/// A QQ reply in the form the report reads.
pub fn qq_reply(sent: &QqSent) -> SentMessage {
    SentMessage {
        action: "qq".into(),
        group_id: None,
        user_id: None,
        message: serde_json::Value::String(sent.content()),
        via: "http",
        received_at: sent.received_at,
    }
}

/// Returns the text the echo of sequence number `seq` carries.
pub fn text_of(seq: u64) -> String {
    format!("lt{seq}")
}

pub async fn run(args: &Args, port: u16) -> Sent {
    let client = clawdbot_core::tls::http_client_builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap_or_default();
    let path = args.path;
    let url = Arc::new(match path {
        PathKind::Onebot => format!("http://127.0.0.1:{port}/clawdbot/onebot/callback"),
        PathKind::Sandbox => format!("http://127.0.0.1:{port}/clawdbot/sandbox/callback"),
        PathKind::Wecom => format!("http://127.0.0.1:{port}/clawdbot/wechat/callback"),
        PathKind::Qq => format!("http://127.0.0.1:{port}/clawdbot/qq/callback"),
    });
    let qq = Arc::new(QqEvents::new(QQ_APP_ID, QQ_SECRET));
    let wecom = Arc::new(WeComCallbacks::new(
        WECOM_TOKEN,
        WECOM_AES_KEY,
        "wwmockcorp0000001",
        WECOM_AGENT_ID,
    ));
    let accepted = Arc::new(Mutex::new(Vec::with_capacity(
        (args.rate.max(1000) * args.duration) as usize,
    )));
    let refused = Arc::new(AtomicU64::new(0));
    let next_seq = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let send = {
        let (client, url, accepted, refused) = (
            client.clone(),
            url.clone(),
            accepted.clone(),
            refused.clone(),
        );
        move |seq: u64| {
            let (client, mut url, accepted, refused, wecom, qq) = (
                client.clone(),
                url.as_str().to_string(),
                accepted.clone(),
                refused.clone(),
                wecom.clone(),
                qq.clone(),
            );
            let mut headers: Vec<(&'static str, String)> = Vec::new();
            async move {
                let text = format!("/echo {}", text_of(seq));
                let (body, signature) = match path {
                    PathKind::Onebot => {
                        // A sender per message: one sender this fast reads as a bot loop.
                        let body = onebot_group_message(
                            SELF_ID,
                            100_000 + (seq % 97) as i64,
                            1_000_000 + seq as i64,
                            seq as i64,
                            &text,
                        );
                        let signature = onebot_signature(SECRET, body.as_bytes());
                        (body, signature)
                    }
                    PathKind::Sandbox => {
                        let body = serde_json::json!({
                            "user_id": format!("user{seq}"),
                            "conversation": {"kind": "group", "id": crate::sse::GROUP},
                            "text": text,
                            "message_id": format!("lt{seq}"),
                        });
                        (body.to_string(), String::new())
                    }
                    PathKind::Wecom => {
                        let callback = wecom.text(&format!("u{seq}"), seq, &text);
                        url = format!("{url}?{}", callback.query);
                        (callback.body, String::new())
                    }
                    PathKind::Qq => {
                        let body = qq.group_at_from(
                            &format!("M{seq}"),
                            &format!("GROUP_AT_MESSAGE_CREATE:{seq}"),
                            &format!("m{seq}"),
                            &format!("G{}", seq % 97),
                            &text,
                            Duration::ZERO,
                        );
                        headers = qq.headers(&body);
                        (body, String::new())
                    }
                };
                let mut request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-signature", signature);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let at = Instant::now();
                let response = request
                    .body(body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
                        accepted.lock().await.push((seq, at))
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    };
    if args.rate == 0 {
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (send, next_seq) = (send.clone(), next_seq.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    send(next_seq.fetch_add(1, Ordering::Relaxed)).await;
                }
            }));
        }
        futures::future::join_all(tasks).await;
    } else {
        // Open loop: a tick every millisecond releases the requests due by then.
        let in_flight = Arc::new(Semaphore::new(args.concurrency.max(1)));
        let mut ticker = tokio::time::interval(Duration::from_millis(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = tokio::task::JoinSet::new();
        while Instant::now() < until {
            ticker.tick().await;
            let due = (started.elapsed().as_secs_f64() * args.rate as f64) as u64;
            while next_seq.load(Ordering::Relaxed) < due {
                let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                match in_flight.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let send = send.clone();
                        tasks.spawn(async move {
                            send(seq).await;
                            drop(permit);
                        });
                    }
                    // Over the in-flight cap: the offered load is more than the system takes;
                    // count it as refused rather than queueing without bound.
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }
    let accepted = std::mem::take(&mut *accepted.lock().await);
    Sent {
        accepted,
        refused: refused.load(Ordering::Relaxed),
        started: Some(started),
    }
}
