//! The published vectors (sign, decrypt, encrypt with a fixed random prefix), decoding of each
//! message type, and every refusal the issue lists.

use clawdbot_core::proto::{ConversationKind, EventKind, segment::Kind};
use serde_json::Value;

use super::crypto::{CryptoError, WeComCrypto, aes_key};
use super::*;
use crate::{Inbound, InboundError, Inbox, WebhookRequest};

const VECTORS: &str = include_str!("fixtures/wecom.vectors.json");

fn vectors() -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors file is JSON");
    all["vectors"].as_array().expect("vectors").clone()
}

fn vector(id: &str) -> Value {
    vectors()
        .into_iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("vector {id}"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key}"))
}

fn crypto_of(v: &Value) -> WeComCrypto {
    WeComCrypto::new(
        s(v, "token"),
        aes_key(s(v, "encoding_aes_key")).expect("key"),
    )
}

fn app(v: &Value) -> WeComConfig {
    let yaml = format!(
        "corp_id: {}\nsecret: s\nagent_id: 218\ntoken: {}\nencoding_aes_key: {}\n",
        s(v, "receiveid"),
        s(v, "token"),
        s(v, "encoding_aes_key")
    );
    serde_saphyr::from_str(&yaml).expect("config")
}

fn request(
    inbound: &WeComInbound,
    method: http::Method,
    query: &str,
    body: &[u8],
) -> Result<Inbox, InboundError> {
    let headers = http::HeaderMap::new();
    let req = WebhookRequest {
        method: &method,
        headers: &headers,
        query: Some(query),
        body,
    };
    inbound.verify(&req)?;
    inbound.parse(&req)
}

/// A POST callback the way WeCom builds it: encrypt, sign, wrap.
fn callback(crypto: &WeComCrypto, corp: &str, plaintext: &str) -> (String, Vec<u8>) {
    let encrypt = crypto.encrypt(plaintext, corp, *b"0123456789abcdef");
    let signature = crypto.signature("1409659813", "1372623149", &encrypt);
    let query = format!("msg_signature={signature}&timestamp=1409659813&nonce=1372623149");
    let body = format!(
        "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><AgentID><![CDATA[218]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    );
    (query, body.into_bytes())
}

fn single(inbox: Inbox) -> clawdbot_core::Envelope {
    match inbox {
        Inbox::Envelopes(mut envelopes) if envelopes.len() == 1 => envelopes.remove(0),
        other => panic!("expected one envelope, got {other:?}"),
    }
}

#[test]
fn shared_vectors_copy_is_current() {
    let shared = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/protocols/wecom.vectors.json"
    );
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text, VECTORS,
            "fixtures/wecom.vectors.json differs from shared/protocols"
        );
    }
}

#[test]
fn all_five_vectors_reproduce() {
    assert_eq!(vectors().len(), 5);
    for v in vectors() {
        let crypto = crypto_of(&v);
        let signed = v
            .get("echostr_urldecoded")
            .or(v.get("echostr"))
            .or(v.get("encrypt"))
            .and_then(Value::as_str);
        if let Some(signed) = signed {
            assert_eq!(
                crypto.signature(s(&v, "timestamp"), s(&v, "nonce"), signed),
                s(&v, "expected_msg_signature"),
                "{}",
                v["id"]
            );
            let opened = crypto.decrypt(signed).expect("decrypts");
            assert_eq!(opened.receive_id, s(&v, "receiveid"), "{}", v["id"]);
            let expected = v
                .get("expected_plaintext")
                .or(v.get("expected_plaintext_response_body"))
                .and_then(Value::as_str)
                .expect("expected plaintext");
            assert_eq!(opened.message, expected, "{}", v["id"]);
        } else {
            // The passive-reply vector: encrypt with the fixed random prefix, then sign.
            let random: [u8; 16] = s(&v, "random16_ascii").as_bytes().try_into().expect("16");
            let encrypt = crypto.encrypt(s(&v, "reply_plaintext"), s(&v, "receiveid"), random);
            assert_eq!(encrypt, s(&v, "expected_encrypt"));
            assert_eq!(
                crypto.signature(s(&v, "timestamp"), s(&v, "nonce"), &encrypt),
                s(&v, "expected_msg_signature")
            );
        }
    }
}

