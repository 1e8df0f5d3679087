//! `faq`: answers customer questions from a table in the config — keywords or a regular
//! expression per entry, the first matching entry answers.
//!
//! ```yaml
//! skills:
//!   faq:
//!     entries:
//!       - keywords: ["price", "价格"]
//!         answer: "Plans start at ¥99/month: https://example.com/pricing"
//!       - pattern: "(?i)refund|退款"
//!         answer: "**Refunds** within 7 days, no questions asked."
//!         markdown: true
//! ```

use clawdbot_core::proto::{Envelope, Markdown, Reply, Segment, segment::Kind as SegmentKind};
use clawdbot_core::skill::{Manifest, Skill, SkillContext, SkillError, Triggers};
use regex::Regex;
use serde::Deserialize;

use crate::options::{Options, parse};

/// The skill's name.
pub const NAME: &str = "faq";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqOptions {
    #[serde(default)]
    entries: Vec<EntryOptions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryOptions {
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    pattern: Option<String>,
    answer: String,
    #[serde(default)]
    markdown: bool,
}

struct Entry {
    keywords: Vec<String>,
    pattern: Option<Regex>,
    answer: Segment,
}

/// The FAQ skill.
pub struct FaqSkill {
    manifest: Manifest,
    entries: Vec<Entry>,
}

impl FaqSkill {
    /// Builds the skill from its options; with no entries it is off by default.
    ///
    /// # Errors
    /// Malformed options or an invalid pattern, naming the key path.
    pub fn new(options: &Options) -> Result<Self, String> {
        let parsed: FaqOptions = parse(NAME, options)?;
        let mut entries = Vec::with_capacity(parsed.entries.len());
        for (index, entry) in parsed.entries.into_iter().enumerate() {
            if entry.keywords.is_empty() && entry.pattern.is_none() {
                return Err(format!(
                    "`skills.{NAME}.entries[{index}]` needs `keywords` or `pattern`"
                ));
            }
            let pattern = entry
                .pattern
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|error| format!("`skills.{NAME}.entries[{index}].pattern`: {error}"))?;
            let answer = if entry.markdown {
                Segment {
                    kind: Some(SegmentKind::Markdown(Markdown {
                        markdown: entry.answer,
                    })),
                }
            } else {
                Segment::text(entry.answer)
            };
            let keywords = entry.keywords.iter().map(|k| k.to_lowercase()).collect();
            entries.push(Entry {
                keywords,
                pattern,
                answer,
            });
        }
        let manifest = Manifest {
            name: NAME.to_string(),
            description: "answers common questions (just ask)".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            triggers: Triggers {
                keywords: entries.iter().flat_map(|e| e.keywords.clone()).collect(),
                patterns: entries
                    .iter()
                    .filter_map(|e| e.pattern.as_ref().map(|p| p.as_str().to_string()))
                    .collect(),
                ..Default::default()
            },
            platforms: Vec::new(),
            enabled_by_default: !entries.is_empty(),
            admin_only: false,
        };
        Ok(Self { manifest, entries })
    }
}

#[async_trait::async_trait]
impl Skill for FaqSkill {
    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    async fn handle(&self, msg: &Envelope, _cx: &SkillContext) -> Result<Vec<Reply>, SkillError> {
        let lowered = msg.text.to_lowercase();
        let found = self.entries.iter().find(|entry| {
            entry.keywords.iter().any(|k| lowered.contains(k.as_str()))
                || entry
                    .pattern
                    .as_ref()
                    .is_some_and(|p| p.is_match(&msg.text))
        });
        Ok(found
            .map(|entry| vec![msg.reply(NAME, 0, vec![entry.answer.clone()])])
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(options: serde_json::Value) -> Result<FaqSkill, String> {
        let serde_json::Value::Object(map) = options else {
            panic!("object")
        };
        FaqSkill::new(&map)
    }

    #[tokio::test]
    async fn the_first_matching_entry_answers() {
        let faq = skill(serde_json::json!({"entries": [
            {"keywords": ["Price", "价格"], "answer": "from 99"},
            {"pattern": "(?i)refund", "answer": "**7 days**", "markdown": true},
        ]}))
        .expect("valid");
        assert!(faq.manifest().enabled_by_default);
        assert_eq!(faq.manifest().triggers.keywords, vec!["price", "价格"]);
        let ask = |text: &str| Envelope {
            id: "e".into(),
            text: text.into(),
            ..Default::default()
        };
        let replies = faq
            .handle(&ask("what's the PRICE?"), &SkillContext::default())
            .await
            .expect("handled");
        assert_eq!(replies[0].segments, vec![Segment::text("from 99")]);
        let replies = faq
            .handle(&ask("问一下价格"), &SkillContext::default())
            .await
            .expect("handled");
        assert_eq!(replies[0].segments, vec![Segment::text("from 99")]);
        let replies = faq
            .handle(&ask("Refund please"), &SkillContext::default())
            .await
            .expect("handled");
        assert!(
            matches!(&replies[0].segments[0].kind, Some(SegmentKind::Markdown(m)) if m.markdown == "**7 days**")
        );
        assert!(
            faq.handle(&ask("hello"), &SkillContext::default())
                .await
                .expect("handled")
                .is_empty()
        );
    }

    #[test]
    fn bad_options_name_their_key() {
        let error = skill(serde_json::json!({"entries": [{"answer": "x"}]}))
            .err()
            .expect("rejected");
        assert!(error.contains("`skills.faq.entries[0]` needs"), "{error}");
        let error = skill(serde_json::json!({"entries": [{"pattern": "(", "answer": "x"}]}))
            .err()
            .expect("rejected");
        assert!(error.contains("`skills.faq.entries[0].pattern`"), "{error}");
        let error = skill(serde_json::json!({"entries": [{"keywords": ["a"], "answr": "x"}]}))
            .err()
            .expect("rejected");
        assert!(
            error.contains("skills.faq.entries[0]") && error.contains("answr"),
            "{error}"
        );
        assert!(
            !skill(serde_json::json!({}))
                .expect("empty is fine")
                .manifest()
                .enabled_by_default
        );
    }
}
