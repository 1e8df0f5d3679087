//! The WeCom inbound on its own: verify the signature, decrypt, check the corp and decode to an
//! envelope, in a loop on one core (what each ingress request spends before publishing).

use std::time::Instant;

use clawdbot_platforms::wecom::{WeComConfig, WeComInbound};
use clawdbot_platforms::{Inbound, Inbox, WebhookRequest};
use clawdbot_testkit::mock::wecom::WeComCallbacks;

use crate::processes::{WECOM_AES_KEY, WECOM_AGENT_ID, WECOM_TOKEN};

const CORP: &str = "wwmockcorp0000001";

/// Runs `rounds` verify+decrypt+decode passes over one realistic text callback and prints the
/// time per message.
pub fn run(rounds: u32) -> anyhow::Result<()> {
    let config: WeComConfig = serde_json::from_value(serde_json::json!({
        "corp_id": CORP, "secret": "s", "agent_id": WECOM_AGENT_ID,
        "token": WECOM_TOKEN, "encoding_aes_key": WECOM_AES_KEY,
    }))?;
    let inbound = WeComInbound::new(config).map_err(anyhow::Error::msg)?;
    let callback = WeComCallbacks::new(WECOM_TOKEN, WECOM_AES_KEY, CORP, WECOM_AGENT_ID).text(
        "zhangsan",
        4_561_255_354_251_345_929,
        "/echo a typical short message 你好",
    );
    let headers = http::HeaderMap::new();
    let request = WebhookRequest {
        method: &http::Method::POST,
        headers: &headers,
        query: Some(&callback.query),
        body: callback.body.as_bytes(),
    };
    let once = || -> anyhow::Result<usize> {
        inbound.verify(&request)?;
        match inbound.parse(&request)? {
            Inbox::Envelopes(envelopes) => Ok(envelopes.len()),
            other => anyhow::bail!("expected an envelope, got {other:?}"),
        }
    };
    for _ in 0..1000 {
        once()?;
    }
    let started = Instant::now();
    let mut decoded = 0;
    for _ in 0..rounds {
        decoded += once()?;
    }
    let per = started.elapsed() / rounds;
    println!(
        "| wecom verify + decrypt + decode | {rounds} messages | {decoded} envelopes | {:.2} µs per message |",
        per.as_nanos() as f64 / 1000.0
    );
    Ok(())
}