#[test]
fn the_key_is_the_encoding_aes_key_plus_padding_and_the_iv_its_first_half() {
    let v = vector("wechatpy-verifyurl");
    let key = aes_key(s(&v, "encoding_aes_key")).expect("key");
    assert_eq!(hex::encode(key), s(&v, "aes_key_hex"));
    assert_eq!(hex::encode(&key[..16]), s(&v, "iv_hex"));
}

#[test]
fn the_wrong_nonce_of_the_negative_vector_fails_verification() {
    let v = vector("wechatpy-verifyurl");
    let crypto = crypto_of(&v);
    let wrong_nonce = s(&v["negative_case"], "nonce");
    assert!(!crypto.verify(
        s(&v, "expected_msg_signature"),
        s(&v, "timestamp"),
        wrong_nonce,
        s(&v, "echostr")
    ));
    assert!(crypto.verify(
        s(&v, "expected_msg_signature"),
        s(&v, "timestamp"),
        s(&v, "nonce"),
        s(&v, "echostr")
    ));
}

#[test]
fn url_verification_answers_the_bare_decrypted_echostr_from_the_raw_query() {
    let v = vector("wecom-official-verifyurl");
    let inbound = WeComInbound::new(app(&v))
        .expect("inbound")
        .with_clock(vector_clock);
    let inbox = request(&inbound, http::Method::GET, s(&v, "query_raw"), b"").expect("verified");
    match inbox {
        Inbox::Handshake { body, content_type } => {
            assert_eq!(body, s(&v, "expected_plaintext_response_body").as_bytes());
            assert!(content_type.starts_with("text/plain"));
        }
        other => panic!("expected the handshake, got {other:?}"),
    }
}

#[test]
fn the_official_post_decodes_to_a_text_envelope_answered_through_the_app() {
    let v = vector("wecom-official-decrypt-post");
    let inbound = WeComInbound::new(app(&v))
        .expect("inbound")
        .with_clock(vector_clock);
    let query = format!(
        "msg_signature={}&timestamp={}&nonce={}",
        s(&v, "expected_msg_signature"),
        s(&v, "timestamp"),
        s(&v, "nonce")
    );
    // The sample's outer XML, as WeCom posts it.
    let body = format!(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>",
        s(&v, "encrypt")
    );
    let envelope =
        single(request(&inbound, http::Method::POST, &query, body.as_bytes()).expect("ok"));
    assert_eq!(envelope.platform, NAME);
    assert_eq!(envelope.kind(), EventKind::Message);
    assert_eq!(envelope.message_id, "4561255354251345929");
    assert_eq!(envelope.text, "hello");
    assert_eq!(envelope.event_type, "message.text");
    let conversation = envelope.conversation.expect("conversation");
    assert_eq!(conversation.kind(), ConversationKind::Private);
    assert_eq!(conversation.id, "mycreate");
    assert_eq!(envelope.sent_at_ms, 1_409_659_813_000);
    match crate::reply_context::open::<super::WeComReplyContext>(
        NAME,
        envelope.reply_context.as_ref(),
    ) {
        Some(context) => {
            assert_eq!(context.corp_id, "wx5823bf96d3bd56c7");
            assert_eq!(context.agent_id, 218);
            assert_eq!(context.user_id, "mycreate");
        }
        other => panic!("reply context: {other:?}"),
    }
}

/// The moment the published vectors were signed (their `timestamp`).
fn vector_clock() -> i64 {
    1_409_659_813
}

fn inbound_and_crypto() -> (WeComInbound, WeComCrypto, String) {
    let v = vector("wecom-official-decrypt-post");
    (
        WeComInbound::new(app(&v))
            .expect("inbound")
            .with_clock(vector_clock),
        crypto_of(&v),
        s(&v, "receiveid").to_string(),
    )
}

fn decode(plaintext: &str) -> clawdbot_core::Envelope {
    let (inbound, crypto, corp) = inbound_and_crypto();
    let (query, body) = callback(&crypto, &corp, plaintext);
    single(request(&inbound, http::Method::POST, &query, &body).expect("accepted"))
}

fn message(msg_type: &str, extra: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{extra}<MsgId>1234567890123456</MsgId><AgentID>218</AgentID></xml>"
    )
}

