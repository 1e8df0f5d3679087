//! clawdbot-skills: the built-in skills, one folder each, and the registry.
//!
//! Adding a built-in skill means one folder plus one line in [`builtin`].

pub mod ai;
pub mod alert_forward;
pub mod echo;
pub mod faq;
pub mod help;
pub mod http;
pub mod notify;
mod options;
pub mod package;
pub mod remote;
pub mod shell;
mod target;

use std::collections::BTreeMap;
use std::sync::Arc;

use clawdbot_core::skill::Skill;

pub use options::Options;

/// The names of the built-in skills, in routing order.
pub const BUILTIN: &[&str] = &[
    echo::NAME,
    faq::NAME,
    http::NAME,
    alert_forward::NAME,
    notify::NAME,
    ai::NAME,
    shell::NAME,
    help::NAME,
];

/// Returns every built-in skill, in routing order, each built with its options (by skill
/// name; `clawdbot_config::skill_options` gives them from the config).
///
/// # Errors
/// Every problem with the skills' options, each naming its key path.
pub fn builtin(skills: &BTreeMap<String, Options>) -> Result<Vec<Arc<dyn Skill>>, Vec<String>> {
    let empty = Options::new();
    let options = |name: &str| skills.get(name).unwrap_or(&empty);
    let mut problems = Vec::new();
    let mut built: Vec<Arc<dyn Skill>> = vec![Arc::new(echo::EchoSkill)];
    match faq::FaqSkill::new(options(faq::NAME)) {
        Ok(skill) => built.push(Arc::new(skill)),
        Err(problem) => problems.push(problem),
    }
    match http::HttpSkill::new(options(http::NAME)) {
        Ok(skill) => built.push(Arc::new(skill)),
        Err(problem) => problems.push(problem),
    }
    match alert_forward::AlertForwardSkill::new(options(alert_forward::NAME)) {
        Ok(skill) => built.push(Arc::new(skill)),
        Err(problem) => problems.push(problem),
    }
    match notify::NotifySkill::new(options(notify::NAME)) {
        Ok(skill) => built.push(Arc::new(skill)),
        Err(problem) => problems.push(problem),
    }
    match ai::AiSkill::new(options(ai::NAME)) {
        Ok(skill) => built.push(Arc::new(skill)),
        Err(problem) => problems.push(problem),
    }
    match shell::ShellSkill::new(options(shell::NAME)) {
        Ok(skill) => built.push(Arc::new(skill)),
        Err(problem) => problems.push(problem),
    }
    built.push(Arc::new(help::HelpSkill));
    if problems.is_empty() {
        Ok(built)
    } else {
        Err(problems)
    }
}

/// Connects the remote skills (by name: address and options; `clawdbot_config::remote_skills`
/// gives them from the config), in name order.
///
/// # Errors
/// Every problem with their options or addresses, each naming its key path.
pub async fn connect_remote(
    remotes: &BTreeMap<String, (String, Options)>,
) -> Result<Vec<Arc<dyn Skill>>, Vec<String>> {
    let mut built: Vec<Arc<dyn Skill>> = Vec::new();
    let mut problems = Vec::new();
    for (name, (address, options)) in remotes {
        match remote::RemoteSkill::connect(name, address, options).await {
            Ok(skill) => built.push(Arc::new(skill)),
            Err(problem) => problems.push(problem),
        }
    }
    if problems.is_empty() {
        Ok(built)
    } else {
        Err(problems)
    }
}
