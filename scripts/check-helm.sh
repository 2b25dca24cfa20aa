#!/usr/bin/env bash
# Checks the Helm chart helm/urumi: `helm lint --strict`, then `helm template` with the
# default values, with helm/urumi/ci/all-options-values.yaml (every option on) and with
# helm/urumi/values-prod.yaml and with helm/urumi/values-local.yaml (the local k3d install of
# scripts/setup-local.sh), each
# rendering validated with `kubernetes-validate --strict` against Kubernetes 1.33 and
# checked for what the chart promises: restricted Pod Security and requests + limits on
# every container, no token for the API, no Secret reads and no wildcards in its roles, a
# urumi.toml whose [stores] keys are the
# ones store/src/settings.rs knows, and the suspended page's Service named by its
# suspended_service (reaching the `urumi-api suspended-page` pods, which only the ingress
# controller's namespace may reach) — or, with suspendedPage.enabled=false (rendered too),
# suspended_service = "" and none of the page's objects. Exits non-zero on the first failure.
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
# In the namespace the renders below use (all-options names it as stores.platform_namespace).
"$helm" lint --strict "$chart" --namespace urumi-system
"$helm" lint --strict "$chart" --namespace urumi-system -f "$chart/ci/all-options-values.yaml"
"$helm" lint --strict "$chart" --namespace urumi-system -f "$chart/values-prod.yaml"
"$helm" lint --strict "$chart" --namespace urumi-system -f "$chart/values-local.yaml"

for values in default all-options prod local no-suspended; do
  args=()
  suspended=urumi-suspended # the Service urumi.toml must name (stores.suspended_service)
  case $values in
    default) ;;
    prod) args=(-f "$chart/values-prod.yaml") ;;
    local) args=(-f "$chart/values-local.yaml") ;;
    # The suspended page off, with the NetworkPolicies on: none of its objects renders.
    no-suspended)
      args=(-f "$chart/values-prod.yaml" --set suspendedPage.enabled=false)
      suspended=""
      ;;
    *) args=(-f "$chart/ci/$values-values.yaml") ;;
  esac
  echo "== helm template ($values values)"
  "$helm" template urumi "$chart" --namespace urumi-system --kube-version "$kube_version" \
    "${args[@]}" > "$out/$values.yaml"
  echo "== kubernetes-validate --strict -k $kube_version ($values values)"
  kubernetes-validate --strict --quiet -k "$kube_version" "$out/$values.yaml"
  echo "== chart promises ($values values)"
  python3 - "$out/$values.yaml" store/src/settings.rs "$suspended" urumi-system <<'PY'
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
            # `backups` is optional (serde default); every other Plan field is required.
            if not (fields("Plan") - {"backups"} <= set(plan) <= fields("Plan")):
                errors.append(f"{what}: plan {name} has {sorted(plan)}, Plan has {sorted(fields('Plan'))}")
            errors += [f"{what}: plan {name}: backups.{k} is not a BackupPolicy field"
                       for k in set(plan.get("backups", {})) - fields("BackupPolicy")]
        backups = stores.get("backups", {})
        errors += [f"{what}: stores.backups.{k} is not a BackupSettings field"
                   for k in set(backups) - fields("BackupSettings")]
        errors += [f"{what}: stores.backups.s3.{k} is not an S3Settings field"
                   for k in set(backups.get("s3", {})) - fields("S3Settings")]
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
# The suspended page: urumi.toml's stores.suspended_service names a ClusterIP Service on port
# 80, in the platform namespace, whose pods run `urumi-api suspended-page` listening on the
# port it targets and probed on /healthz; with NetworkPolicies on, only the ingress
# controller's namespace reaches them. Off: "" and none of its objects.
want, namespace = sys.argv[3], sys.argv[4]
configs = [tomllib.loads(d["data"]["urumi.toml"])["stores"] for d in docs
           if d["kind"] == "ConfigMap" and "urumi.toml" in d.get("data", {})]
stores = configs[0] if configs else {}
if stores.get("suspended_service") != want:
    errors.append(f"urumi.toml: stores.suspended_service is {stores.get('suspended_service')!r}, not {want!r}")
pages = [x for x in deployments.values()
         if any("suspended-page" in c.get("command", []) for c in x["spec"]["template"]["spec"]["containers"])]
policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
if not want:
    rendered = [f"{d['kind']}/{d['metadata']['name']}" for d in docs if d["metadata"]["name"].endswith("-suspended")]
    rendered += [f"Deployment/{x['metadata']['name']}" for x in pages]
    if rendered:
        errors.append(f"the suspended page is off but renders {sorted(set(rendered))}")
    print("suspended page: off, none of its objects rendered")
else:
    svc = next((d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == want), None)
    if stores.get("platform_namespace") != namespace:
        errors.append(f"stores look for Service {want} in {stores.get('platform_namespace')!r}, the chart installs it in {namespace!r}")
    if svc is None:
        errors.append(f"no Service {want} (urumi.toml's stores.suspended_service)")
    else:
        port = next((p for p in svc["spec"]["ports"] if p["port"] == 80), None)
        selected = [x for x in pages if labels_match(svc["spec"]["selector"], x["spec"]["template"]["metadata"]["labels"])]
        if svc["spec"].get("type", "ClusterIP") != "ClusterIP" or port is None:
            errors.append(f"Service/{want}: not a ClusterIP Service on port 80: {svc['spec']}")
        elif len(selected) != 1 or len(selected[0]["spec"]["template"]["spec"]["containers"]) != 1:
            errors.append(f"Service/{want}: selects {len(selected)} suspended-page Deployments, not one with one container")
        else:
            page = selected[0]
            c = page["spec"]["template"]["spec"]["containers"][0]
            target = next((p["containerPort"] for p in c.get("ports", [])
                           if port["targetPort"] in (p.get("name"), p["containerPort"])), None)
            cmd = c["command"]
            listen = cmd[cmd.index("--listen") + 1] if "--listen" in cmd else "0.0.0.0:8081"
            if target is None or listen != f"0.0.0.0:{target}":
                errors.append(f"Service/{want}: targets {port['targetPort']} (port {target}), the page listens on {listen}")
            for probe in ("livenessProbe", "readinessProbe"):
                if c.get(probe, {}).get("httpGet", {}).get("path") != "/healthz":
                    errors.append(f"Deployment/{page['metadata']['name']}: {probe} is not on /healthz")
            if policies:
                labels = page["spec"]["template"]["metadata"]["labels"]
                mine = [p for p in policies if labels_match(p["spec"]["podSelector"].get("matchLabels", {}), labels)]
                ingress_ns = stores.get("ingress_namespace", "kube-system")
                only = [{"ports": [{"port": "http"}],
                         "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ingress_ns}}}]}]
                if len(mine) != 1 or mine[0]["spec"].get("ingress") != only:
                    errors.append(f"the suspended page's pods need one NetworkPolicy letting in only {ingress_ns} on http; "
                                  f"found {[p['spec'] for p in mine]}")
    print(f"suspended page: Service {want} on port 80 -> {len(pages)} Deployment(s), {len(policies)} NetworkPolicies checked")
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