#[test]
fn each_message_type_becomes_its_segment() {
    let image = decode(&message(
        "image",
        "<PicUrl><![CDATA[https://p.qpic.cn/x.jpg]]></PicUrl><MediaId><![CDATA[m-img]]></MediaId>",
    ));
    match &image.segments[0].kind {
        Some(Kind::Image(media)) => {
            assert_eq!(media.url, "https://p.qpic.cn/x.jpg");
            assert_eq!(media.file_id, "m-img");
        }
        other => panic!("{other:?}"),
    }
    let voice = decode(&message(
        "voice",
        "<MediaId>m-v</MediaId><Format>amr</Format>",
    ));
    assert!(
        matches!(&voice.segments[0].kind, Some(Kind::Voice(m)) if m.file_id == "m-v" && m.mime == "audio/amr")
    );
    let video = decode(&message(
        "video",
        "<MediaId>m-vid</MediaId><ThumbMediaId>t</ThumbMediaId>",
    ));
    assert!(matches!(&video.segments[0].kind, Some(Kind::Video(m)) if m.file_id == "m-vid"));
    let file = decode(&message(
        "file",
        "<MediaId>m-f</MediaId><FileName>report.pdf</FileName>",
    ));
    assert!(matches!(&file.segments[0].kind, Some(Kind::File(m)) if m.name == "report.pdf"));
    let link = decode(&message(
        "link",
        "<Title>T</Title><Description>D</Description><Url>https://e.com</Url><PicUrl>https://e.com/p.png</PicUrl>",
    ));
    assert!(
        matches!(&link.segments[0].kind, Some(Kind::Link(l)) if l.url == "https://e.com" && l.title == "T")
    );
    let location = decode(&message(
        "location",
        "<Location_X>23.13</Location_X><Location_Y>113.26</Location_Y><Scale>15</Scale><Label>Guangzhou</Label>",
    ));
    assert_eq!(location.text, "[location] Guangzhou (23.13, 113.26)");
    assert!(
        matches!(&location.segments[0].kind, Some(Kind::Raw(r)) if r.data_json.contains("\"Scale\":\"15\""))
    );
    for envelope in [&image, &voice, &video, &file, &link, &location] {
        assert_eq!(envelope.kind(), EventKind::Message);
        assert_eq!(envelope.message_id, "1234567890123456");
    }
}

#[test]
fn events_are_notices_deduplicated_by_sender_time_and_event() {
    for event in ["enter_agent", "click", "view", "subscribe", "unsubscribe"] {
        let xml = format!(
            "<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName><FromUserName>lisi</FromUserName><CreateTime>1700000001</CreateTime><MsgType>event</MsgType><Event>{event}</Event><EventKey>k1</EventKey><AgentID>218</AgentID></xml>"
        );
        let envelope = decode(&xml);
        assert_eq!(envelope.kind(), EventKind::Notice, "{event}");
        assert_eq!(envelope.event_type, format!("event.{event}"));
        assert!(
            envelope
                .message_id
                .starts_with(&format!("lisi:1700000001:{event}:")),
            "{}",
            envelope.message_id
        );
        assert!(
            matches!(&envelope.segments[0].kind, Some(Kind::Raw(r)) if r.data_json.contains("\"EventKey\":\"k1\""))
        );
    }
}

#[test]
fn two_menu_clicks_in_one_second_are_two_events_and_a_retry_is_one() {
    let click = |key: &str| {
        format!(
            "<xml><ToUserName>wx5823bf96d3bd56c7</ToUserName><FromUserName>lisi</FromUserName><CreateTime>1700000001</CreateTime><MsgType>event</MsgType><Event>click</Event><EventKey>{key}</EventKey><AgentID>218</AgentID></xml>"
        )
    };
    let first = decode(&click("menu_a")).message_id;
    let second = decode(&click("menu_b")).message_id;
    assert_ne!(first, second, "different EventKeys in one second");
    // WeCom's retry of the first click (another nonce and signature, the same event).
    assert_eq!(decode(&click("menu_a")).message_id, first);
}

#[test]
fn an_unknown_msg_type_is_accepted_as_a_notice_and_not_routed() {
    let envelope = decode(&message("miniprogram_notice", "<Title>x</Title>"));
    assert_eq!(envelope.kind(), EventKind::Notice);
    assert_eq!(envelope.event_type, "message.miniprogram_notice");
}

fn refused(query: &str, body: &[u8]) -> InboundError {
    let (inbound, _, _) = inbound_and_crypto();
    request(&inbound, http::Method::POST, query, body).expect_err("refused")
}

