//! Fuzzes every decoder an outside caller reaches: each platform's verify + parse (raw, and
//! validly signed or encrypted so that mutated bodies get past the signature into the
//! parser), CQ codes, and config loading. For every input: no panic, no answer but a 4xx,
//! work linear in the input (no input over a second), and a decoded envelope no larger than
//! a small multiple of its body. Budget and reproduction: `clawdbot_testkit::fuzz`.

use clawdbot_platforms::{Inbound, InboundError, WebhookRequest};
use clawdbot_testkit::fuzz::Target;
use http::{HeaderMap, HeaderValue, Method};
use prost::Message;

const WECOM_TOKEN: &str = "OPENCLAW";
const WECOM_AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC";
const WECOM_CORP: &str = "ww1234567890abcdef";

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap_or_else(|error| panic!("test config: {error}"))
}

fn now_secs() -> i64 {
    clawdbot_core::now_ms() / 1000
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("x"))
}

/// Runs `req` through `inbound` as the ingress does and judges the outcome. `signed`: the
/// request carries a valid signature, so a refusal of the signature means the fuzz never
/// reached the parser (a broken harness, reported as a failure).
fn judge(inbound: &dyn Inbound, req: &WebhookRequest, signed: bool) -> Result<(), String> {
    match inbound.verify(req).and_then(|()| inbound.parse(req)) {
        Ok(clawdbot_platforms::Inbox::Envelopes(envelopes)) => {
            let size: usize = envelopes.iter().map(Message::encoded_len).sum();
            // A field is copied into a few places (text, segments, the raw JSON, where a control
            // character escapes to 6 bytes), plus fixed overhead: linear, never more than 8x.
            if size > 8 * req.body.len() + 4096 {
                return Err(format!(
                    "a {} byte body became {size} bytes of envelopes",
                    req.body.len()
                ));
            }
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(error) if !error.status().is_client_error() => {
            Err(format!("answered {} ({error})", error.status()))
        }
        Err(
            error @ (InboundError::BadSignature
            | InboundError::MissingSignature { .. }
            | InboundError::StaleSignature { .. }),
        ) if signed => Err(format!("a signed request was refused: {error}")),
        Err(_) => Ok(()),
    }
}

fn post<'a>(headers: &'a HeaderMap, query: Option<&'a str>, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        method: &Method::POST,
        headers,
        query,
        body,
    }
}

fn wecom() -> (
    clawdbot_platforms::wecom::WeComInbound,
    clawdbot_platforms::wecom::crypto::WeComCrypto,
) {
    let config: clawdbot_platforms::wecom::WeComConfig = yaml(&format!(
        "corp_id: {WECOM_CORP}\nsecret: s\nagent_id: 1000002\ntoken: {WECOM_TOKEN}\nencoding_aes_key: {WECOM_AES_KEY}\n"
    ));
    let key = clawdbot_platforms::wecom::crypto::aes_key(WECOM_AES_KEY).expect("key");
    (
        clawdbot_platforms::wecom::WeComInbound::new(config).expect("inbound"),
        clawdbot_platforms::wecom::crypto::WeComCrypto::new(WECOM_TOKEN, key),
    )
}

#[test]
fn fuzz_wecom_outer_body_unauthenticated() {
    let (inbound, _) = wecom();
    let headers = HeaderMap::new();
    Target::new("wecom_outer")
        .tokens(&[b"<Encrypt>", b"</Encrypt>", b"<xml>", b"</xml>", b"<a>"])
        .run(|body| {
            judge(
                &inbound,
                &post(&headers, Some("msg_signature=x&timestamp=1&nonce=1"), body),
                false,
            )
        });
}

#[test]
fn fuzz_wecom_decrypted_message_signed() {
    let (inbound, crypto) = wecom();
    let headers = HeaderMap::new();
    Target::new("wecom_message")
        .tokens(&[
            b"<MsgType>",
            b"</MsgType>",
            b"<Event>",
            b"<item>",
            b"<xml>",
            b"</xml>",
        ])
        .run(|plaintext| {
            // WeCom encrypts text; a body that is no UTF-8 cannot be one of its messages.
            let plaintext = String::from_utf8_lossy(plaintext);
            let encrypt = crypto.encrypt(&plaintext, WECOM_CORP, [7; 16]);
            let timestamp = now_secs().to_string();
            let signature = crypto.signature(&timestamp, "1", &encrypt);
            let query = format!("msg_signature={signature}&timestamp={timestamp}&nonce=1");
            let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
            judge(
                &inbound,
                &post(&headers, Some(&query), body.as_bytes()),
                true,
            )
        });
}

#[test]
fn fuzz_dingtalk_robot_message_signed() {
    const SECRET: &str = "dingtalk-app-secret";
    let config: clawdbot_platforms::dingtalk::DingTalkConfig =
        yaml(&format!("app_key: ak\napp_secret: {SECRET}\nmode: http\n"));
    let inbound = clawdbot_platforms::dingtalk::DingTalkInbound::new(config);
    Target::new("dingtalk_message")
        .tokens(&[b"\"msgtype\":", b"\"atUsers\":", b"\"text\":{\"content\":"])
        .run(|body| {
            // DingTalk signs the timestamp, not the body: every mutated body reaches the parser.
            let timestamp = clawdbot_core::now_ms().to_string();
            let mut headers = HeaderMap::new();
            headers.insert("timestamp", header(&timestamp));
            headers.insert(
                "sign",
                header(&clawdbot_platforms::dingtalk::sign::sign(
                    SECRET, &timestamp,
                )),
            );
            judge(&inbound, &post(&headers, None, body), true)
        });
}

