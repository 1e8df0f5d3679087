//! Alert notifications as chat messages.

pub(super) use clawdbot_core::notice::AlertNotification as Notification;

fn headline(n: &Notification) -> String {
    let name = n
        .common_labels
        .get("alertname")
        .map_or("alerts", String::as_str);
    let icon = if n.status == "resolved" {
        "✅"
    } else {
        "🔥"
    };
    format!(
        "{icon} [{}:{}] {name}",
        n.status.to_uppercase(),
        n.alerts.len()
    )
}

/// One line per alert: what it is about, and since when.
fn alert_lines(n: &Notification) -> Vec<String> {
    n.alerts
        .iter()
        .map(|alert| {
            let target = alert
                .labels
                .get("instance")
                .or_else(|| alert.labels.get("job"))
                .map_or("", String::as_str);
            let what = alert
                .annotations
                .get("summary")
                .or_else(|| alert.annotations.get("description"))
                .or_else(|| alert.labels.get("alertname"))
                .map_or("", String::as_str);
            let since = alert
                .starts_at
                .get(..16)
                .unwrap_or(&alert.starts_at)
                .replace('T', " ");
            let status = if alert.status == "resolved" {
                " (resolved)"
            } else {
                ""
            };
            format!("{target}: {what}{status} — since {since} UTC")
                .trim_start_matches(": ")
                .to_string()
        })
        .collect()
}

fn labels_line(n: &Notification) -> String {
    n.common_labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The notification in markdown.
pub(super) fn markdown(n: &Notification) -> String {
    let mut out = format!("**{}**", headline(n));
    let labels = labels_line(n);
    if !labels.is_empty() {
        out.push_str(&format!("\n`{labels}`"));
    }
    if let Some(summary) = n.common_annotations.get("summary") {
        out.push_str(&format!("\n{summary}"));
    }
    for line in alert_lines(n) {
        out.push_str(&format!("\n- {line}"));
    }
    if !n.external_url.is_empty() {
        out.push_str(&format!("\n[Alertmanager]({})", n.external_url));
    }
    out
}

/// The notification as plain text, for platforms without markdown.
pub(super) fn plain(n: &Notification) -> String {
    let mut out = headline(n);
    let labels = labels_line(n);
    if !labels.is_empty() {
        out.push_str(&format!("\n{labels}"));
    }
    if let Some(summary) = n.common_annotations.get("summary") {
        out.push_str(&format!("\n{summary}"));
    }
    for line in alert_lines(n) {
        out.push_str(&format!("\n- {line}"));
    }
    out
}
