//! The HTTP front: routes Kubernetes REST paths (discovery, resources, subresources,
//! `?watch=1` streams) and the `/_sim/...` admin endpoints onto the store, applies
//! injected faults and writes the request log.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::Cluster;
use crate::auth::Identity;
use crate::controllers::JobScript;
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultAction, FaultConfig, FaultRule, RequestRecord};
use crate::policy::Requester;
use crate::rbac::{self, Attributes, Decision, ResourceAttributes, Verb};
use crate::resources::{self, RESOURCES};
use crate::scale::Change;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{EventType, PatchType, State, WatchEvent, WriteOpts};

/// Response body: whole or streamed.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Returned to hyper to close a connection without answering (an injected drop).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

const MAX_BODY: usize = 16 * 1024 * 1024;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed_unsync()
}

fn json_response(code: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn value_response(code: u16, v: &Value) -> Response<Body> {
    json_response(code, serde_json::to_vec(v).expect("JSON values serialize"))
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = value_response(e.code, &e.to_status());
    if let Some(ra) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(ra));
    }
    r
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Where a request goes.
#[derive(Debug)]
enum Route {
    Json(Value),
    Text(&'static str),
    Admin(Vec<String>),
    Resource {
        res: usize,
        ns: Option<String>,
        name: Option<String>,
        sub: Option<String>,
        watch_path: bool,
    },
    /// `/api/v1/namespaces/{ns}/services/{target}/proxy{path}` (`path` as sent, not decoded).
    ServiceProxy {
        ns: String,
        target: String,
        path: String,
    },
    NotFound,
}

/// The Service proxy route, if `path` is one.
fn service_proxy_route(path: &str) -> Option<Route> {
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(8, '/').collect();
    match parts.as_slice() {
        [
            "api",
            "v1",
            "namespaces",
            ns,
            "services",
            target,
            "proxy",
            rest @ ..,
        ] if !ns.is_empty() && !target.is_empty() => Some(Route::ServiceProxy {
            ns: percent_decode(ns),
            target: percent_decode(target),
            path: format!("/{}", rest.first().copied().unwrap_or_default()),
        }),
        _ => None,
    }
}

fn route(path: &str) -> Route {
    if let Some(r) = service_proxy_route(path) {
        return r;
    }
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["version"] => Route::Json(resources::version()),
        ["healthz" | "livez" | "readyz", ..] => Route::Text("ok"),
        ["openapi", "v3"] => Route::Json(resources::openapi_v3_root()),
        ["openapi", "v3", rest @ ..] => {
            resources::openapi_v3_gv(&rest.join("/")).map_or(Route::NotFound, Route::Json)
        }
        ["_sim", rest @ ..] => Route::Admin(rest.iter().map(|x| (*x).to_string()).collect()),
        ["api"] => Route::Json(resources::api_versions("127.0.0.1:6443")),
        ["api", "v1"] => Route::Json(resources::api_resource_list("", "v1")),
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis"] => Route::Json(resources::api_group_list()),
        ["apis", g] => resources::api_group(g).map_or(Route::NotFound, Route::Json),
        ["apis", g, v] if resources::has_group_version(g, v) => {
            Route::Json(resources::api_resource_list(g, v))
        }
        ["apis", g, v, rest @ ..] => resource_route(g, v, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(g: &str, v: &str, rest: &[&str]) -> Route {
    let (watch_path, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let namespaced_res = |p: &str| resources::find(g, v, p).filter(|i| RESOURCES[*i].namespaced);
    let cluster_res = |p: &str| resources::find(g, v, p).filter(|i| !RESOURCES[*i].namespaced);
    let mk =
        |res: usize, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Route::Resource {
            res,
            ns: ns.map(String::from),
            name: name.map(String::from),
            sub: sub.map(String::from),
            watch_path,
        };
    match rest {
        ["namespaces", ns, p, tail @ ..] if namespaced_res(p).is_some() => {
            let res = namespaced_res(p).expect("checked");
            match tail {
                [] => mk(res, Some(ns), None, None),
                [name] => mk(res, Some(ns), Some(name), None),
                [name, sub] => mk(res, Some(ns), Some(name), Some(sub)),
                _ => Route::NotFound,
            }
        }
        [p, tail @ ..] => {
            if let Some(res) = cluster_res(p) {
                match tail {
                    [] => mk(res, None, None, None),
                    [name] => mk(res, None, Some(name), None),
                    [name, sub] => mk(res, None, Some(name), Some(sub)),
                    _ => Route::NotFound,
                }
            } else if let (Some(res), []) = (namespaced_res(p), tail) {
                mk(res, None, None, None)
            } else {
                Route::NotFound
            }
        }
        _ => Route::NotFound,
    }
}

fn lock(c: &Cluster) -> std::sync::MutexGuard<'_, State> {
    c.state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Outcome {
    resp: Response<Body>,
    changed: bool,
    /// The name of the object the request created, if it created one.
    created: Option<String>,
}

impl From<Response<Body>> for Outcome {
    fn from(resp: Response<Body>) -> Self {
        Self {
            resp,
            changed: false,
            created: None,
        }
    }
}

fn name_of(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(String::from)
}

/// Serves one request.
///
/// # Errors
/// [`Dropped`] when a fault says to close the connection.
pub async fn handle(
    cluster: Arc<Cluster>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let params = parse_query(&query);
    let hdr = |h: header::HeaderName| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let user_agent = hdr(header::USER_AGENT);
    let content_type = hdr(header::CONTENT_TYPE);
    let r = route(&path);

    let (verb, resource, ns, name) = match &r {
        Route::Resource {
            res,
            ns,
            name,
            sub,
            watch_path,
        } => {
            let watch = *watch_path
                || matches!(params.get("watch").map(String::as_str), Some("1" | "true"));
            let verb = match (&method, name.is_some()) {
                (&Method::GET, true) if watch => "watch",
                (&Method::GET, true) => "get",
                (&Method::GET, false) if watch => "watch",
                (&Method::GET, false) => "list",
                (&Method::POST, _) => "create",
                (&Method::PUT, _) => "update",
                (&Method::PATCH, _) => "patch",
                (&Method::DELETE, true) => "delete",
                (&Method::DELETE, false) => "deletecollection",
                _ => "unknown",
            };
            let resource = match sub {
                Some(s) => format!("{}/{s}", RESOURCES[*res].plural),
                None => RESOURCES[*res].plural.to_string(),
            };
            (verb.to_string(), resource, ns.clone(), name.clone())
        }
        Route::ServiceProxy { ns, target, .. } => {
            let verb = match method {
                Method::GET | Method::HEAD => "get",
                Method::POST => "create",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "unknown",
            };
            (
                verb.into(),
                "services/proxy".into(),
                Some(ns.clone()),
                Some(target.clone()),
            )
        }
        Route::Admin(_) => ("admin".into(), String::new(), None, None),
        _ => ("discovery".into(), String::new(), None, None),
    };
    let mut record = RequestRecord {
        seq: 0,
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        verb: verb.clone(),
        resource: resource.clone(),
        namespace: ns.clone(),
        name: name.clone(),
        field_manager: params.get("fieldManager").cloned(),
        status: 0,
        latency_ms: 0.0,
        changed: false,
        injected: false,
        created: None,
        user_agent: user_agent.clone(),
        user: None,
    };

    // Who is asking, and may they: before faults, so a refused request is never injected.
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let identity = cluster
        .tokens
        .authenticate(&lock(&cluster), authorization.as_deref());
    let user_info = identity.as_ref().ok().map(Identity::user_info);
    let refusal = match identity {
        Err(e) => Some(e),
        Ok(Identity::Admin) => {
            record.user = Some(crate::auth::ADMIN_USER.to_string());
            None
        }
        Ok(Identity::User(user)) => {
            record.user = Some(user.name.clone());
            let access = access(&r, &verb, &method, &path, &params);
            let st = lock(&cluster);
            match access {
                Access::Open => None,
                Access::Closed(a) => Some(rbac::forbidden(&user.name, &a, "")),
                Access::Checked(a) => match rbac::authorize(&st, &user, &a) {
                    Decision::Deny { reason } => Some(rbac::forbidden(&user.name, &a, &reason)),
                    Decision::Allow => {
                        creates_by_apply(&st, &r, &a, &content_type).and_then(|create| {
                            match rbac::authorize(&st, &user, &Attributes::Resource(create.clone()))
                            {
                                Decision::Allow => None,
                                Decision::Deny { reason } => {
                                    Some(rbac::forbidden_create_on_update(&create, &reason))
                                }
                            }
                        })
                    }
                },
            }
        }
    };
    if let Some(e) = refusal {
        record.status = e.code;
        record.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        cluster.log.push(record);
        return Ok(error_response(&e));
    }

    // An after-apply fault lets the request through and replaces its answer at the end.
    let mut after_apply = None;
    if !matches!(r, Route::Admin(_)) {
        let (latency, action) = cluster.faults.decide(&verb, &resource, ns.as_deref());
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match action {
            FaultAction::Pass => {}
            FaultAction::Drop => {
                record.injected = true;
                record.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
                cluster.log.push(record);
                return Err(Dropped);
            }
            FaultAction::Hang(d) => {
                record.injected = true;
                tokio::time::sleep(d).await;
                record.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
                cluster.log.push(record);
                return Err(Dropped);
            }
            FaultAction::Fail(e) => {
                record.injected = true;
                record.status = e.code;
                record.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
                cluster.log.push(record);
                return Ok(error_response(&e));
            }
            a @ (FaultAction::FailAfterApply(_) | FaultAction::DropAfterApply) => {
                after_apply = Some(a);
            }
        }
    }

    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let protobuf = content_type.starts_with("application/vnd.kubernetes.protobuf");
    // A protobuf Secret (helm's release storage) is served as its JSON; other binary bodies
    // are 415.
    let decoded = if protobuf && !body.is_empty() {
        crate::protobuf::decode(&body)
    } else {
        None
    };
    let (body, content_type) = match decoded {
        Some(v) => (
            Bytes::from(serde_json::to_vec(&v).expect("JSON values serialize")),
            "application/json".to_string(),
        ),
        None => (body, content_type),
    };
    let binary = content_type.starts_with("application/vnd.kubernetes.protobuf")
        || content_type.starts_with("application/cbor");
    let outcome = if binary && !body.is_empty() {
        // Like a server without protobuf/CBOR support: client-go then falls back to JSON.
        Outcome::from(error_response(&ApiError::unsupported_media_type(
            &content_type,
        )))
    } else if body.len() > MAX_BODY {
        Outcome::from(error_response(&ApiError::new_too_large()))
    } else {
        match r {
            Route::Json(v) => Outcome::from(value_response(200, &v)),
            Route::Text(t) => {
                let mut resp = Response::new(full(t));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Outcome::from(resp)
            }
            Route::NotFound => Outcome::from(error_response(&ApiError::no_route())),
            Route::ServiceProxy { ns, target, path } => {
                let answer =
                    crate::proxy::answer(&lock(&cluster), &method, &ns, &target, &path, &query);
                Outcome::from(match answer {
                    Ok(a) => {
                        let mut resp = Response::new(full(a.body));
                        *resp.status_mut() =
                            StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
                        resp.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static(a.content_type),
                        );
                        resp
                    }
                    Err(e) => error_response(&e),
                })
            }
            Route::Admin(rest) => {
                Outcome::from(admin(&cluster, &method, &rest, &params, &body).await)
            }
            Route::Resource {
                res, ns, name, sub, ..
            } => {
                let requester = user_info.map(|user| Requester {
                    user,
                    subresource: sub.clone(),
                });
                let ctx = Ctx {
                    res,
                    ns,
                    name,
                    sub,
                    requester,
                    params: &params,
                    content_type: &content_type,
                    user_agent: &user_agent,
                };
                match resource_verb(&cluster, &verb, &ctx, &body) {
                    Ok(o) => o,
                    Err(e) => Outcome::from(error_response(&e)),
                }
            }
        }
    };
    record.status = outcome.resp.status().as_u16();
    record.changed = outcome.changed;
    record.created = outcome.created;
    record.latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    match after_apply {
        Some(FaultAction::FailAfterApply(e)) => {
            record.injected = true;
            record.status = e.code;
            cluster.log.push(record);
            Ok(error_response(&e))
        }
        // DropAfterApply, the only other action kept in `after_apply`.
        Some(_) => {
            record.injected = true;
            record.status = 0;
            cluster.log.push(record);
            Err(Dropped)
        }
        None => {
            cluster.log.push(record);
            Ok(outcome.resp)
        }
    }
}

/// How a token user's request is authorized.
enum Access {
    /// Allowed for every authenticated user (discovery, `/version`, health, OpenAPI).
    Open,
    /// Never allowed (the simulator's own `/_sim/...` routes).
    Closed(Attributes),
    /// Decided by RBAC.
    Checked(Attributes),
}

/// The name a list or watch is confined to by `fieldSelector=metadata.name=<name>`.
fn selected_name(params: &HashMap<String, String>) -> Option<String> {
    params.get("fieldSelector").and_then(|sel| {
        sel.split(',').find_map(|term| {
            term.strip_prefix("metadata.name==")
                .or_else(|| term.strip_prefix("metadata.name="))
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .map(String::from)
        })
    })
}

/// The authorizer's view of a request, as the real server's request info builds it.
fn access(
    r: &Route,
    verb: &str,
    method: &Method,
    path: &str,
    params: &HashMap<String, String>,
) -> Access {
    let non_resource = || Attributes::NonResource {
        verb: method.as_str().to_ascii_lowercase(),
        path: path.to_string(),
    };
    match r {
        Route::Json(_) | Route::Text(_) => Access::Open,
        Route::Admin(_) => Access::Closed(non_resource()),
        Route::NotFound => {
            let discovery = ["/api", "/apis", "/openapi"]
                .iter()
                .any(|p| path == *p || path.starts_with(&format!("{p}/")));
            if discovery {
                Access::Open
            } else {
                Access::Checked(non_resource())
            }
        }
        Route::Resource {
            res, ns, name, sub, ..
        } => {
            let Some(v) = Verb::parse(verb) else {
                return Access::Open;
            };
            let name = match v {
                Verb::List | Verb::Watch if name.is_none() => selected_name(params),
                _ => name.clone(),
            };
            Access::Checked(Attributes::Resource(ResourceAttributes::of(
                v,
                *res,
                ns.as_deref(),
                name.as_deref(),
                sub.as_deref(),
            )))
        }
        Route::ServiceProxy { ns, target, .. } => match Verb::parse(verb) {
            None => Access::Open,
            Some(v) => Access::Checked(Attributes::Resource(ResourceAttributes::of(
                v,
                resources::SERVICES,
                Some(ns),
                Some(target),
                Some("proxy"),
            ))),
        },
    }
}

/// For a server-side apply of an object that does not exist yet, the `create` the real
/// server authorizes on top of `patch`.
fn creates_by_apply(
    st: &State,
    r: &Route,
    attrs: &Attributes,
    content_type: &str,
) -> Option<ResourceAttributes> {
    let (
        Route::Resource {
            res,
            ns,
            name: Some(name),
            sub: None,
            ..
        },
        Attributes::Resource(a),
    ) = (r, attrs)
    else {
        return None;
    };
    let apply = content_type
        .trim_start()
        .starts_with("application/apply-patch");
    if a.verb != Verb::Patch || !apply {
        return None;
    }
    let ns = if RESOURCES[*res].namespaced {
        ns.as_deref().unwrap_or_default()
    } else {
        ""
    };
    st.get_raw(*res, ns, name)
        .is_none()
        .then(|| a.with_verb(Verb::Create))
}

impl ApiError {
    fn new_too_large() -> Self {
        ApiError::bad_request("the request body is too large")
    }
}

struct Ctx<'a> {
    res: usize,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    params: &'a HashMap<String, String>,
    content_type: &'a str,
    user_agent: &'a str,
    /// The client, for admission policies.
    requester: Option<Requester>,
}

fn decode_body(body: &[u8], what: &str) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(format!(
            "{what}: the request body is empty"
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        let looks_yaml = !body.trim_ascii_start().starts_with(b"{") && !body.trim_ascii_start().starts_with(b"[");
        if looks_yaml {
            ApiError::bad_request(format!("{what}: error decoding YAML: only JSON bodies are understood by this server (yaml: {e})"))
        } else {
            ApiError::bad_request(format!("{what}: json parse error: {e}"))
        }
    })
}

fn list_body(res: usize, items: &[Bytes], rv: u64, cont: Option<&str>) -> Bytes {
    let rt = &RESOURCES[res];
    let mut md = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        md["continue"] = json!(c);
    }
    let head = format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
        rt.kind,
        rt.api_version(),
        md
    );
    let mut out =
        Vec::with_capacity(head.len() + items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    out.extend_from_slice(head.as_bytes());
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(it);
    }
    out.extend_from_slice(b"]}");
    Bytes::from(out)
}

