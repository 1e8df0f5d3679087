//! Peak memory of the decoders on 1 MB of nesting, the shape that once cost memory in the square
//! of its depth (1.14 GB for 224 KB of WeCom XML). Measured as the growth of this process's
//! peak resident set (`VmHWM`, reset through `/proc/self/clear_refs`), so this file holds one
//! test: nothing else may run in the process while it measures.

use clawdbot_platforms::{Inbound, WebhookRequest};
use http::{HeaderMap, Method};

const MIB: u64 = 1024;
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC";

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// Runs `work` and returns how much the peak resident set grew, in KiB.
fn peak_growth(work: impl FnOnce()) -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
    let before = peak_kib();
    work();
    peak_kib().saturating_sub(before)
}

fn refused(inbound: &dyn Inbound, headers: &HeaderMap, query: Option<&str>, body: &[u8]) {
    let req = WebhookRequest {
        method: &Method::POST,
        headers,
        query,
        body,
    };
    let error = inbound
        .verify(&req)
        .and_then(|()| inbound.parse(&req))
        .expect_err("refused");
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST, "{error}");
}

#[test]
fn one_megabyte_of_nesting_is_refused_in_under_ten_megabytes() {
    // The meter itself: 20 MiB touched must show as about 20 MiB.
    let control = peak_growth(|| {
        let touched = vec![1u8; 20 << 20];
        std::hint::black_box(&touched);
    });
    assert!(
        control > 15 * MIB,
        "the peak meter saw only {control} KiB of 20 MiB"
    );

    let headers = HeaderMap::new();
    let config: clawdbot_platforms::wecom::WeComConfig = serde_saphyr::from_str(&format!(
        "corp_id: ww1\nsecret: s\nagent_id: 1\ntoken: t\nencoding_aes_key: {AES_KEY}\n"
    ))
    .expect("config");
    let wecom = clawdbot_platforms::wecom::WeComInbound::new(config).expect("inbound");
    // 1 MiB of `<a>…</a>` nesting (150k levels), built before the measurement.
    let depth = (1 << 20) / 7;
    let mut xml = b"<xml>".to_vec();
    xml.extend(b"<a>".repeat(depth));
    xml.extend(b"</a>".repeat(depth));
    xml.extend(b"</xml>");
    let grew = peak_growth(|| {
        refused(
            &wecom,
            &headers,
            Some("msg_signature=x&timestamp=1&nonce=1"),
            &xml,
        );
    });
    println!(
        "WeCom XML, {} KiB of nesting: peak +{grew} KiB",
        xml.len() / 1024
    );
    assert!(grew < 10 * MIB, "peak grew {grew} KiB");

    let onebot: clawdbot_platforms::onebot::OneBotConfig =
        serde_saphyr::from_str("self_id: 1\napi_root: http://127.0.0.1:9\n").expect("config");
    let onebot = clawdbot_platforms::onebot::OneBotInbound::new(onebot);
    let json = "[".repeat(1 << 20).into_bytes();
    let grew = peak_growth(|| refused(&onebot, &headers, None, &json));
    println!(
        "JSON, {} KiB of nesting: peak +{grew} KiB",
        json.len() / 1024
    );
    assert!(grew < 10 * MIB, "peak grew {grew} KiB");
}
