//! Authentication: who a request is. No `Authorization` header (or the kubeconfig's own
//! admin token) is the cluster admin, as it always was; a bearer token minted by the
//! TokenRequest API (`POST …/serviceaccounts/{name}/token`) is its ServiceAccount until it
//! expires or the ServiceAccount is deleted; anything else is 401 Unauthorized.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::rbac::UserInfo;
use crate::resources::{self, RESOURCES};
use crate::store::State;

/// The token of the admin user in the simulator's kubeconfig.
pub const ADMIN_TOKEN: &str = "urumi-sim";

/// The user name recorded for the cluster admin.
pub const ADMIN_USER: &str = "system:admin";

/// `spec.expirationSeconds` when a TokenRequest does not set it (the real default).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// The shortest lifetime the real server accepts.
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The audience tokens are issued for when the request names none.
const DEFAULT_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The cluster admin (`system:masters`): never subject to RBAC.
    Admin,
    /// A user whose every request goes through the RBAC authorizer.
    User(UserInfo),
}

impl Identity {
    /// The user name (for the request log).
    pub fn name(&self) -> &str {
        match self {
            Self::Admin => ADMIN_USER,
            Self::User(u) => &u.name,
        }
    }

    /// The user as admission sees it: the admin is `system:admin` in `system:masters`.
    pub fn user_info(&self) -> UserInfo {
        match self {
            Self::Admin => UserInfo {
                name: ADMIN_USER.into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            },
            Self::User(u) => u.clone(),
        }
    }
}

/// A token the simulator issued: bound to one ServiceAccount object (by uid).
#[derive(Debug, Clone)]
struct Issued {
    namespace: String,
    name: String,
    uid: String,
    expires: DateTime<Utc>,
}

/// The tokens issued so far.
#[derive(Debug, Default)]
pub struct Tokens(Mutex<HashMap<String, Issued>>);

fn fresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn uid_of(sa: &Value) -> String {
    sa.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Tokens {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves a TokenRequest for ServiceAccount `namespace/name`: the answered TokenRequest
    /// carries `status.token` and `status.expirationTimestamp`.
    ///
    /// # Errors
    /// 404 when the ServiceAccount does not exist, 422 for a lifetime under ten minutes.
    pub fn issue(
        &self,
        st: &State,
        namespace: &str,
        name: &str,
        request: &Value,
    ) -> ApiResult<Value> {
        let sa = st
            .get(resources::SERVICEACCOUNTS, namespace, name)
            .ok_or_else(|| ApiError::not_found(&RESOURCES[resources::SERVICEACCOUNTS], name))?;
        let seconds = match request.pointer("/spec/expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => v.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "TokenRequest: spec.expirationSeconds: expected an integer, got {v}"
                ))
            })?,
        };
        if seconds < MIN_EXPIRATION_SECONDS {
            return Err(ApiError::unprocessable(format!(
                "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"
            )));
        }
        let audiences = request
            .pointer("/spec/audiences")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
            .cloned()
            .unwrap_or_else(|| json!([DEFAULT_AUDIENCE]));
        let now = Utc::now();
        let expires = now + chrono::Duration::seconds(seconds);
        let token = fresh_token();
        let mut tokens = self.lock();
        tokens.retain(|_, t| t.expires > now);
        tokens.insert(
            token.clone(),
            Issued {
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid: uid_of(&sa),
                expires,
            },
        );
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": ts(now)},
            "spec": {
                "audiences": audiences,
                "expirationSeconds": seconds,
                "boundObjectRef": request.pointer("/spec/boundObjectRef").cloned().unwrap_or(Value::Null),
            },
            "status": {"token": token, "expirationTimestamp": ts(expires)},
        }))
    }

    /// Who sent a request with this `Authorization` header value (`None`: no header).
    ///
    /// # Errors
    /// 401 for anything but no header, the admin token or a live ServiceAccount token.
    pub fn authenticate(&self, st: &State, authorization: Option<&str>) -> ApiResult<Identity> {
        let Some(header) = authorization else {
            return Ok(Identity::Admin);
        };
        let token = match header.trim().split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::unauthorized()),
        };
        if token == ADMIN_TOKEN {
            return Ok(Identity::Admin);
        }
        let issued = self
            .lock()
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        let live = issued.expires > Utc::now()
            && st
                .get(resources::SERVICEACCOUNTS, &issued.namespace, &issued.name)
                .is_some_and(|sa| uid_of(&sa) == issued.uid);
        if !live {
            return Err(ApiError::unauthorized());
        }
        Ok(Identity::User(UserInfo::service_account(
            &issued.namespace,
            &issued.name,
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::broadcast;

    use super::*;
    use crate::store::WriteOpts;

    fn with_sa() -> State {
        let (tx, _) = broadcast::channel::<Arc<crate::store::WatchEvent>>(16);
        let mut st = State::new(tx);
        st.create(
            resources::SERVICEACCOUNTS,
            "default",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot"}}),
            &WriteOpts::default(),
        )
        .expect("serviceaccount created");
        st
    }

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn no_header_and_the_admin_token_are_the_admin() {
        let st = with_sa();
        let t = Tokens::default();
        assert_eq!(t.authenticate(&st, None).expect("admin"), Identity::Admin);
        assert_eq!(
            t.authenticate(&st, Some(&bearer(ADMIN_TOKEN)))
                .expect("admin"),
            Identity::Admin
        );
    }

    #[test]
    fn an_issued_token_is_its_service_account_until_the_account_is_deleted() {
        let mut st = with_sa();
        let t = Tokens::default();
        let tr = t
            .issue(&st, "default", "bot", &json!({}))
            .expect("token issued");
        let token = tr["status"]["token"].as_str().expect("a token").to_string();
        assert!(tr["status"]["expirationTimestamp"].is_string());
        assert_eq!(tr["spec"]["expirationSeconds"], 3600);
        let who = t
            .authenticate(&st, Some(&bearer(&token)))
            .expect("authenticated");
        assert_eq!(
            who,
            Identity::User(UserInfo {
                name: "system:serviceaccount:default:bot".into(),
                groups: vec![
                    "system:serviceaccounts".into(),
                    "system:serviceaccounts:default".into(),
                    "system:authenticated".into(),
                ],
            })
        );
        st.delete(
            resources::SERVICEACCOUNTS,
            "default",
            "bot",
            &json!({}),
            false,
        )
        .expect("deleted");
        assert_eq!(
            t.authenticate(&st, Some(&bearer(&token)))
                .expect_err("revoked")
                .code,
            401
        );
    }

    #[test]
    fn unknown_tokens_and_other_schemes_are_unauthorized() {
        let st = with_sa();
        let t = Tokens::default();
        for header in ["Bearer nope", "Basic dXNlcjpwdw==", "Bearer"] {
            let e = t.authenticate(&st, Some(header)).expect_err("refused");
            assert_eq!(
                (e.code, e.reason, e.message.as_str()),
                (401, "Unauthorized", "Unauthorized")
            );
        }
    }

    #[test]
    fn a_token_for_a_missing_account_or_too_short_a_life_is_refused() {
        let st = with_sa();
        let t = Tokens::default();
        let e = t
            .issue(&st, "default", "ghost", &json!({}))
            .expect_err("no such account");
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, "serviceaccounts \"ghost\" not found")
        );
        let e = t
            .issue(
                &st,
                "default",
                "bot",
                &json!({"spec": {"expirationSeconds": 60}}),
            )
            .expect_err("too short");
        assert_eq!(e.code, 422);
    }
}