#[test]
fn a_wrong_signature_is_401() {
    let (_, crypto, corp) = inbound_and_crypto();
    let (query, body) = callback(&crypto, &corp, &message("text", "<Content>x</Content>"));
    let tampered = query.replace("msg_signature=", "msg_signature=0");
    let error = refused(&tampered, &body);
    assert!(matches!(error, InboundError::BadSignature), "{error}");
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
}

#[test]
fn a_message_for_another_corp_is_401_after_decrypting() {
    let (_, crypto, _) = inbound_and_crypto();
    let (query, body) = callback(
        &crypto,
        "ww-another-corp",
        &message("text", "<Content>x</Content>"),
    );
    let error = refused(&query, &body);
    assert!(
        matches!(error, InboundError::WrongRecipient { .. }),
        "{error}"
    );
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
}

/// A correctly signed POST of an arbitrary `<Encrypt>` text.
fn signed(encrypt: &str) -> (String, Vec<u8>) {
    let (_, crypto, _) = inbound_and_crypto();
    let signature = crypto.signature("1409659813", "2", encrypt);
    let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
    (
        format!("msg_signature={signature}&timestamp=1409659813&nonce=2"),
        body.into_bytes(),
    )
}

fn assert_400(error: InboundError, reason: &str) {
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error.to_string().contains(reason),
        "`{error}` should say `{reason}`"
    );
}

#[test]
fn broken_ciphertexts_are_400_naming_the_reason() {
    let (_, crypto, corp) = inbound_and_crypto();
    let (query, body) = signed("not base64 at all!");
    assert_400(refused(&query, &body), "base64");
    // 24 bytes: not a whole number of AES blocks.
    let (query, body) = signed("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_400(refused(&query, &body), "multiple of 16");
    // Truncated: a valid ciphertext cut by one block decrypts into bad padding.
    let whole = crypto.encrypt("<xml><A>1</A></xml>", &corp, [7; 16]);
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &whole).expect("b64");
    let cut = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &bytes[..bytes.len() - 16],
    );
    let (query, body) = signed(&cut);
    assert_400(refused(&query, &body), "padding");
}

#[test]
fn bad_padding_and_a_length_field_past_the_end_are_told_apart() {
    let (_, crypto, _) = inbound_and_crypto();
    let v = vector("wecom-official-decrypt-post");
    let key = aes_key(s(&v, "encoding_aes_key")).expect("key");
    let seal = |plain: &[u8]| {
        use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&key[..16]);
        let sealed = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
            .encrypt_padded_vec::<NoPadding>(plain);
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed)
    };
    // Pad byte 33: past WeCom's 32-byte block.
    let mut plain = vec![0u8; 64];
    plain[63] = 33;
    assert_eq!(crypto.decrypt(&seal(&plain)), Err(CryptoError::Padding(33)));
    // Length field says 1000 bytes; 12 follow the header.
    let mut plain = vec![0u8; 32];
    plain[16..20].copy_from_slice(&1000u32.to_be_bytes());
    plain.extend_from_slice(&[32u8; 32]);
    let (query, body) = signed(&seal(&plain));
    assert_400(refused(&query, &body), "length field 1000");
    // Shorter than the 20-byte header.
    let plain = [16u8; 32]
        .iter()
        .enumerate()
        .map(|(i, b)| if i < 16 { b'x' } else { *b })
        .collect::<Vec<_>>();
    assert_eq!(crypto.decrypt(&seal(&plain)), Err(CryptoError::Truncated));
}

#[test]
fn malformed_xml_and_doctype_are_400_and_no_entity_is_expanded() {
    let (query, _) = signed("x");
    // Only the body up to `<Encrypt>` is read before the signature is checked: malformed
    // there is 400, a body cut after it is judged by the signature.
    assert_400(refused(&query, b"<xml><Encrypt>abc</Encrpyt></xml>"), "XML");
    let cut = refused(&query, b"<xml><Encrypt>abc</Encrypt>");
    assert!(matches!(cut, InboundError::BadSignature), "{cut}");
    assert_400(refused(&query, b"not xml"), "XML");
    let bomb = br#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>"#;
    assert_400(refused(&query, bomb), "DOCTYPE");
    assert_400(
        refused(&query, b"<xml><Encrypt>&b;</Encrypt></xml>"),
        "undeclared entity",
    );
    // The same inside the decrypted message.
    let (inbound, crypto, corp) = inbound_and_crypto();
    let inner = r#"<!DOCTYPE xml [<!ENTITY x "boom">]><xml><MsgType>text</MsgType><Content>&x;</Content></xml>"#;
    let (query, body) = callback(&crypto, &corp, inner);
    let error = request(&inbound, http::Method::POST, &query, &body).expect_err("refused");
    assert_400(error, "DOCTYPE");
}

