"""Asserts that the rendered Helm chart has what operators rely on.

Usage: check_chart.py DEFAULT_RENDER FULL_RENDER
  DEFAULT_RENDER: `helm template` with default values, on a cluster without KEDA or the
                  Prometheus operator;
  FULL_RENDER:    every platform enabled and a skill pool `ai`, with KEDA and the Prometheus
                  operator installed.
"""

import sys

import yaml

checks = 0
failures = []


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        failures.append(what)


def load(path):
    with open(path, encoding="utf-8") as file:
        return [doc for doc in yaml.safe_load_all(file) if doc]


def by_kind(docs, kind):
    return [doc for doc in docs if doc.get("kind") == kind]


def pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def check_render(docs, label):
    deployments = by_kind(docs, "Deployment")
    check(len(deployments) >= 3, f"{label}: ingress, worker and egress Deployments")
    pdb_targets = {doc["metadata"]["name"] for doc in by_kind(docs, "PodDisruptionBudget")}
    for doc in deployments + by_kind(docs, "Job"):
        name = doc["metadata"]["name"]
        spec = pod_spec(doc)
        check(spec.get("securityContext", {}).get("runAsNonRoot") is True, f"{label}: {name} runs as non-root")
        for container in spec["containers"]:
            security = container.get("securityContext", {})
            check(security.get("allowPrivilegeEscalation") is False, f"{label}: {name} forbids privilege escalation")
            check(security.get("readOnlyRootFilesystem") is True, f"{label}: {name} has a read-only root")
    for doc in deployments:
        name = doc["metadata"]["name"]
        spec = pod_spec(doc)
        container = spec["containers"][0]
        check(name in pdb_targets, f"{label}: {name} has a PodDisruptionBudget")
        check(spec.get("terminationGracePeriodSeconds", 0) >= 15, f"{label}: {name} gives the drain time to finish")
        check("livenessProbe" in container and "readinessProbe" in container, f"{label}: {name} has liveness and readiness probes")
        check("resources" in container and "requests" in container["resources"], f"{label}: {name} requests resources")
        if "-ingress-" in name:
            check(container["livenessProbe"]["httpGet"]["path"] == "/healthz", f"{label}: {name} liveness on /healthz")
            check(container["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{label}: {name} readiness on /readyz")
    ingresses = by_kind(docs, "Ingress")
    check(len(ingresses) == 1 and ingresses[0]["spec"].get("tls"), f"{label}: one Ingress with TLS")
    check(any(doc["metadata"]["name"].endswith("-config") for doc in by_kind(docs, "ConfigMap")), f"{label}: a config ConfigMap")


default, full = load(sys.argv[1]), load(sys.argv[2])
check_render(default, "default")
check_render(full, "full")

check(not by_kind(default, "ScaledObject"), "default: no ScaledObject without KEDA")
worker_hpas = [doc for doc in by_kind(default, "HorizontalPodAutoscaler") if doc["metadata"]["name"].endswith("-worker")]
check(len(worker_hpas) == 1, "default: a CPU HPA for workers when KEDA is absent")
check(not by_kind(default, "ServiceMonitor"), "default: no ServiceMonitor without the Prometheus operator")

scaled = {doc["metadata"]["name"]: doc for doc in by_kind(full, "ScaledObject")}
check(len(scaled) == 2, "full: one KEDA ScaledObject per worker pool")
for name, group in [("clawdbot-worker", "skills"), ("clawdbot-worker-ai", "ai")]:
    trigger = scaled.get(name, {}).get("spec", {}).get("triggers", [{}])[0]
    check(trigger.get("type") == "redis-streams", f"full: {name} scales on the Redis Streams scaler")
    check(trigger.get("metadata", {}).get("consumerGroup") == group, f"full: {name} scales on the `{group}` group's pending entries")
    check(trigger.get("metadata", {}).get("stream") == "{clawdbot}:in", f"full: {name} watches the inbound stream")
pool_deployment = [doc for doc in by_kind(full, "Deployment") if doc["metadata"]["name"] == "clawdbot-worker-ai"]
check(bool(pool_deployment) and pool_deployment[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["worker", "--pool", "ai"], "full: the ai pool runs `worker --pool ai`")
check(not [doc for doc in by_kind(full, "HorizontalPodAutoscaler") if doc["metadata"]["name"].endswith("-worker")], "full: no worker HPA next to KEDA")
check(len(by_kind(full, "ServiceMonitor")) == 1, "full: a ServiceMonitor with the Prometheus operator")
ingress_deployments = [doc for doc in by_kind(full, "Deployment") if "-ingress-" in doc["metadata"]["name"]]
check(len(ingress_deployments) == 7, "full: one ingress Deployment per enabled platform")
check("/clawdbot/qq" in [path["path"] for doc in by_kind(full, "Ingress") for rule in doc["spec"]["rules"] for path in rule["http"]["paths"]], "full: QQ callbacks route at /clawdbot/qq")
dingtalk_ingress = [doc for doc in ingress_deployments if doc["metadata"]["name"] == "clawdbot-ingress-dingtalk"]
check(bool(dingtalk_ingress) and dingtalk_ingress[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["ingress", "--platform", "dingtalk"], "full: the DingTalk ingress (Stream holder) runs `ingress --platform dingtalk`")
wecom_ingress = [doc for doc in ingress_deployments if doc["metadata"]["name"] == "clawdbot-ingress-wechat-enterprise"]
check(bool(wecom_ingress) and wecom_ingress[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["ingress", "--platform", "wechat_enterprise"], "full: the WeCom ingress has a Kubernetes-safe name and serves `--platform wechat_enterprise`")
http_paths = [path["path"] for doc in by_kind(full, "Ingress") for rule in doc["spec"]["rules"] for path in rule["http"]["paths"]]
check("/clawdbot/wechat" in http_paths, "full: WeCom callbacks route at /clawdbot/wechat (its documented URL)")

def env_names(doc):
    return {env["name"]: env for env in pod_spec(doc)["containers"][0].get("env", [])}


for doc in by_kind(full, "Deployment") + by_kind(full, "Job"):
    env = env_names(doc)
    name = doc["metadata"]["name"]
    check(env.get("CLAWDBOT_MASTER_KEY", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "clawdbot-master-key", f"full: {name} reads the master key from its Secret")
    check(env.get("CLAWDBOT_MASTER_KEYS_PREVIOUS", {}).get("valueFrom", {}).get("secretKeyRef", {}).get("optional") is True, f"full: {name} reads a previous master key when one is set (rotation)")
for doc in by_kind(default, "Deployment"):
    check("CLAWDBOT_MASTER_KEY" not in env_names(doc), f"default: {doc['metadata']['name']} has no master key unless one is configured")

for failure in failures:
    print(f"FAIL {failure}")
print(f"deploy checks: {checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
