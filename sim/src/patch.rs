//! Patches and field ownership: JSON merge patch (RFC 7386), strategic merge patch for the
//! list fields Urumi uses, JSON patch (RFC 6902), and server-side apply with
//! `managedFields` (`FieldsV1`) per field manager.
//!
//! A field set is a set of paths; each path element is `f:<field>`, `k:{<key fields>}` (an
//! item of a keyed list) or `v:<json>` (an item of a set list), exactly as in `fieldsV1`.
//!
//! ```text
//! apply(manager M, config A, live O):
//!   conflicts = fields(A) ∩ owned-by-others, where A's value differs from O's
//!   conflicts and !force -> 409 Conflict
//!   result    = O merged with A (keyed lists merged by key, others replaced)
//!   removed   = fields M applied last time, not in A, owned by nobody else -> deleted
//! ```

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// A field path (`["f:spec", "f:replicas"]`).
pub type Path = Vec<String>;
/// A set of field paths.
pub type FieldSet = BTreeSet<Path>;

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Items are maps identified by these key fields.
    Map(&'static [&'static str]),
    /// Items are scalars forming a set.
    Set,
    /// The list is replaced as a whole.
    Atomic,
}

/// Merge semantics of the list at `fields` (field names from the root, list items skipped).
pub fn list_kind(fields: &[&str]) -> ListKind {
    let n = fields.len();
    let last = fields.last().copied().unwrap_or_default();
    let prev = if n >= 2 { fields[n - 2] } else { "" };
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => ListKind::Map(&["name"]),
        "env" | "volumes" | "imagePullSecrets" => ListKind::Map(&["name"]),
        "volumeMounts" => ListKind::Map(&["mountPath"]),
        "ports"
            if matches!(
                prev,
                "containers" | "initContainers" | "ephemeralContainers"
            ) =>
        {
            ListKind::Map(&["containerPort", "protocol"])
        }
        "ports" if fields == ["spec", "ports"] => ListKind::Map(&["port", "protocol"]),
        "conditions" => ListKind::Map(&["type"]),
        "ownerReferences" => ListKind::Map(&["uid"]),
        "finalizers" if prev == "metadata" => ListKind::Set,
        _ => ListKind::Atomic,
    }
}

/// A key field's value, with the server default where the field has one (`protocol`).
fn key_value(item: &Value, k: &str) -> Option<Value> {
    match item.get(k) {
        Some(v) => Some(v.clone()),
        None if k == "protocol" => Some(json!("TCP")),
        None => None,
    }
}

fn item_key(item: &Value, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = key_value(item, k) {
            m.insert((*k).to_string(), v);
        }
    }
    format!("k:{}", Value::Object(m))
}

fn same_key(a: &Value, b: &Value, keys: &[&str]) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}

const SKIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The field set of an object: every leaf, every keyed-list item and set item.
pub fn field_set(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let mut path = Vec::new();
    let mut fields = Vec::new();
    for (k, v) in map {
        if k == "apiVersion" || k == "kind" {
            continue;
        }
        if k == "metadata" {
            if let Some(md) = v.as_object() {
                path.push("f:metadata".to_string());
                fields.push("metadata");
                for (mk, mv) in md {
                    if SKIPPED_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    collect_field(mk, mv, &mut fields, &mut path, &mut out);
                }
                fields.pop();
                path.pop();
            }
            continue;
        }
        collect_field(k, v, &mut fields, &mut path, &mut out);
    }
    out
}

fn collect_field<'a>(
    k: &'a str,
    v: &'a Value,
    fields: &mut Vec<&'a str>,
    path: &mut Path,
    out: &mut FieldSet,
) {
    path.push(format!("f:{k}"));
    fields.push(k);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (ck, cv) in m {
                collect_field(ck, cv, fields, path, out);
            }
        }
        Value::Array(items) => match list_kind(fields) {
            ListKind::Map(keys) => {
                for item in items {
                    path.push(item_key(item, keys));
                    out.insert(path.clone());
                    if let Some(m) = item.as_object() {
                        for (ck, cv) in m {
                            collect_field(ck, cv, fields, path, out);
                        }
                    }
                    path.pop();
                }
            }
            ListKind::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
    fields.pop();
    path.pop();
}