fn with_warnings(mut resp: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let v = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(h) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::WARNING, h);
        }
    }
    resp
}

fn default_manager(ua: &str) -> String {
    let m = ua.split('/').next().unwrap_or_default();
    if m.is_empty() {
        "unknown".into()
    } else {
        m.to_string()
    }
}

/// A client write's options: `fieldManager` (else the user agent's first word), `dryRun`.
fn write_opts(ctx: &Ctx<'_>, subresource: Option<&str>) -> WriteOpts {
    WriteOpts {
        manager: ctx
            .params
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| default_manager(ctx.user_agent)),
        dry_run: ctx.params.get("dryRun").is_some_and(|d| d == "All"),
        subresource: subresource.map(String::from),
        requester: ctx.requester.clone(),
    }
}

/// A `PATCH`'s type from its `Content-Type`; an apply needs a `fieldManager`.
fn patch_type(ctx: &Ctx<'_>) -> ApiResult<PatchType> {
    let ct = ctx
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let ptype = match ct {
        "application/apply-patch+yaml"
        | "application/apply-patch+json"
        | "application/apply-patch+cbor" => PatchType::Apply,
        "application/merge-patch+json" => PatchType::Merge,
        "application/strategic-merge-patch+json" => PatchType::Strategic,
        "application/json-patch+json" => PatchType::Json,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if ptype == PatchType::Apply && !ctx.params.contains_key("fieldManager") {
        return Err(ApiError::unprocessable(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    Ok(ptype)
}

fn resource_verb(
    cluster: &Arc<Cluster>,
    verb: &str,
    ctx: &Ctx<'_>,
    body: &Bytes,
) -> ApiResult<Outcome> {
    let rt = &RESOURCES[ctx.res];
    let p = ctx.params;
    let ns = if rt.namespaced {
        ctx.ns.clone()
    } else {
        Some(String::new())
    };
    let sub = ctx.sub.as_deref();
    match sub {
        None => {}
        Some("status") if rt.status => {}
        Some("log") if ctx.res == resources::PODS && verb == "get" => {}
        Some("finalize") if ctx.res == resources::NAMESPACES => {}
        Some("token") if ctx.res == resources::SERVICEACCOUNTS && verb == "create" => {
            return token_request(cluster, ctx, body);
        }
        Some("scale") if matches!(ctx.res, resources::DEPLOYMENTS | resources::STATEFULSETS) => {
            return scale(cluster, verb, ctx, body);
        }
        Some(_) => return Err(ApiError::no_route()),
    }
    if matches!(verb, "get" | "update" | "patch" | "delete" | "create")
        && rt.namespaced
        && ctx.ns.is_none()
    {
        return Err(ApiError::no_route());
    }
    let ns_str = ns.unwrap_or_default();
    let name = ctx.name.clone().unwrap_or_default();
    let opts = write_opts(ctx, sub.filter(|s| *s == "status"));
    let labels = LabelSelector::parse(
        p.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    let fields = FieldSelector::parse(
        p.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )?;
    match verb {
        "get" if sub == Some("log") => {
            let st = lock(cluster);
            let pod = st
                .get(ctx.res, &ns_str, &name)
                .ok_or_else(|| ApiError::not_found(rt, &name))?;
            let container = p.get("container").cloned().unwrap_or_else(|| {
                pod.pointer("/spec/containers/0/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            });
            if pod.pointer("/status/phase").and_then(Value::as_str) == Some("Pending") {
                return Err(ApiError::bad_request(format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                )));
            }
            let mut log = st.logs.get(&(ns_str, name)).cloned().unwrap_or_default();
            if let Some(n) = p.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
                let lines: Vec<&str> = log.lines().collect();
                let keep = &lines[lines.len().saturating_sub(n)..];
                log = keep.iter().map(|l| format!("{l}\n")).collect();
            }
            let mut resp = Response::new(full(log));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(resp.into())
        }
        "get" => {
            let st = lock(cluster);
            let data = st
                .get_raw(ctx.res, &ns_str, &name)
                .ok_or_else(|| ApiError::not_found(rt, &name))?;
            Ok(json_response(200, data).into())
        }
        "list" => {
            let limit = p.get("limit").and_then(|l| l.parse::<usize>().ok());
            let st = lock(cluster);
            let scope = if rt.namespaced {
                ctx.ns.as_deref()
            } else {
                None
            };
            let (items, rv, cont) = st.list(
                ctx.res,
                scope,
                &labels,
                &fields,
                limit,
                p.get("continue").map(String::as_str),
            )?;
            drop(st);
            Ok(json_response(200, list_body(ctx.res, &items, rv, cont.as_deref())).into())
        }
        "watch" => watch(cluster, ctx, labels, fields),
        "create" => {
            if ctx.name.is_some() {
                return Err(ApiError::method_not_allowed("create", rt));
            }
            let obj = decode_body(body, "couldn't get version/kind")?;
            let w = lock(cluster).create(ctx.res, &ns_str, obj, &opts)?;
            Ok(Outcome {
                created: w.changed.then(|| name_of(&w.obj)).flatten(),
                resp: with_warnings(value_response(201, &w.obj), &w.warnings),
                changed: w.changed,
            })
        }
        "update" => {
            if ctx.name.is_none() {
                return Err(ApiError::method_not_allowed("update", rt));
            }
            let obj = decode_body(body, "couldn't get version/kind")?;
            let w = lock(cluster).update(ctx.res, &ns_str, &name, obj, &opts)?;
            let resp = with_warnings(value_response(200, &w.obj), &w.warnings);
            let ns_gone = ctx.res == resources::NAMESPACES
                && sub == Some("finalize")
                && w.obj.pointer("/metadata/deletionTimestamp").is_some()
                && w.obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
            if ns_gone {
                lock(cluster).finalize_namespace(&name);
            }
            Ok(Outcome {
                resp,
                changed: w.changed,
                created: None,
            })
        }
        "patch" => {
            if ctx.name.is_none() {
                return Err(ApiError::method_not_allowed("patch", rt));
            }
            let ptype = patch_type(ctx)?;
            let patch = decode_body(body, "error decoding patch")?;
            let force = p.get("force").is_some_and(|f| f == "true" || f == "1");
            if force && ptype != PatchType::Apply {
                return Err(ApiError::unprocessable(
                    "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                ));
            }
            let w = lock(cluster).patch(ctx.res, &ns_str, &name, ptype, patch, force, &opts)?;
            let code = if w.created { 201 } else { 200 };
            Ok(Outcome {
                created: (w.created && w.changed).then(|| name_of(&w.obj)).flatten(),
                resp: with_warnings(value_response(code, &w.obj), &w.warnings),
                changed: w.changed,
            })
        }
        "delete" => {
            let mut options = if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                decode_body(body, "couldn't decode DeleteOptions")?
            };
            if let Some(pp) = p.get("propagationPolicy") {
                options["propagationPolicy"] = json!(pp);
            }
            let dry = opts.dry_run
                || options
                    .get("dryRun")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|x| x == "All"));
            let mut st = lock(cluster);
            let before = st.rv;
            let delete_opts = WriteOpts {
                dry_run: dry,
                ..opts
            };
            let (obj, warnings) = st.delete_as(ctx.res, &ns_str, &name, &options, &delete_opts)?;
            let changed = st.rv != before;
            Ok(Outcome {
                resp: with_warnings(value_response(200, &obj), &warnings),
                changed,
                created: None,
            })
        }
        "deletecollection" => {
            if ctx.res == resources::NAMESPACES {
                return Err(ApiError::method_not_allowed("deletecollection", rt));
            }
            let mut st = lock(cluster);
            let before = st.rv;
            let scope = if rt.namespaced {
                ctx.ns.as_deref()
            } else {
                None
            };
            let (items, _, _) = st.list(ctx.res, scope, &labels, &fields, None, None)?;
            let mut gone = Vec::new();
            for it in items {
                let v: Value = serde_json::from_slice(&it).unwrap_or(Value::Null);
                let ons = v
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let oname = v
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Ok((d, _)) = st.delete_as(ctx.res, &ons, &oname, &json!({}), &opts) {
                    gone.push(Bytes::from(
                        serde_json::to_vec(&d).expect("JSON values serialize"),
                    ));
                }
            }
            let rv = st.rv;
            let changed = rv != before;
            Ok(Outcome {
                resp: json_response(200, list_body(ctx.res, &gone, rv, None)),
                changed,
                created: None,
            })
        }
        _ => Err(ApiError::method_not_allowed(verb, rt)),
    }
}

/// `POST …/serviceaccounts/{name}/token`: a TokenRequest answered with a fresh token.
fn token_request(cluster: &Arc<Cluster>, ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Outcome> {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        decode_body(body, "couldn't get version/kind")?
    };
    let answer = cluster.tokens.issue(
        &lock(cluster),
        ctx.ns.as_deref().unwrap_or_default(),
        ctx.name.as_deref().unwrap_or_default(),
        &request,
    )?;
    Ok(value_response(201, &answer).into())
}

/// `…/{deployments,statefulsets}/{name}/scale`: see [`crate::scale`].
fn scale(cluster: &Arc<Cluster>, verb: &str, ctx: &Ctx<'_>, body: &[u8]) -> ApiResult<Outcome> {
    let rt = &RESOURCES[ctx.res];
    let (Some(ns), Some(name)) = (ctx.ns.as_deref(), ctx.name.as_deref()) else {
        return Err(ApiError::no_route());
    };
    let change = match verb {
        "get" => {
            let s = crate::scale::get(&lock(cluster), ctx.res, ns, name)?;
            return Ok(value_response(200, &s).into());
        }
        "update" => Change::Replace(decode_body(body, "couldn't get version/kind")?),
        "patch" => Change::Patch(patch_type(ctx)?, decode_body(body, "error decoding patch")?),
        _ => return Err(ApiError::method_not_allowed(verb, rt)),
    };
    let opts = write_opts(ctx, None);
    let w = crate::scale::write(&mut lock(cluster), ctx.res, ns, name, &change, &opts)?;
    Ok(Outcome {
        resp: with_warnings(value_response(200, &w.obj), &w.warnings),
        changed: w.changed,
        created: None,
    })
}

fn event_line(kind: &str, obj: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(obj.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(obj);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

struct WatchFilter {
    res: usize,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    fn matches(&self, data: &[u8]) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return true;
        }
        let v: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
        self.labels.matches(&v) && self.fields.matches(&v)
    }

    /// The line to send for an event, if any (selector transitions become ADDED/DELETED).
    fn line(&self, e: &WatchEvent) -> Option<Bytes> {
        if e.res != self.res || self.ns.as_deref().is_some_and(|n| n != e.ns) {
            return None;
        }
        let now_in = self.matches(&e.data);
        let kind = match e.kind {
            EventType::Modified => {
                let was_in = e.prev.as_ref().map_or(now_in, |p| self.matches(p));
                match (was_in, now_in) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            k if now_in => k.as_str(),
            _ => return None,
        };
        Some(event_line(kind, &e.data))
    }
}

fn watch(
    cluster: &Arc<Cluster>,
    ctx: &Ctx<'_>,
    labels: LabelSelector,
    fields: FieldSelector,
) -> ApiResult<Outcome> {
    let rt = &RESOURCES[ctx.res];
    let p = ctx.params;
    let mut fields = fields;
    if let Some(name) = &ctx.name {
        let extra = FieldSelector::parse(&format!("metadata.name={name}"))?;
        fields = if fields.is_empty() {
            extra
        } else {
            FieldSelector::parse(&format!(
                "{},metadata.name={name}",
                p.get("fieldSelector").cloned().unwrap_or_default()
            ))?
        };
    }
    let since = match p.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let initial_events = p.get("sendInitialEvents").is_some_and(|v| v == "true");
    let allow_bookmarks = p
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    let since = if initial_events { None } else { since };
    let timeout = p
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let scope = if rt.namespaced { ctx.ns.clone() } else { None };
    let filter = WatchFilter {
        res: ctx.res,
        ns: scope.clone(),
        labels,
        fields,
    };
    let (backlog, rx, current_rv) = {
        let st = lock(cluster);
        let (b, rx) = st.watch(ctx.res, scope.as_deref(), since)?;
        (b, rx, st.rv)
    };
    let (tx, out_rx) = mpsc::channel::<Bytes>(256);
    let kind = rt.kind;
    let api_version = rt.api_version();
    let mut shutdown = cluster.shutdown.subscribe();
    cluster.watchers.fetch_add(1, Ordering::SeqCst);
    let c2 = cluster.clone();
    tokio::spawn(async move {
        let _guard = WatcherGuard(c2);
        let mut rx: broadcast::Receiver<Arc<WatchEvent>> = rx;
        let mut last = 0;
        for e in &backlog {
            last = last.max(e.rv);
            if let Some(line) = filter.line(e)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        if initial_events {
            let bm = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": current_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx
                .send(event_line("BOOKMARK", bm.to_string().as_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut bookmarks = tokio::time::interval(BOOKMARK_EVERY);
        bookmarks.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = bookmarks.tick(), if allow_bookmarks => {
                    // Every event up to `last` was seen, so resuming from here misses nothing.
                    let rv = last.max(current_rv);
                    let bm = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}});
                    if tx.send(event_line("BOOKMARK", bm.to_string().as_bytes())).await.is_err() {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
                r = rx.recv() => match r {
                    Ok(e) => {
                        if e.rv <= last { continue; }
                        last = e.rv;
                        if let Some(line) = filter.line(&e)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let st = ApiError::expired("too old resource version: the watch fell behind").to_status();
                        let _ = tx.send(event_line("ERROR", st.to_string().as_bytes())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let body = BodyExt::boxed_unsync(StreamBody::new(stream.boxed()));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp.into())
}

struct WatcherGuard(Arc<Cluster>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobScriptReq {
    namespace: Option<String>,
    name_prefix: String,
    #[serde(flatten)]
    script: JobScript,
}

async fn admin(
    cluster: &Arc<Cluster>,
    method: &Method,
    rest: &[String],
    params: &HashMap<String, String>,
    body: &[u8],
) -> Response<Body> {
    let parts: Vec<&str> = rest.iter().map(String::as_str).collect();
    let bad =
        |e: serde_json::Error| error_response(&ApiError::bad_request(format!("invalid body: {e}")));
    match (method, parts.as_slice()) {
        (&Method::GET, ["faults"]) => value_response(
            200,
            &serde_json::to_value(cluster.faults.config()).expect("config serializes"),
        ),
        (&Method::PUT, ["faults"]) => match serde_json::from_slice::<FaultConfig>(body) {
            Ok(cfg) => {
                cluster.faults.set(cfg);
                value_response(
                    200,
                    &serde_json::to_value(cluster.faults.config()).expect("config serializes"),
                )
            }
            Err(e) => bad(e),
        },
        (&Method::POST, ["faults"]) => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => {
                cluster.faults.add(rule);
                value_response(
                    200,
                    &serde_json::to_value(cluster.faults.config()).expect("config serializes"),
                )
            }
            Err(e) => bad(e),
        },
        (&Method::DELETE, ["faults"]) => {
            cluster.faults.clear();
            value_response(200, &json!({"rules": []}))
        }
        (&Method::GET, ["requests"]) => {
            let since = params
                .get("since")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            value_response(
                200,
                &serde_json::to_value(cluster.log.since(since)).expect("records serialize"),
            )
        }
        (&Method::DELETE, ["requests"]) => {
            cluster.log.clear();
            value_response(200, &json!({}))
        }
        (&Method::POST | &Method::PUT, ["jobs"]) => {
            match serde_json::from_slice::<JobScriptReq>(body) {
                Ok(r) => {
                    cluster.job_scripts.lock().expect("scripts lock").push((
                        r.namespace,
                        r.name_prefix,
                        r.script,
                    ));
                    value_response(200, &json!({}))
                }
                Err(e) => bad(e),
            }
        }
        (&Method::GET, ["stats"]) => {
            let st = lock(cluster);
            value_response(
                200,
                &json!({"objects": st.object_count(), "objectBytes": st.object_bytes(), "resourceVersion": st.rv.to_string(), "watchers": cluster.watchers.load(Ordering::SeqCst), "faultsInjected": cluster.faults.injected(), "requests": cluster.log.mark()}),
            )
        }
        (&Method::GET, ["idle"]) => {
            let ok = cluster.wait_idle(Duration::from_secs(10)).await;
            value_response(if ok { 200 } else { 503 }, &json!({"idle": ok}))
        }
        (&Method::POST, ["snapshot"]) => match cluster.save_snapshot() {
            Ok(Some(p)) => value_response(200, &json!({"path": p.display().to_string()})),
            Ok(None) => error_response(&ApiError::bad_request("no snapshot path configured")),
            Err(e) => error_response(&ApiError::internal(e.to_string())),
        },
        _ => error_response(&ApiError::no_route()),
    }
}