#[test]
fn fuzz_qq_webhook_event_signed() {
    const SECRET: &str = "naOC0ocQE3shWLAfffVLB1rhYPG7";
    let config: clawdbot_platforms::qq::QqConfig =
        yaml(&format!("app_id: 11111111\nsecret: {SECRET}\n"));
    let inbound = clawdbot_platforms::qq::QqInbound::new(vec![config]);
    let key = clawdbot_platforms::qq::sign::signing_key(SECRET);
    Target::new("qq_event")
        .tokens(&[
            b"\"op\":",
            b"\"t\":",
            b"\"d\":",
            b"GROUP_AT_MESSAGE_CREATE",
            b"<@!123>",
        ])
        .run(|body| {
            let timestamp = now_secs().to_string();
            let signature =
                clawdbot_platforms::qq::sign::sign_hex(&key, &[timestamp.as_bytes(), body]);
            let mut headers = HeaderMap::new();
            headers.insert("x-bot-appid", header("11111111"));
            headers.insert("x-signature-ed25519", header(&signature));
            headers.insert("x-signature-timestamp", header(&timestamp));
            judge(&inbound, &post(&headers, None, body), true)
        });
}

#[test]
fn fuzz_onebot_event_signed() {
    const SECRET: &str = "onebot-secret";
    let config: clawdbot_platforms::onebot::OneBotConfig = yaml(&format!(
        "self_id: 10001\nsecret: {SECRET}\napi_root: http://127.0.0.1:9\n"
    ));
    let inbound = clawdbot_platforms::onebot::OneBotInbound::new(config);
    Target::new("onebot_event")
        .tokens(&[
            b"\"post_type\":",
            b"\"message\":",
            b"{\"type\":\"at\",\"data\":{\"qq\":\"10001\"}}",
        ])
        .run(|body| {
            let mut headers = HeaderMap::new();
            headers.insert("x-self-id", header("10001"));
            headers.insert(
                "x-signature",
                header(&clawdbot_testkit::onebot_signature(SECRET, body)),
            );
            judge(&inbound, &post(&headers, None, body), true)
        });
}

#[test]
fn fuzz_onebot_cq_codes_round_trip() {
    use clawdbot_platforms::onebot::cq;
    Target::new("onebot_cq").run(|input| {
        let text = String::from_utf8_lossy(input);
        let segments = cq::parse(&text);
        // Values come from the input; unescaping only shortens them.
        let total: usize = segments
            .iter()
            .map(|s| s.data.iter().map(|(_, v)| v.len()).sum::<usize>())
            .sum();
        if total > text.len() {
            return Err(format!("{} bytes parsed into {total}", text.len()));
        }
        // Any text, escaped, reads back as itself and nothing else.
        let escaped = cq::escape_text(&text);
        let back = cq::parse(&escaped);
        let whole: String = back
            .iter()
            .filter_map(|s| s.get("text").map(str::to_string))
            .collect();
        if back.iter().any(|s| s.kind != "text") || whole != text {
            return Err(format!("escaped text read back as {back:?}"));
        }
        Ok(())
    });
}

#[test]
fn fuzz_notify_request_authenticated() {
    const KEY: &str = "notify-key-0123456789";
    let config: clawdbot_platforms::notify::NotifyConfig =
        yaml(&format!("api_keys: [\"{KEY}\"]\n"));
    let inbound = clawdbot_platforms::notify::NotifyInbound::new(config, Default::default());
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", header(KEY));
    Target::new("notify_request")
        .tokens(&[b"\"targets\":", b"\"platform\":", b"\"template\":"])
        .run(|body| judge(&inbound, &post(&headers, None, body), true));
}

#[test]
fn fuzz_alertmanager_notification_authenticated() {
    let config: clawdbot_platforms::alertmanager::AlertmanagerConfig =
        yaml("token: alert-token-0123456789\n");
    let inbound = clawdbot_platforms::alertmanager::AlertmanagerInbound::new(config);
    let mut headers = HeaderMap::new();
    headers.insert("authorization", header("Bearer alert-token-0123456789"));
    Target::new("alertmanager_notification")
        .tokens(&[b"\"alerts\":", b"\"labels\":", b"\"status\":\"firing\""])
        .run(|body| judge(&inbound, &post(&headers, None, body), true));
}

#[test]
fn fuzz_sandbox_message() {
    let inbound = clawdbot_platforms::sandbox::SandboxInbound::new(Default::default());
    let headers = HeaderMap::new();
    Target::new("sandbox_message")
        .tokens(&[b"\"conversation\":", b"\"text\":"])
        .run(|body| judge(&inbound, &post(&headers, None, body), false));
}

#[test]
fn fuzz_config_loading() {
    let dir = std::env::temp_dir().join(format!(
        "clawdbot-fuzz-config-{}",
        clawdbot_testkit::random_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("clawdbot.yaml");
    let env: std::collections::HashMap<String, String> = Default::default();
    Target::new("config_yaml")
        .tokens(&[
            b"onebot:",
            b"storage:",
            b"  - ",
            b"&anchor ",
            b"*anchor",
            b"<<: *anchor",
            b"${X}",
        ])
        .run(|text| {
            std::fs::write(&path, text).map_err(|error| error.to_string())?;
            match clawdbot_config::Config::load(&path, &env) {
                Ok(_) => Ok(()),
                Err(error) if error.problems.iter().all(|p| !p.trim().is_empty()) => Ok(()),
                Err(error) => Err(format!("an error that says nothing: {error:?}")),
            }
        });
    let _removed = std::fs::remove_dir_all(&dir);
}
