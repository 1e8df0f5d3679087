//! Where a command finds the deployment it acts on when neither `--config` nor
//! `CLAWDBOT_CONFIG` names one: `./clawdbot.yaml` (or `.yml`), then `/etc/clawdbot/` (the
//! image's config directory). An admin command that finds none acts on the data file of a local
//! `clawdbot up` started in this directory (`./clawdbot.db`) if there is one, and says so;
//! otherwise it refuses, rather than create an empty store and report success on it.

use std::path::{Path, PathBuf};

use crate::backends::DEFAULT_SQLITE_PATH;

/// The places looked at, in order.
pub const PLACES: [&str; 3] = ["clawdbot.yaml", "clawdbot.yml", "/etc/clawdbot"];

/// What a command without `--config` acts on.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A config file or directory.
    Config(PathBuf),
    /// No config, but the data file of a local `clawdbot up`.
    LocalUp(PathBuf),
    Nothing,
}

/// Looks in [`PLACES`], then for a local `clawdbot up`'s data file.
pub fn find() -> Found {
    if let Some(place) = PLACES.iter().map(Path::new).find(|place| place.exists()) {
        return Found::Config(place.to_path_buf());
    }
    let local = Path::new(DEFAULT_SQLITE_PATH);
    if local.exists() {
        return Found::LocalUp(local.to_path_buf());
    }
    Found::Nothing
}

/// The refusal when nothing is found, naming where it looked.
pub fn nothing_found(command: &str) -> String {
    format!(
        "`clawdbot {command}`: no deployment to act on. Pass --config FILE (or set CLAWDBOT_CONFIG); \
         looked for {} and for ./{DEFAULT_SQLITE_PATH} of a `clawdbot up` started here, and found none",
        PLACES
            .map(|p| if p.starts_with('/') {
                format!("{p}/")
            } else {
                format!("./{p}")
            })
            .join(", ")
    )
}
