//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) decoded to
//! JSON, for the kinds typed client-go clients send that way to the simulator: Secrets (helm
//! v4 keeps its releases in them through the typed clientset, which sends protobuf and does
//! not fall back to JSON on 415), the DeleteOptions of its typed deletes, and TokenRequests
//! (`kubectl create token`). Other kinds stay
//! 415, as the README says.
//!
//! ```text
//!  "k8s\0" ++ runtime.Unknown{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}
//!  raw = v1.Secret{1: ObjectMeta, 2: data map<string,bytes>, 3: type, 4: stringData, 5: immutable}
//!  ObjectMeta{1: name, 2: generateName, 3: namespace, 5: uid, 6: resourceVersion,
//!             11: labels, 12: annotations, 14: finalizers}   (other fields are server-set)
//! ```
//! Responses are JSON: client-go's protobuf clients also accept `application/json`.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The magic prefix of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// One field's payload on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32- or 64-bit values (no field decoded here uses them).
    Fixed,
}

/// The `(field number, payload)` pairs of one message, in wire order.
fn fields(mut buf: &[u8]) -> Option<Vec<(u64, Wire<'_>)>> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let wire = match key & 7 {
            0 => Wire::Varint(varint(&mut buf)?),
            2 => {
                let n = usize::try_from(varint(&mut buf)?).ok()?;
                let (b, rest) = (buf.get(..n)?, buf.get(n..)?);
                buf = rest;
                Wire::Bytes(b)
            }
            1 => {
                buf = buf.get(8..)?;
                Wire::Fixed
            }
            5 => {
                buf = buf.get(4..)?;
                Wire::Fixed
            }
            _ => return None,
        };
        out.push((key >> 3, wire));
    }
    Some(out)
}

fn text(w: Wire<'_>) -> Option<String> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
}

/// A `map<string, V>` entry: `{1: key, 2: value}`.
fn entry(w: Wire<'_>) -> Option<(String, &[u8])> {
    let Wire::Bytes(b) = w else { return None };
    let mut key = String::new();
    let mut value: &[u8] = &[];
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, f) => key = text(f)?,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Some((key, value))
}

fn string_map(m: &mut Map<String, Value>, w: Wire<'_>) -> Option<()> {
    let (k, v) = entry(w)?;
    m.insert(k, Value::String(String::from_utf8(v.to_vec()).ok()?));
    Some(())
}

fn object_meta(b: &[u8]) -> Option<Value> {
    let mut md = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (Map::new(), Map::new(), Vec::new());
    for (n, f) in fields(b)? {
        match n {
            1 => _ = md.insert("name".into(), Value::String(text(f)?)),
            2 => _ = md.insert("generateName".into(), Value::String(text(f)?)),
            3 => _ = md.insert("namespace".into(), Value::String(text(f)?)),
            5 => _ = md.insert("uid".into(), Value::String(text(f)?)),
            6 => _ = md.insert("resourceVersion".into(), Value::String(text(f)?)),
            11 => string_map(&mut labels, f)?,
            12 => string_map(&mut annotations, f)?,
            14 => finalizers.push(Value::String(text(f)?)),
            _ => {}
        }
    }
    for (k, v) in [
        ("labels", Value::Object(labels)),
        ("annotations", Value::Object(annotations)),
        ("finalizers", Value::Array(finalizers)),
    ] {
        let empty =
            v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty);
        if !empty {
            md.insert(k.into(), v);
        }
    }
    Some(Value::Object(md))
}

fn secret(b: &[u8]) -> Option<Value> {
    let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {}});
    let (mut data, mut string_data) = (Map::new(), Map::new());
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(m)) => s["metadata"] = object_meta(m)?,
            (2, f) => {
                let (k, v) = entry(f)?;
                let v = base64::engine::general_purpose::STANDARD.encode(v);
                data.insert(k, Value::String(v));
            }
            (3, f) => s["type"] = Value::String(text(f)?),
            (4, f) => string_map(&mut string_data, f)?,
            (5, Wire::Varint(v)) => s["immutable"] = Value::Bool(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        s["data"] = Value::Object(data);
    }
    if !string_data.is_empty() {
        s["stringData"] = Value::Object(string_data);
    }
    Some(s)
}

/// `TokenRequest{1: metadata, 2: spec{1: audiences, 4: expirationSeconds}}` (`kubectl
/// create token`); the bound object reference (spec field 3) is not decoded.
fn token_request(b: &[u8]) -> Option<Value> {
    let mut t = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {}, "spec": {}});
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Bytes(m)) => t["metadata"] = object_meta(m)?,
            (2, Wire::Bytes(spec)) => {
                let mut audiences = Vec::new();
                for (m, g) in fields(spec)? {
                    match (m, g) {
                        (1, g) => audiences.push(Value::String(text(g)?)),
                        (4, Wire::Varint(secs)) => t["spec"]["expirationSeconds"] = json!(secs),
                        _ => {}
                    }
                }
                t["spec"]["audiences"] = Value::Array(audiences);
            }
            _ => {}
        }
    }
    Some(t)
}

