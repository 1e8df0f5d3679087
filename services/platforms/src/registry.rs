//! The platforms clawdbot knows, each registered once.
//!
//! A platform folder exports one [`Platform`]: its three names and the function that reads its
//! config section into a [`Section`], which builds everything the platform serves — webhook
//! inbounds, outbounds, long-lived connections. [`PLATFORMS`] lists them; nothing outside a
//! platform's folder names a platform. Adding one is a new folder plus one line in that list,
//! and the compiler asks for every required method of [`Section`] the folder has not written.

use std::any::Any;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{Connection, Inbound, Outbound, OutboundError, PlatformServices};

/// One platform's registration.
#[derive(Debug)]
pub struct Platform {
    /// The platform name: stream field, metric label, `platform:` in targets, `--platform`.
    pub name: &'static str,
    /// Its top-level config key (what users of such gateways already write).
    pub config_key: &'static str,
    /// Its segment in callback routes (`/clawdbot/{route}/callback`).
    pub route: &'static str,
    /// Reads the section (YAML, as a JSON value) into its accounts.
    pub read: fn(serde_json::Value) -> ReadSection,
    /// The section's schema (keys, types, defaults, doc comments), from which the config
    /// reference (`docs/config.md`) is generated.
    pub schema: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
    /// Served with its defaults when the config has no section (the notify API: keys issued
    /// with `clawdbot security issue-key` work without one).
    pub served_without_section: bool,
}

/// A section read, or every problem found in it.
pub type ReadSection = Result<Arc<dyn Section>, Vec<ReadError>>;

/// Why a section could not be read.
#[derive(Debug)]
pub struct ReadError {
    /// Where inside the section (`api_root`, `[1]`), empty for the section as a whole.
    pub path: String,
    pub message: String,
}

impl ReadError {
    /// The problem as the config reports it: `` `onebot.api_root`: … ``.
    pub fn describe(&self, key: &str) -> String {
        match self.path.as_str() {
            "" => format!("`{key}`: {}", self.message),
            path if path.starts_with('[') => format!("`{key}{path}`: {}", self.message),
            path => format!("`{key}.{path}`: {}", self.message),
        }
    }
}

/// Every platform, in the order their accounts are built.
pub const PLATFORMS: &[Platform] = &[
    crate::onebot::PLATFORM,
    crate::qq::PLATFORM,
    crate::dingtalk::PLATFORM,
    crate::wecom::PLATFORM,
    crate::sandbox::PLATFORM,
    crate::notify::PLATFORM,
    crate::alertmanager::PLATFORM,
];

/// Outbounds of one section, by account id.
pub type AccountOutbounds = Vec<(String, Arc<dyn Outbound>)>;

/// A platform's config section, read: its accounts and what they serve.
pub trait Section: Send + Sync + std::fmt::Debug + AsAny + 'static {
    /// Returns every problem, each naming its key path under `key`.
    fn validate(&self, key: &str) -> Vec<String>;
    /// Whether the section has an account people chat with (not only a feed, like alerts).
    fn chats(&self) -> bool;
    /// The webhook inbounds of its accounts.
    fn inbounds(&self, services: &PlatformServices) -> Vec<Arc<dyn Inbound>>;
    /// The outbounds of its accounts, by account id.
    ///
    /// # Errors
    /// An outbound that cannot be built (an HTTP client, a missing shared state).
    fn outbounds(&self, services: &PlatformServices) -> Result<AccountOutbounds, OutboundError>;
    /// The long-lived connections of its accounts; none for a webhook-only platform.
    fn connections(&self, _services: &PlatformServices) -> Vec<Arc<dyn Connection>> {
        Vec::new()
    }
}

/// The section itself as `Any`, for the few callers that need its typed config
/// (`PlatformsConfig::section`); every section has it.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Returns the registration whose name, config key or route is `name`.
pub fn find(name: &str) -> Option<&'static Platform> {
    PLATFORMS
        .iter()
        .find(|p| p.name == name || p.config_key == name || p.route == name)
}

/// Reads a section of type `T`, naming the key path inside it in each error (every unknown
/// key, see [`crate::read_all`]).
pub(crate) fn read<T: DeserializeOwned + Section>(value: serde_json::Value) -> ReadSection {
    crate::read_all::read_all::<T>(value)
        .map(|section| Arc::new(section) as Arc<dyn Section>)
        .map_err(|problems| {
            problems
                .into_iter()
                .map(|problem| ReadError {
                    path: problem.path,
                    message: problem.message,
                })
                .collect()
        })
}

/// The outbounds of a platform whose accounts keep tokens or send limits in the shared state
/// (the bus): `build` makes one account's outbound with it.
///
/// # Errors
/// No shared state in `services`, or an outbound `build` refuses.
pub(crate) fn shared_outbounds<C: Clone, O: Outbound + 'static>(
    platform: &str,
    accounts: &crate::OneOrMany<C>,
    services: &PlatformServices,
    id: fn(&C) -> &str,
    build: fn(C, Arc<dyn clawdbot_core::shared::SharedState>) -> Result<O, OutboundError>,
) -> Result<AccountOutbounds, OutboundError> {
    accounts
        .iter()
        .map(|account| {
            let shared = services.shared.clone().ok_or_else(|| {
                OutboundError::InvalidReply(format!("{platform} needs the shared state (the bus)"))
            })?;
            let outbound: Arc<dyn Outbound> = Arc::new(build(account.clone(), shared)?);
            Ok((id(account).to_string(), outbound))
        })
        .collect()
}
