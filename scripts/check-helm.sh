#!/usr/bin/env bash
# Checks the Helm chart helm/urumi: `helm lint --strict`, then `helm template` with the
# default values, with helm/urumi/ci/all-options-values.yaml (every option on) and with
# helm/urumi/values-prod.yaml and with helm/urumi/values-local.yaml (the local k3d install of
# scripts/setup-local.sh), each
# rendering validated with `kubernetes-validate --strict` against Kubernetes 1.33 and
# checked for what the chart promises: restricted Pod Security and requests + limits on
# every container, no token for the API, no Secret reads and no wildcards in its roles, and a
# urumi.toml whose [stores] keys are the
# ones store/src/settings.rs knows. Exits non-zero on the first failure.
#
# helm v4 is installed into .tools/bin by scripts/install-helm.sh; kubernetes-validate from
# PyPI. Then scripts/check-helm-install.sh installs the chart for real into the simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
helm="$repo/.tools/bin/helm"
chart=helm/urumi
kube_version=1.33.0

scripts/install-helm.sh
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "== installing kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
  hash -r
fi
"$helm" version

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== helm lint --strict"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" -f "$chart/ci/all-options-values.yaml"
"$helm" lint --strict "$chart" -f "$chart/values-prod.yaml"
"$helm" lint --strict "$chart" -f "$chart/values-local.yaml"

for values in default all-options prod local; do
  args=()
  case $values in
    default) ;;
    prod) args=(-f "$chart/values-prod.yaml") ;;
    local) args=(-f "$chart/values-local.yaml") ;;
    *) args=(-f "$chart/ci/$values-values.yaml") ;;
  esac
  echo "== helm template ($values values)"
  "$helm" template urumi "$chart" --namespace urumi-system --kube-version "$kube_version" \
    "${args[@]}" > "$out/$values.yaml"
  echo "== kubernetes-validate --strict -k $kube_version ($values values)"
  kubernetes-validate --strict --quiet -k "$kube_version" "$out/$values.yaml"
  echo "== chart promises ($values values)"
  python3 - "$out/$values.yaml" store/src/settings.rs <<'PY'
import re, sys, tomllib, yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
src = open(sys.argv[2]).read()
def fields(struct):
    body = re.search(r"pub struct %s \{(.*?)\n\}" % struct, src, re.S).group(1)
    return set(re.findall(r"pub (\w+):", body))
errors = []
pods = 0
for d in docs:
    what = f"{d['kind']}/{d['metadata']['name']}"
    if d["kind"] == "ConfigMap" and "urumi.toml" in d.get("data", {}):
        stores = tomllib.loads(d["data"]["urumi.toml"])["stores"]
        errors += [f"{what}: stores.{k} is not a StoreSettings field"
                   for k in set(stores) - fields("StoreSettings")]
        errors += [f"{what}: stores.images.{k} is not an Images field"
                   for k in set(stores.get("images", {})) - fields("Images")]
        for name, plan in stores.get("plans", {}).items():
            if set(plan) != fields("Plan"):
                errors.append(f"{what}: plan {name} has {sorted(plan)}, Plan has {sorted(fields('Plan'))}")
    if d["kind"] in ("ClusterRole", "Role"):
        for rule in d.get("rules", []):
            if {"secrets", "*"} & set(rule.get("resources", [])) and {"get", "list", "watch", "*"} & set(rule.get("verbs", [])):
                errors.append(f"{what}: grants Secret reads ({rule}); the worker reads no Secret")
            if "*" in rule.get("verbs", []) or "*" in rule.get("resources", []):
                errors.append(f"{what}: a wildcard rule ({rule})")
    if d["kind"] not in ("Deployment", "Job"):
        continue
    pods += 1
    spec = d["spec"]["template"]["spec"]
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        errors.append(f"{what}: pod securityContext is not restricted: {psc}")
    if "-api" in what and spec.get("automountServiceAccountToken") is not False:
        errors.append(f"{what}: the API must not mount a service account token")
    for c in spec["containers"]:
        sc, res = c.get("securityContext", {}), c.get("resources", {})
        if (sc.get("allowPrivilegeEscalation") is not False or sc.get("readOnlyRootFilesystem") is not True
                or sc.get("capabilities", {}).get("drop") != ["ALL"]):
            errors.append(f"{what}/{c['name']}: container securityContext is not restricted: {sc}")
        for kind in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(kind, {})):
                errors.append(f"{what}/{c['name']}: no cpu and memory {kind}")
if pods == 0:
    errors.append("no Deployment or Job rendered")
# What selects what: PodDisruptionBudgets and the ServiceMonitor find their targets, the
# autoscaler's Deployment leaves `replicas` to it.
def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())
deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
for d in docs:
    what = f"{d['kind']}/{d['metadata']['name']}"
    if d["kind"] == "PodDisruptionBudget":
        sel = d["spec"]["selector"]["matchLabels"]
        if not any(labels_match(sel, x["spec"]["template"]["metadata"]["labels"]) for x in deployments.values()):
            errors.append(f"{what}: selects no Deployment's pods")
    if d["kind"] == "HorizontalPodAutoscaler":
        target = deployments.get(d["spec"]["scaleTargetRef"]["name"])
        if target is None:
            errors.append(f"{what}: scales no rendered Deployment")
        elif "replicas" in target["spec"]:
            errors.append(f"{what}: its Deployment also sets replicas (they would fight)")
    if d["kind"] == "ServiceMonitor":
        sel = d["spec"]["selector"]["matchLabels"]
        ports = {e["port"] for e in d["spec"]["endpoints"]}
        found = [x for x in docs if x["kind"] == "Service" and labels_match(sel, x["metadata"].get("labels", {}))]
        named = {p.get("name") for x in found for p in x["spec"]["ports"]}
        if not ports <= named:
            errors.append(f"{what}: endpoints {sorted(ports)} but the selected Services name {sorted(named)}")
for e in errors:
    print("FAIL", e)
print(f"{len(docs)} objects, {pods} pod templates checked")
sys.exit(1 if errors else 0)
PY
done
# The chart installed, upgraded, rolled back and uninstalled for real by helm against the
# simulator, and the binaries run with its identity (needs Postgres: with-postgres.sh
# starts one when DATABASE_URL does not answer).
echo "== helm install/upgrade/rollback/uninstall against the simulator"
scripts/with-postgres.sh scripts/check-helm-install.sh
echo "helm: passed"
