//! Where a proactive message goes (an alert, a notice): typed once in `clawdbot_core::notice`,
//! shared with the notify API's inbound check.

pub use clawdbot_core::notice::Target;
