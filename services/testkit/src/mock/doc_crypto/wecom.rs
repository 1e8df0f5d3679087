//! WeCom callback crypto, from developer.work.weixin.qq.com/document/path/90968 (加解密方案说明):
//! - `msg_signature = sha1_hex(concat(sort([token, timestamp, nonce, msg_encrypt])))`;
//! - `AESKey = base64_decode(EncodingAESKey + "=")` (32 bytes), `IV = AESKey[0..16]`;
//! - plaintext = random(16) || msg_len (u32, network order) || msg || receiveid;
//! - AES-256-CBC with PKCS#7 padding to a multiple of **32** bytes; then standard base64.

use aes::Aes256;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use sha1::{Digest, Sha1};

/// The WeCom document's padding block: 32 bytes, not AES's 16.
const PAD_BLOCK: usize = 32;

/// Decodes the EncodingAESKey: its 43rd character carries bits past the 32nd byte, which the
/// official samples ignore (PHP's and Java's base64 decoders are lenient), so this one is too.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// An app's callback keys.
#[derive(Clone)]
pub struct CallbackKeys {
    token: String,
    aes_key: [u8; 32],
}

impl CallbackKeys {
    /// Keys from the console's Token and EncodingAESKey (43 characters).
    ///
    /// # Errors
    /// The EncodingAESKey does not decode to 32 bytes.
    pub fn new(token: &str, encoding_aes_key: &str) -> Result<Self, String> {
        let bytes = LENIENT
            .decode(format!("{encoding_aes_key}="))
            .map_err(|e| format!("EncodingAESKey is not base64: {e}"))?;
        let aes_key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("EncodingAESKey decodes to {} bytes, not 32", b.len()))?;
        Ok(Self {
            token: token.to_string(),
            aes_key,
        })
    }

    /// `msg_signature` over the four sorted strings.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypted: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypted];
        parts.sort_unstable();
        hex::encode(Sha1::digest(parts.concat().as_bytes()))
    }

    /// Encrypts `message` for `receive_id` with the given 16 random bytes; base64.
    pub fn encrypt(&self, message: &str, receive_id: &str, random: [u8; 16]) -> String {
        let mut plain = random.to_vec();
        let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
        plain.extend_from_slice(&length.to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(receive_id.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.resize(plain.len() + pad, u8::try_from(pad).unwrap_or(0));

        let cipher = self.cipher();
        let mut previous: [u8; 16] = self.iv();
        for chunk in plain.chunks_exact_mut(16) {
            for (byte, chained) in chunk.iter_mut().zip(previous) {
                *byte ^= chained;
            }
            let block: &mut [u8; 16] = chunk.try_into().unwrap_or_else(|_| unreachable!());
            cipher.encrypt_block(block.into());
            previous = *block;
        }
        STANDARD.encode(plain)
    }

    /// Decrypts a base64 `msg_encrypt`; returns (message, receive_id).
    ///
    /// # Errors
    /// Not base64, not whole blocks, bad padding, or a length past the end.
    pub fn decrypt(&self, encrypted: &str) -> Result<(String, String), String> {
        let mut data = STANDARD
            .decode(encrypted)
            .map_err(|e| format!("not base64: {e}"))?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(format!("{} bytes is not whole AES blocks", data.len()));
        }
        let cipher = self.cipher();
        let mut previous: [u8; 16] = self.iv();
        for chunk in data.chunks_exact_mut(16) {
            let block: &mut [u8; 16] = chunk.try_into().unwrap_or_else(|_| unreachable!());
            let sealed = *block;
            cipher.decrypt_block(block.into());
            for (byte, chained) in block.iter_mut().zip(previous) {
                *byte ^= chained;
            }
            previous = sealed;
        }
        let pad = usize::from(*data.last().unwrap_or(&0));
        if !(1..=PAD_BLOCK).contains(&pad) || pad > data.len() {
            return Err(format!("padding byte {pad} is not 1..=32"));
        }
        data.truncate(data.len() - pad);
        let header: [u8; 4] = data
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .ok_or("shorter than random + length")?;
        let end = 20 + usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
        let message = data.get(20..end).ok_or("message length past the end")?;
        let receive_id = data.get(end..).unwrap_or_default();
        Ok((
            String::from_utf8_lossy(message).into_owned(),
            String::from_utf8_lossy(receive_id).into_owned(),
        ))
    }

    fn cipher(&self) -> Aes256 {
        Aes256::new(&self.aes_key.into())
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.aes_key[..16]);
        iv
    }
}