/// Renders a field set as a `fieldsV1` tree.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for p in set {
        let mut node = &mut root;
        for el in p {
            node = node
                .entry(el.clone())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("tree nodes are objects");
        }
    }
    for p in set {
        let mut node = &mut root;
        for el in p {
            node = node
                .get_mut(el)
                .and_then(Value::as_object_mut)
                .expect("path was inserted");
        }
        if !node.is_empty() && !node.contains_key(".") {
            node.insert(".".into(), json!({}));
        }
    }
    Value::Object(root)
}

/// Parses a `fieldsV1` tree back into a field set.
pub fn from_fields_v1(tree: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    walk_tree(tree, &mut path, &mut out);
    out
}

fn walk_tree(node: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = node.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            continue;
        }
        path.push(k.clone());
        let cm = child.as_object();
        if cm.is_none_or(|c| c.is_empty() || c.contains_key(".")) {
            out.insert(path.clone());
        }
        walk_tree(child, path, out);
        path.pop();
    }
}

fn find_item<'a>(arr: &'a [Value], el: &str) -> Option<(usize, &'a Value)> {
    if let Some(k) = el.strip_prefix("k:") {
        let key: Value = serde_json::from_str(k).ok()?;
        let km = key.as_object()?;
        arr.iter()
            .enumerate()
            .find(|(_, it)| km.iter().all(|(f, v)| key_value(it, f).as_ref() == Some(v)))
    } else if let Some(v) = el.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        arr.iter().enumerate().find(|(_, it)| **it == want)
    } else {
        None
    }
}

/// The value at a field path.
pub fn get_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        cur = if let Some(f) = el.strip_prefix("f:") {
            cur.get(f)?
        } else {
            find_item(cur.as_array()?, el)?.1
        };
    }
    Some(cur)
}

fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for el in parent {
        let next = if let Some(f) = el.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            let idx = cur
                .as_array()
                .and_then(|a| find_item(a, el))
                .map(|(i, _)| i);
            match idx {
                Some(i) => cur.get_mut(i),
                None => None,
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(arr) = cur.as_array_mut()
        && let Some((i, _)) = find_item(arr, last)
    {
        arr.remove(i);
    }
}

/// Renders a path the way conflict messages do: `.spec.containers[name="app"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            let parts: Vec<String> = key
                .as_object()
                .map(|m| m.iter().map(|(f, v)| format!("{f}={v}")).collect())
                .unwrap_or_default();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Merges an applied configuration into a live object (server-side apply merge).
pub fn apply_merge(target: &mut Value, applied: &Value, fields: &mut Vec<String>) {
    let Some(am) = applied.as_object() else {
        *target = applied.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let tm = target.as_object_mut().expect("made an object above");
    for (k, av) in am {
        fields.push(k.clone());
        match av {
            Value::Object(_) => {
                let t = tm.entry(k.clone()).or_insert_with(|| json!({}));
                apply_merge(t, av, fields);
            }
            Value::Array(items) => {
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                match list_kind(&refs) {
                    ListKind::Map(keys) => {
                        let t = tm.entry(k.clone()).or_insert_with(|| json!([]));
                        if !t.is_array() {
                            *t = json!([]);
                        }
                        let arr = t.as_array_mut().expect("made an array above");
                        for item in items {
                            if let Some(existing) = arr.iter_mut().find(|e| same_key(e, item, keys))
                            {
                                apply_merge(existing, item, fields);
                            } else {
                                arr.push(item.clone());
                            }
                        }
                    }
                    ListKind::Set => {
                        let t = tm.entry(k.clone()).or_insert_with(|| json!([]));
                        if !t.is_array() {
                            *t = json!([]);
                        }
                        let arr = t.as_array_mut().expect("made an array above");
                        for item in items {
                            if !arr.contains(item) {
                                arr.push(item.clone());
                            }
                        }
                    }
                    ListKind::Atomic => {
                        tm.insert(k.clone(), av.clone());
                    }
                }
            }
            _ => {
                tm.insert(k.clone(), av.clone());
            }
        }
        fields.pop();
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `apiVersion` the manager used.
    pub api_version: String,
    /// When the entry last changed.
    pub time: String,
    /// `status` for status-subresource writes.
    pub subresource: Option<String>,
    /// Owned fields.
    pub fields: FieldSet,
}

/// Reads `metadata.managedFields`.
pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    let Some(arr) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    arr.iter()
        .map(|e| ManagedEntry {
            manager: e
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            operation: e
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("Update")
                .to_string(),
            api_version: e
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            time: e
                .get("time")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .map(String::from),
            fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        })
        .collect()
}

/// Writes `metadata.managedFields` (drops entries that own nothing).
pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if arr.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(arr));
        }
    }
}