/// `DeleteOptions{1: gracePeriodSeconds, 2: preconditions{1: uid, 2: resourceVersion},
/// 3: orphanDependents, 4: propagationPolicy, 5: dryRun}` (client-go's typed deletes).
fn delete_options(b: &[u8]) -> Option<Value> {
    let mut o = json!({"apiVersion": "v1", "kind": "DeleteOptions"});
    let mut dry_run = Vec::new();
    for (n, f) in fields(b)? {
        match (n, f) {
            (1, Wire::Varint(v)) => o["gracePeriodSeconds"] = json!(v),
            (2, Wire::Bytes(p)) => {
                let mut pre = Map::new();
                for (m, g) in fields(p)? {
                    match m {
                        1 => _ = pre.insert("uid".into(), Value::String(text(g)?)),
                        2 => _ = pre.insert("resourceVersion".into(), Value::String(text(g)?)),
                        _ => {}
                    }
                }
                o["preconditions"] = Value::Object(pre);
            }
            (3, Wire::Varint(v)) => o["orphanDependents"] = Value::Bool(v != 0),
            (4, f) => o["propagationPolicy"] = Value::String(text(f)?),
            (5, f) => dry_run.push(Value::String(text(f)?)),
            _ => {}
        }
    }
    if !dry_run.is_empty() {
        o["dryRun"] = Value::Array(dry_run);
    }
    Some(o)
}

/// The JSON object of a protobuf body, when it is a kind decoded here; `None` otherwise
/// (the caller answers 415 Unsupported Media Type, as before).
pub fn decode(body: &[u8]) -> Option<Value> {
    let unknown = fields(body.strip_prefix(MAGIC)?)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (n, f) in unknown {
        match (n, f) {
            (1, Wire::Bytes(tm)) => {
                for (m, g) in fields(tm)? {
                    match m {
                        1 => api_version = text(g)?,
                        2 => kind = text(g)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = Some(r),
            _ => {}
        }
    }
    match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw?),
        ("authentication.k8s.io/v1", "TokenRequest") => token_request(raw?),
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => delete_options(raw?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(n << 3 | 2).unwrap()];
        out.push(u8::try_from(payload.len()).unwrap());
        out.extend_from_slice(payload);
        out
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        [field(1, k.as_bytes()), field(2, v)].concat()
    }

    #[test]
    fn a_protobuf_secret_decodes_to_its_json() {
        let meta = [
            field(1, b"sh.helm.release.v1.urumi.v1"),
            field(3, b"urumi-system"),
            field(11, &entry("owner", b"helm")),
            field(11, &entry("status", b"deployed")),
        ]
        .concat();
        let secret = [
            field(1, &meta),
            field(2, &entry("release", b"\x1f\x8bgz")),
            field(3, b"helm.sh/release.v1"),
            vec![5 << 3, 1],
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &secret)].concat();
        assert_eq!(
            decode(&body),
            Some(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "sh.helm.release.v1.urumi.v1", "namespace": "urumi-system",
                             "labels": {"owner": "helm", "status": "deployed"}},
                "data": {"release": "H4tneg=="},
                "type": "helm.sh/release.v1",
                "immutable": true,
            }))
        );
    }

    #[test]
    fn a_protobuf_token_request_decodes_with_its_lifetime() {
        let spec = [
            field(1, b"https://kubernetes.default.svc"),
            vec![4 << 3, 0x90, 0x1c],
        ]
        .concat();
        let raw = [field(1, &field(1, b"urumi-worker")), field(2, &spec)].concat();
        let type_meta = [
            field(1, b"authentication.k8s.io/v1"),
            field(2, b"TokenRequest"),
        ]
        .concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let t = decode(&body).expect("decodes");
        assert_eq!(t["metadata"]["name"], "urumi-worker");
        assert_eq!(t["spec"]["expirationSeconds"], 3600);
        assert_eq!(
            t["spec"]["audiences"],
            json!(["https://kubernetes.default.svc"])
        );
    }

    #[test]
    fn protobuf_delete_options_decode_with_their_propagation_policy() {
        let raw = [field(4, b"Background"), field(5, b"All")].concat();
        let type_meta = [field(1, b"v1"), field(2, b"DeleteOptions")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let o = decode(&body).expect("decodes");
        assert_eq!(o["propagationPolicy"], "Background");
        assert_eq!(o["dryRun"], json!(["All"]));
    }

    #[test]
    fn other_kinds_and_garbage_are_not_decoded() {
        let type_meta = [field(1, b"v1"), field(2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), field(1, &type_meta), field(2, b"")].concat();
        assert_eq!(decode(&body), None);
        assert_eq!(decode(b"k8s\0\xff"), None);
        assert_eq!(decode(b"{}"), None);
    }
}
