//! WeCom's callback crypto (WXBizMsgCrypt): the SHA-1 `msg_signature` and AES-256-CBC with
//! WeCom's own padding and framing. Vectors: `fixtures/wecom.vectors.json`.
//!
//! - signature: `sha1_hex(sorted(token, timestamp, nonce, encrypt).concat())`;
//! - key: `base64(EncodingAESKey + "=")` (32 bytes), IV: the key's first 16 bytes;
//! - plaintext: `random(16) || len (u32 BE) || msg || receive_id`, padded PKCS#7-style to a
//!   multiple of **32** bytes (pad values 1..=32, so a library's 16-byte PKCS#7 would refuse
//!   the official sample, whose pad is 30).

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// WeCom pads to this block size, not AES's 16.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;

/// Why a ciphertext did not open. Each names what was wrong, for the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext length {0} is not a positive multiple of 16")]
    Length(usize),
    #[error("bad padding (last byte {0})")]
    Padding(u8),
    #[error("plaintext shorter than its 20-byte header")]
    Truncated,
    #[error("length field {declared} runs past the end ({available} bytes after the header)")]
    LengthField { declared: usize, available: usize },
    #[error("message is not UTF-8")]
    NotUtf8,
}

/// A decrypted callback: the message and the id it was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub message: String,
    /// CorpID for self-built apps (`""` for the internal AI bot).
    pub receive_id: String,
}

/// One app's token and AES key.
#[derive(Clone)]
pub struct WeComCrypto {
    token: String,
    key: [u8; 32],
}

impl std::fmt::Debug for WeComCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WeComCrypto { .. }")
    }
}

/// Returns the 32-byte AES key of an EncodingAESKey, or why it is not one.
///
/// # Errors
/// Not 43 characters of base64, or not decoding to 32 bytes.
pub fn aes_key(encoding_aes_key: &str) -> Result<[u8; 32], String> {
    if encoding_aes_key.len() != 43 {
        return Err(format!(
            "must be 43 characters, got {}",
            encoding_aes_key.len()
        ));
    }
    // Lenient about the last character's unused bits: WeCom's keys do not zero them.
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = lenient
        .decode(format!("{encoding_aes_key}="))
        .map_err(|_| "is not base64 (letters and digits)".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "does not decode to 32 bytes".to_string())
}

impl WeComCrypto {
    /// Returns the crypto for `token` and the 32-byte `key` (see [`aes_key`]).
    pub fn new(token: &str, key: [u8; 32]) -> Self {
        Self {
            token: token.to_string(),
            key,
        }
    }

    /// Returns the `msg_signature` of `encrypt` (the POST `<Encrypt>` or the GET `echostr`).
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        parts.sort_unstable();
        let mut sha = Sha1::new();
        for part in parts {
            sha.update(part.as_bytes());
        }
        hex::encode(sha.finalize())
    }

    /// Returns whether `signature` is the one WeCom computes. Compares digests, not strings,
    /// so that the time taken says nothing about how much of a guess was right.
    pub fn verify(&self, signature: &str, timestamp: &str, nonce: &str, encrypt: &str) -> bool {
        let expected = self.signature(timestamp, nonce, encrypt);
        Sha1::digest(expected.as_bytes()) == Sha1::digest(signature.to_ascii_lowercase().as_bytes())
    }

    /// Decrypts a base64 ciphertext into its message and receive id.
    ///
    /// # Errors
    /// See [`CryptoError`].
    pub fn decrypt(&self, ciphertext: &str) -> Result<Opened, CryptoError> {
        let data = STANDARD
            .decode(ciphertext.trim())
            .map_err(|_| CryptoError::Base64)?;
        if data.is_empty() || data.len() % AES_BLOCK != 0 {
            return Err(CryptoError::Length(data.len()));
        }
        let plain = cbc::Decryptor::<aes::Aes256>::new(&self.key.into(), &self.iv().into())
            .decrypt_padded_vec::<NoPadding>(&data)
            .map_err(|_| CryptoError::Length(data.len()))?;
        let pad = plain.last().copied().unwrap_or(0);
        let pad_len = usize::from(pad);
        let padding_ok = (1..=PAD_BLOCK).contains(&pad_len)
            && pad_len <= plain.len()
            && plain[plain.len() - pad_len..].iter().all(|b| *b == pad);
        if !padding_ok {
            return Err(CryptoError::Padding(pad));
        }
        let content = &plain[..plain.len() - pad_len];
        let header = content.get(..20).ok_or(CryptoError::Truncated)?;
        let declared =
            u32::from_be_bytes([header[16], header[17], header[18], header[19]]) as usize;
        let rest = &content[20..];
        if declared > rest.len() {
            return Err(CryptoError::LengthField {
                declared,
                available: rest.len(),
            });
        }
        let (message, receive_id) = rest.split_at(declared);
        Ok(Opened {
            message: String::from_utf8(message.to_vec()).map_err(|_| CryptoError::NotUtf8)?,
            receive_id: String::from_utf8(receive_id.to_vec()).map_err(|_| CryptoError::NotUtf8)?,
        })
    }

    /// Encrypts `message` for `receive_id` with the 16 random bytes `random` (fixed in tests to
    /// reproduce the vectors, fresh for every real reply).
    pub fn encrypt(&self, message: &str, receive_id: &str, random: [u8; 16]) -> String {
        let mut plain = Vec::with_capacity(20 + message.len() + receive_id.len() + PAD_BLOCK);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(receive_id.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.resize(plain.len() + pad, pad as u8);
        let sealed = cbc::Encryptor::<aes::Aes256>::new(&self.key.into(), &self.iv().into())
            .encrypt_padded_vec::<NoPadding>(&plain);
        STANDARD.encode(sealed)
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }
}