#[test]
fn missing_query_parameters_are_400_naming_the_parameter() {
    let (_, crypto, corp) = inbound_and_crypto();
    let (query, body) = callback(&crypto, &corp, &message("text", "<Content>x</Content>"));
    for name in ["msg_signature", "timestamp", "nonce"] {
        let without: Vec<&str> = query.split('&').filter(|p| !p.starts_with(name)).collect();
        assert_400(refused(&without.join("&"), &body), name);
    }
    let (inbound, _, _) = inbound_and_crypto();
    let error = request(
        &inbound,
        http::Method::GET,
        "msg_signature=a&timestamp=1&nonce=2",
        b"",
    )
    .expect_err("no echostr");
    assert_400(error, "echostr");
}

#[test]
fn the_config_from_the_issue_loads_verbatim_and_a_bad_key_is_named() {
    let yaml = r#"
corp_id: "wwxxxxxxxxxxxxxx"
secret: "s3cret"
agent_id: 1000002
token: "OPENCLAW"
encoding_aes_key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2BvC"
"#;
    let config: WeComConfig = serde_saphyr::from_str(yaml).expect("loads");
    assert!(
        config.validate("wechat_enterprise").is_empty(),
        "{:?}",
        config.validate("x")
    );
    assert_eq!(config.api_base, "https://qyapi.weixin.qq.com");
    assert_eq!(config.robot_limit.count, 20);
    assert_eq!(config.member_limit.count, 30);
    let bad: WeComConfig = serde_saphyr::from_str(&yaml.replace("BvC\"", "\"")).expect("loads");
    let problems = bad.validate("wechat_enterprise");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`wechat_enterprise.encoding_aes_key` must be 43 characters")),
        "{problems:?}"
    );
}

#[test]
fn compose_degrades_markdown_where_it_does_not_render_and_says_so() {
    use super::compose::{Channel, Part, compose};
    use clawdbot_core::proto::{Markdown, Segment, Text};
    let segments = vec![
        Segment {
            kind: Some(Kind::Text(Text {
                text: "Report: ".into(),
            })),
        },
        Segment {
            kind: Some(Kind::Markdown(Markdown {
                markdown: "**ok**".into(),
            })),
        },
    ];
    let (parts, notes) = compose(&segments, Channel::App { markdown: false });
    assert_eq!(
        parts,
        vec![Part::Body(
            serde_json::json!({"msgtype":"text","text":{"content":"Report: **ok**"}})
        )]
    );
    assert_eq!(
        notes,
        vec!["markdown sent as text: `markdown: false` for this app".to_string()]
    );
    let (parts, notes) = compose(&segments, Channel::App { markdown: true });
    assert_eq!(parts.len(), 2);
    assert!(notes.is_empty());
}

#[test]
fn decrypt_verify_decode_is_fast() {
    // A guard against accidental slowness (the benchmark is in loadtest/): generous bound.
    let (inbound, crypto, corp) = inbound_and_crypto();
    let (query, body) = callback(
        &crypto,
        &corp,
        &message("text", "<Content><![CDATA[hello there]]></Content>"),
    );
    let rounds = 2000;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let _ = single(request(&inbound, http::Method::POST, &query, &body).expect("ok"));
    }
    let per = start.elapsed() / rounds;
    eprintln!("wecom decrypt+verify+decode: {per:?} per message");
    assert!(per < std::time::Duration::from_millis(1), "{per:?}");
}

#[tokio::test]
async fn https_api_addresses_are_spoken_over_tls() {
    // No platform is reachable from here: an https address on a closed port must fail as a
    // connection error, not as "this client speaks no TLS".
    let v = vector("wecom-official-decrypt-post");
    let mut config = app(&v);
    config.api_base = "https://127.0.0.1:9".into();
    config.max_attempts = 1;
    let api = super::api::ApiClient::new(&config).expect("client with TLS");
    let (answer, _) = api
        .call("/cgi-bin/gettoken", &[], super::api::Body::None)
        .await;
    let error = answer.expect_err("closed port").to_string();
    assert!(error.contains("transport"), "{error}");
    assert!(!error.to_lowercase().contains("scheme"), "{error}");
}

