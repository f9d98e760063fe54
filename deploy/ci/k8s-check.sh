#!/usr/bin/env bash
# Validates deploy/k8s without a cluster (none can run here): kustomize renders it, and every
# object it renders is checked against the Kubernetes API schemas (kubernetes-validate, from
# PyPI, --strict: unknown fields are errors). Then the rendered objects are checked for what
# the deployment promises (readiness on /readyz, limits, an autoscaler, Redis as a
# StatefulSet, the load test as a Job writing to a volume). A deliberately broken copy must
# be refused, so a validator that accepts anything fails this check.
set -euo pipefail
cd "$(dirname "$0")/../.."

validator_version=1.37.0
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$validator_version"
fi
command -v kubectl >/dev/null 2>&1 || { echo "k8s check: kubectl (for kustomize) is not installed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kubectl kustomize deploy/k8s >"$tmp/all.yaml"
kubernetes-validate --strict --quiet "$tmp/all.yaml"

# The validator must refuse what is wrong: a container port without its number.
sed 's/containerPort: 8080/containerPortTypo: 8080/' "$tmp/all.yaml" >"$tmp/broken.yaml"
if kubernetes-validate --strict --quiet "$tmp/broken.yaml" >/dev/null 2>&1; then
  echo "k8s check: the validator accepted a broken manifest" >&2
  exit 1
fi

python3 - "$tmp/all.yaml" "$(kubernetes-validate --version 2>&1 | tail -1)" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]) for d in docs}
need = {("StatefulSet", "redis"), ("Service", "redis"), ("Deployment", "session-server"),
        ("Deployment", "token-server"), ("Service", "session-server"), ("Service", "token-server"),
        ("HorizontalPodAutoscaler", "session-server"), ("HorizontalPodAutoscaler", "token-server"),
        ("Deployment", "balancer"), ("Service", "balancer"), ("Job", "loadtest"),
        ("PersistentVolumeClaim", "reports")}
missing = need - by
assert not missing, f"missing objects: {sorted(missing)}"
for d in docs:
    if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-server"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", d["metadata"]["name"]
        assert c["resources"]["limits"]["cpu"], d["metadata"]["name"]
    if d["kind"] == "HorizontalPodAutoscaler":
        m = d["spec"]["metrics"][0]["resource"]
        assert m["name"] == "cpu", m
    if d["kind"] == "Job":
        spec = d["spec"]["template"]["spec"]
        mounts = spec["containers"][0]["volumeMounts"]
        assert any(v["mountPath"] == "/work/reports" for v in mounts), mounts
        assert "--out" in spec["containers"][0]["command"]
print(f"k8s check: {len(docs)} objects rendered by kustomize, valid against the Kubernetes schemas ({sys.argv[2]}, --strict)")
PY
