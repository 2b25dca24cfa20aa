//! Validation and admission: object names (RFC 1123 / RFC 1035), the few spec rules that
//! catch real mistakes, LimitRange defaults, Pod Security Admission (`baseline`,
//! `restricted`) and ResourceQuota (required requests/limits and usage), worded like the
//! real API server.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Why a name is invalid, or `None` when it is valid.
pub fn name_error(rule: crate::resources::NameRule, name: &str) -> Option<String> {
    use crate::resources::NameRule;
    let label_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    match rule {
        NameRule::Subdomain => {
            if name.len() > 253 {
                return Some("must be no more than 253 characters".into());
            }
            if !name.split('.').all(label_ok) {
                return Some("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into());
            }
        }
        NameRule::Label => {
            if name.len() > 63 {
                return Some("must be no more than 63 characters".into());
            }
            if !label_ok(name) {
                return Some("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into());
            }
        }
        NameRule::Dns1035 => {
            if name.len() > 63 {
                return Some("must be no more than 63 characters".into());
            }
            if !label_ok(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
                return Some("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into());
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                return Some(format!("may not be '{name}'"));
            }
            for bad in ['/', '%'] {
                if name.contains(bad) {
                    return Some(format!("may not contain '{bad}'"));
                }
            }
        }
    }
    None
}

type Cause = (String, String, &'static str);

fn invalid(field: &str, value: &Value, msg: &str) -> Cause {
    (
        field.to_string(),
        format!("Invalid value: {value}: {msg}"),
        "FieldValueInvalid",
    )
}

fn required(field: &str, msg: &str) -> Cause {
    let m = if msg.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {msg}")
    };
    (field.to_string(), m, "FieldValueRequired")
}

fn validate_labels(obj: &Value, causes: &mut Vec<Cause>) {
    let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) else {
        return;
    };
    for (k, v) in labels {
        let Some(v) = v.as_str() else {
            causes.push(invalid(
                "metadata.labels",
                &json!(v),
                "label values must be strings",
            ));
            continue;
        };
        let ok = v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && (v.is_empty()
                || (v.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && v.ends_with(|c: char| c.is_ascii_alphanumeric())));
        if !ok {
            causes.push(invalid("metadata.labels", &json!(v), "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
        }
        let name = k.rsplit('/').next().unwrap_or_default();
        if name.is_empty()
            || name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            causes.push(invalid("metadata.labels", &json!(k), "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"));
        }
    }
}

fn validate_pod_spec(spec: Option<&Value>, prefix: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(required(&format!("{prefix}.containers"), "")),
        Some(cs) if cs.is_empty() => causes.push(required(&format!("{prefix}.containers"), "")),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() {
                    causes.push(required(&format!("{prefix}.containers[{i}].name"), ""));
                } else if let Some(e) = name_error(crate::resources::NameRule::Label, name) {
                    causes.push(invalid(
                        &format!("{prefix}.containers[{i}].name"),
                        &json!(name),
                        &e,
                    ));
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    causes.push(required(&format!("{prefix}.containers[{i}].image"), ""));
                }
            }
        }
    }
}

