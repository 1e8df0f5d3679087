"""Asserts that the Grafana dashboard only charts metrics clawdbot exports.

Usage: check_dashboard.py DASHBOARD_JSON METRIC_NAMES_FILE
(METRIC_NAMES_FILE: one metric name per line, from services/core/src/telemetry.rs.)
"""

import json
import re
import sys

dashboard = json.load(open(sys.argv[1], encoding="utf-8"))
known = {line.strip() for line in open(sys.argv[2], encoding="utf-8") if line.strip()}
failures = []
checks = 0
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        for name in re.findall(r"clawdbot_[a-z_]+", target["expr"]):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            checks += 1
            if base not in known:
                failures.append(f"panel `{panel['title']}` charts unknown metric `{name}`")
for failure in failures:
    print(f"FAIL {failure}")
print(f"dashboard checks: {checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
