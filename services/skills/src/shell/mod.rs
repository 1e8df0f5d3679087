//! `system.shell`: `/shell <name>` runs one command from an allowlist in the config and replies
//! with its output. Admins only (the manifest says so, whatever the permissions file says), and
//! off until switched on (`enabled: true` or `clawdbot skill enable system.shell`).
//!
//! ```yaml
//! skills:
//!   system.shell:
//!     enabled: true
//!     commands:
//!       uptime: ["uptime"]
//!       disk: ["df", "-h", "/"]
//! ```
//! Only the listed programs with their listed arguments run: nothing the user types reaches a
//! shell or an argument list. Output is cut at [`MAX_OUTPUT_CHARS`]; a command that runs longer
//! than [`TIMEOUT`] is killed.

use std::collections::BTreeMap;
use std::time::Duration;

use clawdbot_core::proto::{Envelope, Reply, Segment};
use clawdbot_core::skill::{
    Manifest, Skill, SkillContext, SkillError, Triggers, command_arguments,
};
use serde::Deserialize;

use crate::options::{Options, parse};

/// The skill's name.
pub const NAME: &str = "system.shell";
const COMMAND: &str = "/shell";
/// Longest reply, in characters.
pub const MAX_OUTPUT_CHARS: usize = 2000;
/// Longest run of one command.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellOptions {
    #[serde(default)]
    commands: BTreeMap<String, Vec<String>>,
}

/// The allowlisted-command skill.
pub struct ShellSkill {
    manifest: Manifest,
    commands: BTreeMap<String, Vec<String>>,
}

impl ShellSkill {
    /// Builds the skill from its options.
    ///
    /// # Errors
    /// Malformed options or an empty command, naming the key path.
    pub fn new(options: &Options) -> Result<Self, String> {
        let parsed: ShellOptions = parse(NAME, options)?;
        if let Some((name, _)) = parsed.commands.iter().find(|(_, argv)| argv.is_empty()) {
            return Err(format!(
                "`skills.{NAME}.commands.{name}` needs a program, like [\"uptime\"]"
            ));
        }
        let names: Vec<&str> = parsed.commands.keys().map(String::as_str).collect();
        let manifest = Manifest {
            name: NAME.to_string(),
            description: format!(
                "/shell <{}>: runs an allowlisted command (admins)",
                names.join("|")
            ),
            version: env!("CARGO_PKG_VERSION").to_string(),
            triggers: Triggers {
                commands: vec![COMMAND.to_string()],
                ..Default::default()
            },
            platforms: Vec::new(),
            enabled_by_default: false,
            admin_only: true,
        };
        Ok(Self {
            manifest,
            commands: parsed.commands,
        })
    }

    async fn run(&self, argv: &[String]) -> String {
        let Some((program, args)) = argv.split_first() else {
            return "empty command".to_string();
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output();
        let output = match tokio::time::timeout(TIMEOUT, child).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => return format!("cannot run {program}: {error}"),
            Err(_) => {
                return format!(
                    "{program} ran longer than {} s and was stopped",
                    TIMEOUT.as_secs()
                );
            }
        };
        let mut text = String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_string();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(stderr.trim_end());
        }
        if !output.status.success() {
            text.push_str(&format!(
                "\n(exit status {})",
                output.status.code().unwrap_or(-1)
            ));
        }
        let text = text.trim().to_string();
        if text.chars().count() > MAX_OUTPUT_CHARS {
            let cut: String = text.chars().take(MAX_OUTPUT_CHARS).collect();
            format!("{cut}\n… (cut)")
        } else if text.is_empty() {
            "(no output)".to_string()
        } else {
            text
        }
    }
}

#[async_trait::async_trait]
impl Skill for ShellSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let name = command_arguments(&msg.text, COMMAND)
            .unwrap_or_default()
            .trim();
        let text = match self.commands.get(name) {
            Some(argv) => {
                tracing::info!(target: "audit", skill = NAME, command = name, user_id = ?msg.sender.as_ref().map(|s| &s.user_id), "allowlisted command run");
                self.run(argv).await
            }
            None => {
                let names: Vec<&str> = self.commands.keys().map(String::as_str).collect();
                format!("usage: /shell <{}>", names.join("|"))
            }
        };
        Ok(vec![msg.reply(NAME, 0, vec![Segment::text(text)])])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill() -> ShellSkill {
        let serde_json::Value::Object(options) = serde_json::json!({"commands": {
            "hello": ["echo", "hi there"],
            "fails": ["sh", "-c", "echo oops >&2; exit 3"],
        }}) else {
            panic!("object")
        };
        ShellSkill::new(&options).expect("valid")
    }

    async fn ask(text: &str) -> String {
        let msg = Envelope {
            id: "e".into(),
            text: text.into(),
            ..Default::default()
        };
        let replies = skill()
            .handle(&msg, &SkillContext::default())
            .await
            .expect("handled");
        replies[0].segments[0].as_text().expect("text").to_string()
    }

    #[tokio::test]
    async fn runs_only_allowlisted_commands_with_their_own_arguments() {
        assert_eq!(ask("/shell hello").await, "hi there");
        assert_eq!(ask("/shell fails").await, "oops\n(exit status 3)");
        assert_eq!(
            ask("/shell hello; rm -rf /").await,
            "usage: /shell <fails|hello>",
            "typed text never reaches a shell"
        );
        assert_eq!(ask("/shell").await, "usage: /shell <fails|hello>");
    }

    #[test]
    fn admins_only_and_off_by_default() {
        let manifest = skill().manifest().clone();
        assert!(manifest.admin_only);
        assert!(!manifest.enabled_by_default);
    }
}