/// Spec validation for a create or update. Returns the `Invalid` causes.
pub fn validate(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_labels(obj, &mut causes);
    match rt.plural {
        "pods" => validate_pod_spec(obj.get("spec"), "spec", &mut causes),
        "deployments" | "statefulsets" | "jobs" => {
            let tpl = obj.pointer("/spec/template");
            validate_pod_spec(
                tpl.and_then(|t| t.get("spec")),
                "spec.template.spec",
                &mut causes,
            );
            let selector = obj.pointer("/spec/selector");
            if rt.plural != "jobs" {
                match selector {
                    None => causes.push(required("spec.selector", "")),
                    Some(sel) => {
                        let labels = tpl.cloned().unwrap_or(Value::Null);
                        if !crate::selectors::LabelSelector::from_object(sel).matches(&labels) {
                            let l = tpl
                                .and_then(|t| t.pointer("/metadata/labels"))
                                .cloned()
                                .unwrap_or(json!({}));
                            causes.push(invalid(
                                "spec.template.metadata.labels",
                                &l,
                                "`selector` does not match template `labels`",
                            ));
                        }
                    }
                }
            } else {
                let rp = obj
                    .pointer("/spec/template/spec/restartPolicy")
                    .and_then(Value::as_str);
                match rp {
                    Some("OnFailure" | "Never") => {}
                    None => causes.push(required("spec.template.spec.restartPolicy", "valid values: \"OnFailure\", \"Never\"")),
                    Some(other) => causes.push((
                        "spec.template.spec.restartPolicy".into(),
                        format!("Unsupported value: \"{other}\": supported values: \"OnFailure\", \"Never\""),
                        "FieldValueNotSupported",
                    )),
                }
            }
            if rt.plural == "statefulsets"
                && obj
                    .pointer("/spec/serviceName")
                    .is_some_and(|s| !s.is_string())
            {
                causes.push(invalid(
                    "spec.serviceName",
                    &obj["spec"]["serviceName"],
                    "must be a string",
                ));
            }
        }
        "services" => {
            if let Some(ports) = obj.pointer("/spec/ports").and_then(Value::as_array) {
                for (i, p) in ports.iter().enumerate() {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    if !(1..=65535).contains(&port) {
                        causes.push(invalid(
                            &format!("spec.ports[{i}].port"),
                            &json!(port),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                }
            }
        }
        "persistentvolumeclaims" => {
            if obj
                .pointer("/spec/accessModes")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                causes.push(required(
                    "spec.accessModes",
                    "at least 1 access mode is required",
                ));
            }
            if obj.pointer("/spec/resources/requests/storage").is_none() {
                causes.push(required("spec.resources[storage]", ""));
            }
        }
        _ => {}
    }
    causes
}

/// Parses a resource quantity (`500m`, `1.5Gi`, `2`, `1e3`) into base units.
pub fn parse_quantity(q: &Value) -> Option<f64> {
    let s = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let suffixes: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0_f64.powi(4)),
        ("Pi", 1024.0_f64.powi(5)),
        ("Ei", 1024.0_f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suf, mult) in suffixes {
        if let Some(num) = s.strip_suffix(suf) {
            return num.parse::<f64>().ok().map(|n| n * mult);
        }
    }
    s.parse::<f64>().ok()
}

/// Formats a quantity the way quota status and messages show it.
pub fn format_quantity(resource: &str, v: f64) -> String {
    let is_cpu = resource.ends_with("cpu");
    if is_cpu {
        let milli = (v * 1000.0).round() as i64;
        return if milli % 1000 == 0 {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
    }
    if resource.ends_with("memory") || resource.ends_with("storage") {
        let bytes = v.round() as i64;
        for (suf, mult) in [("Gi", 1_i64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if bytes != 0 && bytes % mult == 0 {
                return format!("{}{suf}", bytes / mult);
            }
        }
        return bytes.to_string();
    }
    let r = v.round() as i64;
    r.to_string()
}

fn containers_mut(pod_spec: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    if let Some(obj) = pod_spec.as_object_mut() {
        for (k, v) in obj.iter_mut() {
            if (k == "containers" || k == "initContainers")
                && let Some(arr) = v.as_array_mut()
            {
                out.extend(arr.iter_mut());
            }
        }
    }
    out
}

/// Pod defaulting plus the LimitRanger plugin: requests default to limits, then each
/// `Container` LimitRange item fills `default` limits and `defaultRequest` requests.
pub fn apply_limit_ranges(pod: &mut Value, limit_ranges: &[Value]) {
    let mut notes: Vec<String> = Vec::new();
    let Some(spec) = pod.get_mut("spec") else {
        return;
    };
    for c in containers_mut(spec) {
        let cname = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut set_req = Vec::new();
        let mut set_lim = Vec::new();
        for lr in limit_ranges {
            let Some(items) = lr.pointer("/spec/limits").and_then(Value::as_array) else {
                continue;
            };
            for item in items
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("Container"))
            {
                for (field, set) in [("default", &mut set_lim), ("defaultRequest", &mut set_req)] {
                    let target = if field == "default" {
                        "limits"
                    } else {
                        "requests"
                    };
                    if let Some(defaults) = item.get(field).and_then(Value::as_object) {
                        for (res, q) in defaults {
                            if c.pointer(&format!("/resources/{target}/{res}")).is_none() {
                                let r = c
                                    .as_object_mut()
                                    .expect("container is an object")
                                    .entry("resources")
                                    .or_insert_with(|| json!({}));
                                let t = r
                                    .as_object_mut()
                                    .map(|m| m.entry(target).or_insert_with(|| json!({})));
                                if let Some(Value::Object(tm)) = t {
                                    tm.insert(res.clone(), q.clone());
                                    set.push(res.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
        // API defaulting: a request defaults to its limit.
        let limits = c
            .pointer("/resources/limits")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (res, q) in limits {
            if c.pointer(&format!("/resources/requests/{res}")).is_none() {
                let r = c
                    .as_object_mut()
                    .expect("container is an object")
                    .entry("resources")
                    .or_insert_with(|| json!({}));
                if let Some(Value::Object(tm)) = r
                    .as_object_mut()
                    .map(|m| m.entry("requests").or_insert_with(|| json!({})))
                {
                    tm.insert(res.clone(), q);
                }
            }
        }
        if !set_req.is_empty() {
            notes.push(format!(
                "{} request for container {cname}",
                set_req.join(", ")
            ));
        }
        if !set_lim.is_empty() {
            notes.push(format!(
                "{} limit for container {cname}",
                set_lim.join(", ")
            ));
        }
    }
    if !notes.is_empty()
        && let Some(md) = pod.get_mut("metadata").and_then(Value::as_object_mut)
    {
        let ann = md.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.insert(
                "kubernetes.io/limit-ranger".into(),
                json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
}

/// The enforced Pod Security level of a namespace (`privileged` when unlabelled).
pub fn psa_level(ns: Option<&Value>, mode: &str) -> String {
    ns.and_then(|n| n.pointer("/metadata/labels"))
        .and_then(|l| l.get(format!("pod-security.kubernetes.io/{mode}")))
        .and_then(Value::as_str)
        .unwrap_or("privileged")
        .to_string()
}

fn plural_containers(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    if names.len() == 1 {
        format!("container {}", quoted[0])
    } else {
        format!("containers {}", quoted.join(", "))
    }
}

const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Pod Security Standards check of a pod spec. Returns the violations, each as the real
/// admission plugin words them, or an empty list.
pub fn psa_violations(level: &str, spec: &Value) -> Vec<String> {
    if level != "baseline" && level != "restricted" {
        return Vec::new();
    }
    let restricted = level == "restricted";
    let mut out = Vec::new();
    let pod_sc = spec.get("securityContext").cloned().unwrap_or(json!({}));
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let cname = |c: &Value| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };

    let hosts: Vec<String> = ["hostNetwork", "hostPID", "hostIPC"]
        .iter()
        .filter(|k| spec.get(**k).and_then(Value::as_bool) == Some(true))
        .map(|k| format!("{k}=true"))
        .collect();
    if !hosts.is_empty() {
        out.push(format!("host namespaces ({})", hosts.join(", ")));
    }
    let privileged: Vec<String> = containers
        .iter()
        .filter(|c| {
            c.pointer("/securityContext/privileged")
                .and_then(Value::as_bool)
                == Some(true)
        })
        .map(|c| cname(c))
        .collect();
    if !privileged.is_empty() {
        out.push(format!(
            "privileged ({} must not set securityContext.privileged=true)",
            plural_containers(&privileged)
        ));
    }
    let mut bad_caps = Vec::new();
    for c in &containers {
        if let Some(adds) = c
            .pointer("/securityContext/capabilities/add")
            .and_then(Value::as_array)
        {
            for a in adds.iter().filter_map(Value::as_str) {
                if !BASELINE_CAPS.contains(&a) {
                    bad_caps.push(format!(
                        "{} must not include \"{a}\" in securityContext.capabilities.add",
                        plural_containers(&[cname(c)])
                    ));
                }
            }
        }
    }
    if !bad_caps.is_empty() {
        out.push(format!(
            "non-default capabilities ({})",
            bad_caps.join(", ")
        ));
    }
    if let Some(vols) = spec.get("volumes").and_then(Value::as_array) {
        let hp: Vec<String> = vols
            .iter()
            .filter(|v| v.get("hostPath").is_some())
            .map(|v| {
                format!(
                    "\"{}\"",
                    v.get("name").and_then(Value::as_str).unwrap_or_default()
                )
            })
            .collect();
        if !hp.is_empty() {
            let noun = if hp.len() == 1 { "volume" } else { "volumes" };
            out.push(format!("hostPath volumes ({noun} {})", hp.join(", ")));
        }
    }
    let mut host_ports = Vec::new();
    for c in &containers {
        if let Some(ports) = c.get("ports").and_then(Value::as_array) {
            for p in ports {
                if let Some(hp) = p
                    .get("hostPort")
                    .and_then(Value::as_i64)
                    .filter(|h| *h != 0)
                {
                    host_ports.push(format!(
                        "{} uses hostPort {hp}",
                        plural_containers(&[cname(c)])
                    ));
                }
            }
        }
    }
    if !host_ports.is_empty() {
        out.push(format!("hostPort ({})", host_ports.join(", ")));
    }
    let seccomp_type = |sc: &Value| {
        sc.pointer("/seccompProfile/type")
            .and_then(Value::as_str)
            .map(String::from)
    };
    if seccomp_type(&pod_sc).as_deref() == Some("Unconfined") {
        out.push("seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")".into());
    }
    if !restricted {
        return out;
    }
    let empty = json!({});
    let csc = |c: &Value| {
        c.get("securityContext")
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };

    let ape: Vec<String> = containers
        .iter()
        .filter(|c| {
            csc(c)
                .get("allowPrivilegeEscalation")
                .and_then(Value::as_bool)
                != Some(false)
        })
        .map(|c| cname(c))
        .collect();
    if !ape.is_empty() {
        out.push(format!("allowPrivilegeEscalation != false ({} must set securityContext.allowPrivilegeEscalation=false)", plural_containers(&ape)));
    }
    let no_drop: Vec<String> = containers
        .iter()
        .filter(|c| {
            !csc(c)
                .pointer("/capabilities/drop")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")))
        })
        .map(|c| cname(c))
        .collect();
    let mut cap_parts = Vec::new();
    if !no_drop.is_empty() {
        cap_parts.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            plural_containers(&no_drop)
        ));
    }
    for c in &containers {
        if let Some(adds) = csc(c)
            .pointer("/capabilities/add")
            .and_then(Value::as_array)
        {
            for a in adds
                .iter()
                .filter_map(Value::as_str)
                .filter(|a| *a != "NET_BIND_SERVICE")
            {
                cap_parts.push(format!(
                    "{} must not include \"{a}\" in securityContext.capabilities.add",
                    plural_containers(&[cname(c)])
                ));
            }
        }
    }
    if !cap_parts.is_empty() {
        out.push(format!(
            "unrestricted capabilities ({})",
            cap_parts.join("; ")
        ));
    }
    let pod_non_root = pod_sc.get("runAsNonRoot").and_then(Value::as_bool);
    if pod_non_root == Some(false) {
        out.push(
            "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)".into(),
        );
    } else {
        let missing: Vec<String> = containers
            .iter()
            .filter(|c| {
                let own = csc(c).get("runAsNonRoot").and_then(Value::as_bool);
                own == Some(false) || (own.is_none() && pod_non_root != Some(true))
            })
            .map(|c| cname(c))
            .collect();
        if !missing.is_empty() {
            let who = if pod_non_root.is_none() {
                format!("pod or {}", plural_containers(&missing))
            } else {
                plural_containers(&missing)
            };
            out.push(format!(
                "runAsNonRoot != true ({who} must set securityContext.runAsNonRoot=true)"
            ));
        }
    }
    let mut root_parts = Vec::new();
    if pod_sc.get("runAsUser").and_then(Value::as_i64) == Some(0) {
        root_parts.push("pod must not set runAsUser=0".to_string());
    }
    let root_cs: Vec<String> = containers
        .iter()
        .filter(|c| csc(c).get("runAsUser").and_then(Value::as_i64) == Some(0))
        .map(|c| cname(c))
        .collect();
    if !root_cs.is_empty() {
        root_parts.push(format!(
            "{} must not set runAsUser=0",
            plural_containers(&root_cs)
        ));
    }
    if !root_parts.is_empty() {
        out.push(format!("runAsUser=0 ({})", root_parts.join("; ")));
    }
    let pod_seccomp = seccomp_type(&pod_sc);
    let pod_ok = matches!(pod_seccomp.as_deref(), Some("RuntimeDefault" | "Localhost"));
    let bad_seccomp: Vec<String> = containers
        .iter()
        .filter(|c| match seccomp_type(&csc(c)).as_deref() {
            Some("RuntimeDefault" | "Localhost") => false,
            Some(_) => true,
            None => !pod_ok,
        })
        .map(|c| cname(c))
        .collect();
    if !bad_seccomp.is_empty() {
        let who = if pod_ok {
            plural_containers(&bad_seccomp)
        } else {
            format!("pod or {}", plural_containers(&bad_seccomp))
        };
        out.push(format!("seccompProfile ({who} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"));
    }
    if let Some(vols) = spec.get("volumes").and_then(Value::as_array) {
        let mut bad = Vec::new();
        for v in vols {
            if let Some(m) = v.as_object() {
                for k in m.keys().filter(|k| *k != "name") {
                    if !RESTRICTED_VOLUMES.contains(&k.as_str()) {
                        bad.push(format!(
                            "volume \"{}\" uses restricted volume type \"{k}\"",
                            m.get("name").and_then(Value::as_str).unwrap_or_default()
                        ));
                    }
                }
            }
        }
        if !bad.is_empty() {
            out.push(format!("restricted volume types ({})", bad.join(", ")));
        }
    }
    out
}

/// The `violates PodSecurity "<level>:<version>": ...` sentence.
pub fn psa_message(level: &str, version: &str, violations: &[String]) -> String {
    format!(
        "violates PodSecurity \"{level}:{version}\": {}",
        violations.join(", ")
    )
}

const COMPUTE: &[&str] = &[
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    "cpu",
    "memory",
];

/// Sums a pod's compute usage for one quota resource name.
pub fn pod_usage(pod: &Value, res: &str) -> f64 {
    let (kind, r) = match res.split_once('.') {
        Some((k, r)) => (k, r),
        None => ("requests", res),
    };
    let Some(spec) = pod.get("spec") else {
        return 0.0;
    };
    let sum = |key: &str| -> f64 {
        spec.get(key)
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| {
                        c.pointer(&format!("/resources/{kind}/{r}"))
                            .and_then(parse_quantity)
                    })
                    .sum()
            })
            .unwrap_or(0.0)
    };
    let init_max: f64 = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    c.pointer(&format!("/resources/{kind}/{r}"))
                        .and_then(parse_quantity)
                })
                .fold(0.0, f64::max)
        })
        .unwrap_or(0.0);
    sum("containers").max(init_max)
}

/// A pod counts against quota unless it has finished.
pub fn pod_counts(pod: &Value) -> bool {
    !matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// Quota usage of one object for one quota resource name.
pub fn usage_of(kind: &str, obj: &Value, res: &str) -> f64 {
    match (kind, res) {
        ("pods", "pods" | "count/pods") => f64::from(u8::from(pod_counts(obj))),
        ("pods", r) if COMPUTE.contains(&r) && pod_counts(obj) => pod_usage(obj, r),
        ("persistentvolumeclaims", "persistentvolumeclaims" | "count/persistentvolumeclaims") => {
            1.0
        }
        ("persistentvolumeclaims", "requests.storage") => obj
            .pointer("/spec/resources/requests/storage")
            .and_then(parse_quantity)
            .unwrap_or(0.0),
        ("services", "services" | "count/services") => 1.0,
        ("services", "services.loadbalancers") => f64::from(u8::from(
            obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer"),
        )),
        ("services", "services.nodeports") => f64::from(u8::from(
            obj.pointer("/spec/type").and_then(Value::as_str) == Some("NodePort"),
        )),
        ("secrets", "secrets" | "count/secrets")
        | ("configmaps", "configmaps" | "count/configmaps") => 1.0,
        _ => 0.0,
    }
}

/// ResourceQuota admission for a new object (pods, PVCs, services): every quota'd
/// compute resource must be specified, and usage plus the request must stay within `hard`.
/// `existing` are the objects of the same kind already in the namespace.
pub fn check_quota(
    kind: &str,
    obj: &Value,
    quotas: &[Value],
    existing: &[Value],
) -> Result<(), String> {
    for q in quotas {
        let qname = q
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(hard) = q.pointer("/spec/hard").and_then(Value::as_object) else {
            continue;
        };
        if kind == "pods" {
            let mut missing: Vec<String> = Vec::new();
            let mut names: Vec<&String> = hard
                .keys()
                .filter(|k| COMPUTE.contains(&k.as_str()))
                .collect();
            names.sort();
            for res in names {
                let (section, r) = res.split_once('.').unwrap_or(("requests", res));
                let cs: Vec<String> = obj
                    .pointer("/spec/containers")
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter(|c| c.pointer(&format!("/resources/{section}/{r}")).is_none())
                            .map(|c| {
                                c.get("name")
                                    .and_then(Value::as_str)
                                    .unwrap_or_default()
                                    .to_string()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if !cs.is_empty() {
                    missing.push(format!("{res} for: {}", cs.join(",")));
                }
            }
            if !missing.is_empty() {
                return Err(format!(
                    "failed quota: {qname}: must specify {}",
                    missing.join("; ")
                ));
            }
        }
        let mut exceeded_req = Vec::new();
        let mut exceeded_used = Vec::new();
        let mut exceeded_lim = Vec::new();
        let mut names: Vec<&String> = hard.keys().collect();
        names.sort();
        for res in names {
            let want = usage_of(kind, obj, res);
            if want == 0.0 {
                continue;
            }
            let limit = parse_quantity(&hard[res]).unwrap_or(f64::MAX);
            let used: f64 = existing.iter().map(|o| usage_of(kind, o, res)).sum();
            if used + want > limit + 1e-9 {
                exceeded_req.push(format!("{res}={}", format_quantity(res, want)));
                exceeded_used.push(format!("{res}={}", format_quantity(res, used)));
                exceeded_lim.push(format!("{res}={}", format_quantity(res, limit)));
            }
        }
        if !exceeded_req.is_empty() {
            return Err(format!(
                "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                exceeded_req.join(","),
                exceeded_used.join(","),
                exceeded_lim.join(",")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_pod_breaks_restricted_in_the_real_servers_words() {
        let spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        let v = psa_violations("restricted", &spec);
        assert_eq!(
            v[0],
            "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)"
        );
        assert!(
            v.iter()
                .any(|x| x.starts_with("seccompProfile (pod or container \"app\""))
        );
        assert!(psa_violations("baseline", &spec).is_empty());
    }

    #[test]
    fn quota_requires_requests_and_counts_usage() {
        let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"requests.cpu": "1", "pods": "1"}}});
        let bare = json!({"spec": {"containers": [{"name": "app"}]}});
        let err = check_quota("pods", &bare, std::slice::from_ref(&quota), &[]).unwrap_err();
        assert_eq!(err, "failed quota: q: must specify requests.cpu for: app");
        let pod = json!({"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "500m"}}}]}});
        assert!(check_quota("pods", &pod, std::slice::from_ref(&quota), &[]).is_ok());
        let err = check_quota("pods", &pod, &[quota], std::slice::from_ref(&pod)).unwrap_err();
        assert!(
            err.starts_with("exceeded quota: q, requested: pods=1"),
            "{err}"
        );
    }

    #[test]
    fn quantities_parse_binary_and_decimal_suffixes() {
        assert_eq!(parse_quantity(&json!("500m")), Some(0.5));
        assert_eq!(
            parse_quantity(&json!("1.5Gi")),
            Some(1.5 * 1024.0 * 1024.0 * 1024.0)
        );
        assert_eq!(
            format_quantity("requests.memory", 1536.0 * 1024.0 * 1024.0),
            "1536Mi"
        );
    }
}