/// `<xml>` + `<a>`×depth + `x` + `</a>`×depth + `</xml>`: quadratic in memory for a reader that
/// names fields by their path.
fn nesting(depth: usize) -> Vec<u8> {
    let mut body = b"<xml>".to_vec();
    body.extend(b"<a>".repeat(depth));
    body.push(b'x');
    body.extend(b"</a>".repeat(depth));
    body.extend(b"</xml>");
    body
}

#[test]
fn deep_nesting_is_400_naming_the_limit_before_the_signature_and_fast() {
    let query = "msg_signature=x&timestamp=1&nonce=1";
    for depth in [64_000, 200_000, 1_000_000] {
        let body = nesting(depth);
        let started = std::time::Instant::now();
        let error = refused(query, &body);
        let took = started.elapsed();
        assert_400(error, "deeper than the limit of 8 levels");
        // Linear and stopped at level 9: microseconds; generous for a loaded debug build.
        assert!(
            took < std::time::Duration::from_millis(50),
            "{depth}: {took:?}"
        );
    }
    // Many siblings: refused at the element limit, not read to the end.
    let mut wide = b"<xml>".to_vec();
    wide.extend(b"<a/>".repeat(100_000));
    wide.extend(b"<Encrypt>x</Encrypt></xml>");
    assert_400(refused(query, &wide), "limit of 512 elements");
}

#[test]
fn nesting_inside_the_decrypted_message_is_400_too() {
    let (inbound, crypto, corp) = inbound_and_crypto();
    let inner = String::from_utf8(nesting(1000)).expect("utf-8");
    let (query, body) = callback(&crypto, &corp, &inner);
    let error = request(&inbound, http::Method::POST, &query, &body).expect_err("refused");
    assert_400(error, "decrypted message: XML nested deeper");
}

#[test]
fn a_callback_signed_outside_the_window_is_401_naming_the_skew() {
    let (inbound, crypto, corp) = inbound_and_crypto();
    let encrypt = crypto.encrypt(&message("text", "<Content>x</Content>"), &corp, [1; 16]);
    for (timestamp, skew) in [("1409659413", "400 s"), ("1409660213", "-400 s")] {
        let signature = crypto.signature(timestamp, "5", &encrypt);
        let query = format!("msg_signature={signature}&timestamp={timestamp}&nonce=5");
        let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        let error =
            request(&inbound, http::Method::POST, &query, body.as_bytes()).expect_err("stale");
        assert!(
            matches!(error, InboundError::StaleSignature { .. }),
            "{error}"
        );
        assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
        assert!(error.to_string().contains(skew), "{error}");
    }
    // A timestamp that is no number is refused, signed or not.
    let signature = crypto.signature("soon", "5", &encrypt);
    let query = format!("msg_signature={signature}&timestamp=soon&nonce=5");
    let body = format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
    let error = request(&inbound, http::Method::POST, &query, body.as_bytes()).expect_err("bad");
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED, "{error}");
}

/// The callbacks of another project's test suite (wechatpy; see
/// `testkit/fixtures/external/wecom/SOURCES.md`), each encrypted and decoded into what
/// `expected.json` says: a message (conversation and text) or a notice (event type).
#[test]
fn callbacks_from_other_projects_decode_as_expected() {
    let fixtures = crate::external_fixtures::load("wecom");
    assert_eq!(fixtures.len(), 13, "every collected callback is listed");
    for crate::external_fixtures::Fixture { file, body, case } in fixtures {
        let envelope = decode(&body);
        match case["outcome"].as_str().expect("outcome") {
            "notice" => {
                assert_eq!(envelope.kind(), EventKind::Notice, "{file}");
                assert_eq!(
                    envelope.event_type,
                    case["event_type"].as_str().expect("type")
                );
            }
            "message" => {
                assert_eq!(envelope.kind(), EventKind::Message, "{file}");
                let conversation = envelope.conversation.clone().expect("conversation");
                assert_eq!(conversation.kind(), ConversationKind::Private, "{file}");
                assert_eq!(
                    format!("private:{}", conversation.id),
                    case["conversation"].as_str().expect("conversation"),
                    "{file}"
                );
                assert_eq!(
                    envelope.text,
                    case["text"].as_str().expect("text"),
                    "{file}"
                );
            }
            other => panic!("{file}: unknown outcome {other}"),
        }
    }
}
