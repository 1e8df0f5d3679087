//! Forwarding Alertmanager's real payload shape.

use clawdbot_core::proto::{EventKind, Raw, Segment, segment::Kind as SegmentKind};

use super::*;

/// Alertmanager's webhook body (v4), as in its documentation, for two firing alerts.
pub const FIRING: &str = r#"{
  "receiver": "clawdbot", "status": "firing", "version": "4", "truncatedAlerts": 0,
  "groupKey": "{}:{alertname=\"HighCPU\"}",
  "groupLabels": {"alertname": "HighCPU"},
  "commonLabels": {"alertname": "HighCPU", "severity": "critical", "team": "ops"},
  "commonAnnotations": {"summary": "CPU above 90% for 5 minutes"},
  "externalURL": "http://alertmanager:9093",
  "alerts": [
    {"status": "firing", "labels": {"alertname": "HighCPU", "instance": "node-1", "severity": "critical", "team": "ops"},
     "annotations": {"summary": "CPU above 90% for 5 minutes"}, "startsAt": "2026-11-25T08:00:00.000Z",
     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1"},
    {"status": "firing", "labels": {"alertname": "HighCPU", "instance": "node-2", "severity": "critical", "team": "ops"},
     "annotations": {"summary": "CPU above 90% for 5 minutes"}, "startsAt": "2026-11-25T08:01:00.000Z",
     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a2"}
  ]
}"#;

fn skill(options: serde_json::Value) -> Result<AlertForwardSkill, String> {
    let serde_json::Value::Object(map) = options else {
        panic!("object")
    };
    AlertForwardSkill::new(&map)
}

fn alert(json: &str) -> Envelope {
    Envelope {
        id: "e1".into(),
        kind: EventKind::Notice.into(),
        event_type: "alert".into(),
        segments: vec![Segment {
            kind: Some(SegmentKind::Raw(Raw {
                platform: "alertmanager".into(),
                r#type: "alert".into(),
                data_json: json.into(),
            })),
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_firing_group_goes_to_the_route_matching_its_labels_rendered_per_platform() {
    let forward = skill(serde_json::json!({"routes": [
        {"match": {"team": "db"}, "targets": [{"platform": "onebot", "group": "1"}]},
        {"match": {"team": "ops"}, "targets": [{"platform": "onebot", "group": "987654"}, {"platform": "sandbox", "group": "ops"}]},
    ]}))
    .expect("valid");
    let replies = forward
        .handle(&alert(FIRING), &SkillContext::default())
        .await
        .expect("handled");
    assert_eq!(replies.len(), 2);
    assert_eq!(
        (
            replies[0].platform.as_str(),
            replies[0].conversation.clone().expect("c").id.as_str()
        ),
        ("onebot", "987654")
    );
    let plain = replies[0].segments[0]
        .as_text()
        .expect("plain text for OneBot");
    assert!(plain.starts_with("🔥 [FIRING:2] HighCPU"), "{plain}");
    assert!(plain.contains("severity=critical team=ops"), "{plain}");
    assert!(
        plain.contains("node-1: CPU above 90% for 5 minutes — since 2026-11-25 08:00 UTC"),
        "{plain}"
    );
    assert!(
        !plain.contains("**"),
        "no markup where it would show: {plain}"
    );
    let Some(SegmentKind::Markdown(markdown)) = &replies[1].segments[0].kind else {
        panic!("markdown for the sandbox")
    };
    assert!(
        markdown.markdown.starts_with("**🔥 [FIRING:2] HighCPU**"),
        "{}",
        markdown.markdown
    );
    assert_ne!(
        replies[0].id, replies[1].id,
        "one idempotency key per target"
    );
}

#[tokio::test]
async fn resolved_notifications_say_so_and_unmatched_ones_go_nowhere() {
    let forward = skill(serde_json::json!({"routes": [{"match": {"team": "ops"}, "targets": [{"platform": "onebot", "user": "42"}]}]})).expect("valid");
    let resolved = FIRING.replace("\"status\": \"firing\"", "\"status\": \"resolved\"");
    let replies = forward
        .handle(&alert(&resolved), &SkillContext::default())
        .await
        .expect("handled");
    assert!(
        replies[0].segments[0]
            .as_text()
            .expect("text")
            .starts_with("✅ [RESOLVED:2] HighCPU")
    );
    let other_team = FIRING.replace("\"team\": \"ops\"", "\"team\": \"web\"");
    assert!(
        forward
            .handle(&alert(&other_team), &SkillContext::default())
            .await
            .expect("handled")
            .is_empty()
    );
}

#[test]
fn targets_need_a_group_or_a_user() {
    let error = skill(serde_json::json!({"routes": [{"targets": [{"platform": "onebot"}]}]}))
        .err()
        .expect("rejected");
    assert!(
        error.contains("`skills.alert_forward.routes[0].targets[0]` needs exactly one"),
        "{error}"
    );
}
