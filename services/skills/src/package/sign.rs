//! Skill signatures: Ed25519 over the archive's `SHA256SUMS`, which names every file's
//! checksum, so one signature covers the manifest (with its capabilities) and the component.
//!
//! Keys are written as base64: the private key is the 32-byte seed (keep it where the builds
//! run), the public key goes in the workers' `worker.wasm.trusted_keys`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The environment variable `clawdbot skill build` reads the private key from.
pub const SIGNING_KEY_ENV: &str = "CLAWDBOT_SKILL_SIGNING_KEY";

/// Who signed a package, and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureInfo {
    /// The signer's public key (base64).
    pub public_key: String,
    /// The signature over `SHA256SUMS` (base64).
    pub signature: String,
}

/// Makes a new key pair; returns (private, public), both base64.
pub fn keygen() -> (String, String) {
    let seed: [u8; 32] = rand::random();
    let key = SigningKey::from_bytes(&seed);
    (
        STANDARD.encode(seed),
        STANDARD.encode(key.verifying_key().as_bytes()),
    )
}

/// Parses a private key as `keygen` writes it.
///
/// # Errors
/// Not base64 of 32 bytes; `origin` names where it came from.
pub fn signing_key(text: &str, origin: &str) -> Result<SigningKey, String> {
    let seed: [u8; 32] = STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            format!("{origin}: not an Ed25519 private key (32 bytes, base64, as `clawdbot skill keygen` writes)")
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Signs the checksum list.
pub fn sign(key: &SigningKey, sums: &str) -> SignatureInfo {
    SignatureInfo {
        public_key: STANDARD.encode(key.verifying_key().as_bytes()),
        signature: STANDARD.encode(key.sign(sums.as_bytes()).to_bytes()),
    }
}

/// Checks that `info` is a valid signature of `sums` by its public key (not whether that key
/// is trusted: see [`check_trust`]).
///
/// # Errors
/// Malformed key or signature, or a signature that does not verify.
pub fn verify(info: &SignatureInfo, sums: &str) -> Result<(), String> {
    let key: [u8; 32] = STANDARD
        .decode(&info.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signature's public key is malformed")?;
    let key =
        VerifyingKey::from_bytes(&key).map_err(|_| "the signature's public key is invalid")?;
    let signature: [u8; 64] = STANDARD
        .decode(&info.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("the signature is malformed")?;
    key.verify(sums.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| {
            "the signature does not match the package: it was altered after signing".to_string()
        })
}

/// Whether a package signed with `signature` (or unsigned) may run under this trust policy.
///
/// # Errors
/// Unsigned, or signed by a key not in `trusted`, while `allow_unsigned` is off.
pub fn check_trust(
    signature: Option<&SignatureInfo>,
    trusted: &[String],
    allow_unsigned: bool,
) -> Result<(), String> {
    match signature {
        _ if allow_unsigned => Ok(()),
        None => Err("the skill is not signed, and `worker.wasm.allow_unsigned` is off (sign it: `clawdbot skill build --key FILE`)".into()),
        Some(info) if trusted.iter().any(|k| k.trim() == info.public_key) => Ok(()),
        Some(info) => Err(format!(
            "the skill is signed by `{}`, which is not in `worker.wasm.trusted_keys`",
            info.public_key
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_until_the_sums_change_and_trust_is_by_key() {
        let (private, public) = keygen();
        let key = signing_key(&private, "test").expect("key");
        let info = sign(&key, "abc  skill.wasm\n");
        assert_eq!(info.public_key, public);
        assert!(verify(&info, "abc  skill.wasm\n").is_ok());
        assert!(verify(&info, "abd  skill.wasm\n").is_err());
        assert!(check_trust(Some(&info), std::slice::from_ref(&public), false).is_ok());
        let (_, other) = keygen();
        let untrusted = check_trust(Some(&info), &[other], false).expect_err("untrusted");
        assert!(
            untrusted.contains("not in `worker.wasm.trusted_keys`"),
            "{untrusted}"
        );
        assert!(check_trust(None, &[public], false).is_err());
        assert!(check_trust(None, &[], true).is_ok());
        assert!(
            signing_key("short", "`--key k`")
                .expect_err("bad")
                .contains("`--key k`")
        );
    }
}
