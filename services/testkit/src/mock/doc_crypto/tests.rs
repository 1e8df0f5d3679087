//! Each mock crypto function against the platforms' published vectors (official samples,
//! wechatpy's and the QQ bot docs' examples), none of which clawdbot produced.

use serde_json::Value;

use super::{dingtalk, qq, wecom};

fn vectors(json: &str) -> Vec<Value> {
    let all: Value = serde_json::from_str(json).expect("vector file is JSON");
    all["vectors"].as_array().cloned().unwrap_or_default()
}

/// A string or number field as text (the vector files use both for timestamps).
fn scalar(vector: &Value, key: &str) -> String {
    match &vector[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => panic!("{} has no {key}", vector["id"]),
    }
}

fn text<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no {key}", vector["id"]))
}

#[test]
fn wecom_signatures_decryption_and_encryption_match_the_official_vectors() {
    let all = vectors(include_str!(
        "../../../../platforms/src/wecom/fixtures/wecom.vectors.json"
    ));
    assert_eq!(all.len(), 5, "every WeCom vector is checked");
    for v in &all {
        let keys = wecom::CallbackKeys::new(text(v, "token"), text(v, "encoding_aes_key"))
            .expect("vector key decodes");
        let sealed = [
            "echostr_urldecoded",
            "echostr",
            "encrypt",
            "expected_encrypt",
        ]
        .iter()
        .find_map(|k| v[*k].as_str())
        .expect("vector has a ciphertext");
        assert_eq!(
            keys.signature(&scalar(v, "timestamp"), &scalar(v, "nonce"), sealed),
            text(v, "expected_msg_signature"),
            "{}",
            v["id"]
        );
        let (message, receive_id) = keys.decrypt(sealed).expect("vector decrypts");
        let expected = [
            "expected_plaintext_response_body",
            "expected_plaintext",
            "reply_plaintext",
        ]
        .iter()
        .find(|k| !v[**k].is_null())
        .map(|k| scalar(v, k))
        .expect("vector has a plaintext");
        assert_eq!(message, expected, "{}", v["id"]);
        assert_eq!(receive_id, text(v, "receiveid"), "{}", v["id"]);
        // Where the vector names its random bytes, encryption reproduces the ciphertext exactly.
        if let Some(random) = ["decoded_random16_ascii", "random16_ascii"]
            .iter()
            .find_map(|k| v[*k].as_str())
        {
            let random: [u8; 16] = random.as_bytes().try_into().expect("16 ASCII bytes");
            assert_eq!(
                keys.encrypt(&message, &receive_id, random),
                sealed,
                "{}",
                v["id"]
            );
        }
    }
}

#[test]
fn wecom_rejects_a_key_that_is_not_43_base64_characters() {
    assert!(wecom::CallbackKeys::new("t", "short").is_err());
    let keys = wecom::CallbackKeys::new("t", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")
        .expect("official key");
    assert!(keys.decrypt("not base64!").is_err());
    assert!(keys.decrypt("AAAA").is_err(), "3 bytes are not a block");
}

#[test]
fn dingtalk_signs_like_the_vectors() {
    let all = vectors(include_str!(
        "../../../../platforms/src/dingtalk/fixtures/dingtalk.vectors.json"
    ));
    let signed: Vec<_> = all
        .iter()
        .filter(|v| v["expected_sign_base64"].is_string())
        .collect();
    assert!(signed.len() >= 2);
    for v in signed {
        let timestamp = scalar(v, "timestamp");
        assert_eq!(
            dingtalk::sign(text(v, "secret"), &timestamp),
            text(v, "expected_sign_base64"),
            "{}",
            v["id"]
        );
    }
}

#[test]
fn qq_derives_keys_and_signs_like_the_bot_docs() {
    let all = vectors(include_str!(
        "../../../../platforms/src/qq/fixtures/qq.vectors.json"
    ));
    let mut checked = 0;
    for v in &all {
        let key = qq::key_from_secret(text(v, "secret"));
        if let Some(public) = v["public_key_hex"].as_str() {
            assert_eq!(
                hex::encode(key.verifying_key().to_bytes()),
                public,
                "{}",
                v["id"]
            );
        }
        let (message_ts, body, expected) = if let Some(body) = v["body_actually_signed"].as_str() {
            (
                scalar(v, "timestamp"),
                body.to_string(),
                text(v, "expected_signature_hex"),
            )
        } else if let Some(body) = v["body"].as_str() {
            (
                scalar(v, "timestamp"),
                body.to_string(),
                text(v, "expected_signature_hex"),
            )
        } else if let Some(token) = v["plain_token"].as_str() {
            (
                text(v, "event_ts").to_string(),
                token.to_string(),
                text(v, "expected_signature_hex"),
            )
        } else {
            let d = &serde_json::from_str::<Value>(text(v, "request_body")).expect("JSON")["d"];
            let signature = v["expected_response_body"]["signature"]
                .as_str()
                .expect("signature");
            (
                text(d, "event_ts").to_string(),
                text(d, "plain_token").to_string(),
                signature,
            )
        };
        assert_eq!(
            qq::sign(&key, &message_ts, body.as_bytes()),
            expected,
            "{}",
            v["id"]
        );
        checked += 1;
    }
    assert_eq!(checked, all.len());
}

#[test]
fn url_encoding_escapes_base64_punctuation() {
    assert_eq!(super::url_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    assert_eq!(super::url_encode("A-z_0.9~"), "A-z_0.9~");
}
