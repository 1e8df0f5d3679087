//! Media for app messages: a segment's `file_id` is a WeCom media_id already; a `url`
//! (`http(s)://` or `base64://`) is fetched and uploaded through `media/upload`, and the
//! media_id is cached for its 3-day life so that the same picture is uploaded once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use clawdbot_core::proto::Media;
use clawdbot_core::shared::SharedState;
use sha2::{Digest, Sha256};

use crate::OutboundError;
use crate::token::shared_error;

/// WeCom keeps a media_id for 3 days; reuse it for a little less.
const MEDIA_ID_LIFE: Duration = Duration::from_secs(3 * 24 * 3600 - 3600);
/// The largest file WeCom takes (files: 20 MB).
pub const MAX_MEDIA_BYTES: usize = 20 * 1024 * 1024;

/// Returns the bytes a media segment points at.
///
/// # Errors
/// No URL, an unreadable or too large one (`InvalidReply`), or the download failing
/// (`Unavailable`).
pub async fn load_bytes(client: &reqwest::Client, media: &Media) -> Result<Vec<u8>, OutboundError> {
    let url = media.url.as_str();
    if let Some(encoded) = url.strip_prefix("base64://") {
        return base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| OutboundError::InvalidReply("media `base64://` is not base64".into()));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(OutboundError::InvalidReply(format!(
            "media needs a WeCom media id, an http(s) URL or base64://, got `{}`",
            url.chars().take(60).collect::<String>()
        )));
    }
    let unavailable = |reason: String| OutboundError::Unavailable {
        reason: format!("downloading {url}: {reason}"),
        attempts: 1,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    if !response.status().is_success() {
        return Err(unavailable(format!("http {}", response.status())));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    if bytes.len() > MAX_MEDIA_BYTES {
        return Err(OutboundError::InvalidReply(format!(
            "media at {url} is {} bytes, over WeCom's {MAX_MEDIA_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

/// Where uploaded media ids are remembered, shared by every replica.
pub struct MediaIds {
    shared: Arc<dyn SharedState>,
    scope: String,
}

impl MediaIds {
    /// Returns the cache of one corp (media ids are shared by the apps of a corp).
    pub fn new(corp_id: &str, shared: Arc<dyn SharedState>) -> Self {
        Self {
            shared,
            scope: format!("wecom:media:{corp_id}"),
        }
    }

    fn key(&self, kind: &str, url: &str) -> String {
        format!(
            "{}:{kind}:{}",
            self.scope,
            hex::encode(Sha256::digest(url.as_bytes()))
        )
    }

    /// Returns the cached media id of `url` as `kind`, if any.
    ///
    /// # Errors
    /// The shared state is unreachable.
    pub async fn get(&self, kind: &str, url: &str) -> Result<Option<String>, OutboundError> {
        self.shared
            .get_value(&self.key(kind, url))
            .await
            .map_err(shared_error)
    }

    /// Remembers `media_id` for `url` as `kind`.
    ///
    /// # Errors
    /// The shared state is unreachable.
    pub async fn put(&self, kind: &str, url: &str, media_id: &str) -> Result<(), OutboundError> {
        self.shared
            .put_value(&self.key(kind, url), media_id, MEDIA_ID_LIFE)
            .await
            .map_err(shared_error)
    }
}

/// A file name for an upload: the segment's, else one from the kind and the MIME type.
pub fn file_name(media: &Media, kind: &str) -> String {
    if !media.name.is_empty() {
        return media.name.clone();
    }
    let extension = match (kind, media.mime.as_str()) {
        (_, "image/png") => "png",
        ("image", _) => "jpg",
        ("voice", _) => "amr",
        ("video", _) => "mp4",
        _ => "bin",
    };
    format!("{kind}.{extension}")
}