fn is_item(el: &str) -> bool {
    el.starts_with("k:") || el.starts_with("v:")
}

/// Records a non-apply write (create, update, merge/strategic/JSON patch) by `manager`:
/// changed fields move to the manager's `Update` entry; fields that no longer exist are
/// dropped from every entry.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
    now: &str,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_fields = field_set(new);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| match old {
            None => true,
            Some(o) => {
                let last = p.last().map(String::as_str).unwrap_or_default();
                if is_item(last) {
                    get_at(o, p).is_none()
                } else {
                    get_at(o, p) != get_at(new, p)
                }
            }
        })
        .cloned()
        .collect();
    for e in &mut entries {
        e.fields
            .retain(|p| new_fields.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let sub = subresource.map(String::from);
        if let Some(e) = entries
            .iter_mut()
            .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == sub)
        {
            e.fields.extend(changed);
            e.time = now.to_string();
            e.api_version = api_version.to_string();
        } else {
            entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now.to_string(),
                subresource: sub,
                fields: changed,
            });
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    write_managed(new, &entries);
}

/// Server-side apply of `applied` by `manager` onto `live` (or onto nothing: create).
///
/// # Errors
/// The conflicting `(manager, field)` pairs when `force` is false and other managers own
/// fields the configuration sets to different values.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<(String, String)>> {
    let mut applied = applied.clone();
    if let Some(md) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("managedFields");
        md.remove("resourceVersion");
    }
    let new_set = field_set(&applied);
    let mut entries = live.map(read_managed).unwrap_or_default();
    let mut result = live.cloned().unwrap_or_else(|| json!({}));
    if let Some(md) = result.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("managedFields");
    }

    let mut conflicts = Vec::new();
    for e in &mut entries {
        if e.manager == manager && e.operation == "Apply" {
            continue;
        }
        let mut lost = Vec::new();
        for p in e.fields.intersection(&new_set) {
            let last = p.last().map(String::as_str).unwrap_or_default();
            // Write-only fields (Secret `stringData`) are never in the live object.
            if is_item(last) || p.first().is_some_and(|f| f == "f:stringData") {
                continue;
            }
            let (mine, live) = (get_at(&applied, p), get_at(&result, p));
            // Maps merge: an applied map (`spec: {}`) changes only its leaves, which are
            // paths of their own; as in structured-merge-diff, the map itself never conflicts.
            if mine.is_some_and(Value::is_object) && live.is_some_and(Value::is_object) {
                continue;
            }
            if mine != live {
                lost.push(p.clone());
            }
        }
        for p in lost {
            conflicts.push((e.manager.clone(), path_string(&p)));
            if force {
                e.fields.remove(&p);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    let mut fields = Vec::new();
    apply_merge(&mut result, &applied, &mut fields);

    let previous: FieldSet = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let owned_by_others = |p: &Path, entries: &[ManagedEntry]| {
        entries
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.fields.contains(p))
    };
    let mut stale: Vec<&Path> = previous
        .iter()
        .filter(|p| !new_set.contains(*p) && !owned_by_others(p, &entries))
        .collect();
    stale.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in stale {
        // A stale parent of a field that is still applied stays.
        if new_set
            .iter()
            .any(|n| n.len() > p.len() && n.starts_with(p))
        {
            continue;
        }
        remove_at(&mut result, p);
        // Prune parents that became empty and that nobody owns.
        let mut anc = p.clone();
        while anc.len() > 1 {
            anc.pop();
            let empty = match get_at(&result, &anc) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if empty && !new_set.contains(&anc) && !owned_by_others(&anc, &entries) {
                remove_at(&mut result, &anc);
            } else {
                break;
            }
        }
    }

    let unchanged = previous == new_set;
    if let Some(e) = entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Apply")
    {
        e.fields = new_set;
        if !unchanged {
            e.time = now.to_string();
        }
        e.api_version = api_version.to_string();
    } else {
        entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource: None,
            fields: new_set,
        });
    }
    entries.retain(|e| !e.fields.is_empty());
    write_managed(&mut result, &entries);
    Ok(result)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(pm) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let tm = target.as_object_mut().expect("made an object above");
    for (k, v) in pm {
        if v.is_null() {
            tm.remove(k);
        } else {
            merge_patch(tm.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Strategic merge patch: merge patch, except that keyed lists merge by key (`$patch:
/// delete` removes an item), set lists take the union, and `$patch: replace` replaces a map.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, fields: &mut Vec<String>) {
    let Some(pm) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = patch.clone();
        if let Some(m) = p.as_object_mut() {
            m.remove("$patch");
        }
        *target = p;
        return;
    }
    if !target.is_object() {
        *target = json!({});
    }
    let tm = target.as_object_mut().expect("made an object above");
    for (k, v) in pm {
        if k.starts_with('$') {
            continue;
        }
        fields.push(k.clone());
        if v.is_null() {
            tm.remove(k);
        } else if let Value::Array(items) = v {
            let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
            match list_kind(&refs) {
                ListKind::Map(keys) => {
                    let primary = &keys[..1];
                    let t = tm.entry(k.clone()).or_insert_with(|| json!([]));
                    if !t.is_array() {
                        *t = json!([]);
                    }
                    let arr = t.as_array_mut().expect("made an array above");
                    for item in items {
                        let directive = item.get("$patch").and_then(Value::as_str);
                        let pos = arr.iter().position(|e| same_key(e, item, primary));
                        match (directive, pos) {
                            (Some("delete"), Some(i)) => {
                                arr.remove(i);
                            }
                            (Some("delete"), None) => {}
                            (_, Some(i)) => strategic_merge_patch(&mut arr[i], item, fields),
                            (_, None) => {
                                let mut fresh = Value::Null;
                                strategic_merge_patch(&mut fresh, item, fields);
                                arr.push(fresh);
                            }
                        }
                    }
                }
                ListKind::Set => {
                    let t = tm.entry(k.clone()).or_insert_with(|| json!([]));
                    if !t.is_array() {
                        *t = json!([]);
                    }
                    let arr = t.as_array_mut().expect("made an array above");
                    for item in items {
                        if !arr.contains(item) {
                            arr.push(item.clone());
                        }
                    }
                }
                ListKind::Atomic => {
                    tm.insert(k.clone(), v.clone());
                }
            }
        } else if v.is_object() {
            strategic_merge_patch(tm.entry(k.clone()).or_insert(Value::Null), v, fields);
        } else {
            tm.insert(k.clone(), v.clone());
        }
        fields.pop();
    }
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(p: &str) -> ApiResult<Vec<String>> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let rest = p
        .strip_prefix('/')
        .ok_or_else(|| ApiError::unprocessable(format!("the server rejected our request due to an error in our request: invalid JSON pointer {p:?}")))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn pointer_mut<'a>(v: &'a mut Value, toks: &[String]) -> Option<&'a mut Value> {
    let mut cur = v;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => a.get_mut(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn missing(path: &str) -> ApiError {
    ApiError::unprocessable(format!(
        "the server rejected our request due to an error in our request: doc is missing path: \"{path}\": missing value"
    ))
}

fn json_remove(doc: &mut Value, path: &str) -> ApiResult<Value> {
    let toks = split_pointer(path)?;
    let (last, parent) = toks.split_last().ok_or_else(|| missing(path))?;
    let p = pointer_mut(doc, parent).ok_or_else(|| missing(path))?;
    match p {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(path)),
        Value::Array(a) => {
            let i = last.parse::<usize>().map_err(|_| missing(path))?;
            if i < a.len() {
                Ok(a.remove(i))
            } else {
                Err(missing(path))
            }
        }
        _ => Err(missing(path)),
    }
}

fn json_add(doc: &mut Value, path: &str, value: Value, replace: bool) -> ApiResult<()> {
    let toks = split_pointer(path)?;
    let Some((last, parent)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    let p = pointer_mut(doc, parent).ok_or_else(|| missing(path))?;
    match p {
        Value::Object(m) => {
            if replace && !m.contains_key(last) {
                return Err(missing(path));
            }
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
            } else {
                let i = last.parse::<usize>().map_err(|_| missing(path))?;
                if replace {
                    *a.get_mut(i).ok_or_else(|| missing(path))? = value;
                } else if i <= a.len() {
                    a.insert(i, value);
                } else {
                    return Err(missing(path));
                }
            }
        }
        _ => return Err(missing(path)),
    }
    Ok(())
}

/// RFC 6902 JSON patch.
///
/// # Errors
/// 400 when the patch is not a list of operations; 422 when an operation fails.
pub fn json_patch(doc: &mut Value, patch: &Value) -> ApiResult<()> {
    let ops = patch.as_array().ok_or_else(|| {
        ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    })?;
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let value = || {
            op.get("value").cloned().ok_or_else(|| ApiError::unprocessable(format!("the server rejected our request due to an error in our request: missing value for {kind} operation")))
        };
        match kind {
            "add" => json_add(doc, path, value()?, false)?,
            "replace" => json_add(doc, path, value()?, true)?,
            "remove" => {
                json_remove(doc, path)?;
            }
            "move" | "copy" => {
                let from = op.get("from").and_then(Value::as_str).unwrap_or_default();
                let v = if kind == "move" {
                    json_remove(doc, from)?
                } else {
                    doc.pointer(from).cloned().ok_or_else(|| missing(from))?
                };
                json_add(doc, path, v, false)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(ApiError::unprocessable(format!(
                        "the server rejected our request due to an error in our request: testing value {path} failed: test failed"
                    )));
                }
            }
            other => {
                return Err(ApiError::unprocessable(format!(
                    "the server rejected our request due to an error in our request: Unexpected kind: {other}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(image: &str, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
        })
    }

    #[test]
    fn fields_v1_round_trips_through_a_tree() {
        let set = field_set(&deploy("nginx", 1));
        let tree = to_fields_v1(&set);
        assert!(
            tree.pointer("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"app\"}/.")
                .is_some()
        );
        assert_eq!(from_fields_v1(&tree), set);
    }

    #[test]
    fn a_second_manager_conflicts_unless_it_forces() {
        let live =
            server_side_apply(None, &deploy("nginx", 1), "a", false, "apps/v1", "t").unwrap();
        let err = server_side_apply(Some(&live), &deploy("nginx", 3), "b", false, "apps/v1", "t")
            .unwrap_err();
        assert_eq!(err, vec![("a".to_string(), ".spec.replicas".to_string())]);
        let forced =
            server_side_apply(Some(&live), &deploy("nginx", 3), "b", true, "apps/v1", "t").unwrap();
        assert_eq!(forced.pointer("/spec/replicas"), Some(&json!(3)));
    }

    #[test]
    fn an_applied_empty_map_does_not_conflict_with_the_fields_below_it() {
        // `kubectl apply` of `kubectl create namespace --dry-run -o json` owns `f:spec: {}`;
        // the server then set spec.finalizers. helm --create-namespace applies `spec: {}` too.
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spec": {}});
        let mut live = server_side_apply(None, &ns, "kubectl", false, "v1", "t").unwrap();
        live["spec"]["finalizers"] = json!(["kubernetes"]);
        let again = server_side_apply(Some(&live), &ns, "helm", false, "v1", "t").unwrap();
        assert_eq!(
            again.pointer("/spec/finalizers/0"),
            Some(&json!("kubernetes"))
        );
        // A leaf set to another value still conflicts.
        let cm = |b: i64| json!({"metadata": {"name": "x"}, "spec": {"a": {"b": b}}});
        let live = server_side_apply(None, &cm(1), "m", false, "v1", "t").unwrap();
        let err = server_side_apply(Some(&live), &cm(2), "n", false, "v1", "t").unwrap_err();
        assert_eq!(err, vec![("m".to_string(), ".spec.a.b".to_string())]);
    }

    #[test]
    fn fields_dropped_from_an_applied_config_are_removed() {
        let live =
            server_side_apply(None, &deploy("nginx", 1), "a", false, "apps/v1", "t").unwrap();
        let mut cfg = deploy("nginx", 1);
        cfg["metadata"].as_object_mut().unwrap().remove("labels");
        let next = server_side_apply(Some(&live), &cfg, "a", false, "apps/v1", "t").unwrap();
        assert!(next.pointer("/metadata/labels").is_none());
    }

    #[test]
    fn strategic_merge_patch_merges_containers_by_name() {
        let mut live = deploy("nginx", 1);
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "httpd"}, {"name": "side", "image": "busybox"}]}}}});
        strategic_merge_patch(&mut live, &patch, &mut Vec::new());
        let cs = live
            .pointer("/spec/template/spec/containers")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "httpd");
    }

    #[test]
    fn json_patch_applies_operations_in_order_and_fails_a_test_op() {
        let mut doc = json!({"a": [1, 2]});
        json_patch(&mut doc, &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "replace", "path": "/a/0", "value": 0}])).unwrap();
        assert_eq!(doc, json!({"a": [0, 2, 3]}));
        let err = json_patch(
            &mut doc,
            &json!([{"op": "test", "path": "/a/0", "value": 9}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }
}
