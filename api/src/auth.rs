//! Bearer tokens and roles.
//!
//! A token reads `urumi_<id>_<secret>`: `<id>` (32 hex digits) names the `urumi.api_tokens`
//! row, `<secret>` (43 random base62 characters) is checked against the row's SHA-256 in
//! constant time. Only the hash is stored; the whole token is shown once, when minted.
//! Verified tokens are cached for `api.token_cache_ms`, so a revocation takes effect within
//! that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use poem_openapi::auth::Bearer;
use poem_openapi::{Enum, SecurityScheme};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::problem::ApiError;
use crate::state::AppState;

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Plus retry and cancel runs.
    Operator,
    /// Plus create and delete stores, mint and revoke tokens.
    Admin,
}

impl Role {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or typed name.
    ///
    /// # Errors
    /// The unknown name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}; roles are viewer, operator, admin"
            )),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's id.
    pub token_id: Uuid,
    /// The token's name: the actor recorded in the audit log.
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// The actor string recorded for this caller's actions.
    #[must_use]
    pub fn actor(&self) -> &str {
        &self.name
    }

    /// Refuses with 403 unless the caller's role is at least `role`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`].
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {} role; token {:?} has {}",
                role.as_str(),
                self.name,
                self.role.as_str()
            )))
        }
    }
}

/// `Authorization: Bearer urumi_<id>_<secret>`.
#[derive(SecurityScheme)]
#[oai(
    ty = "bearer",
    bearer_format = "urumi_<id>_<secret>",
    checker = "check"
)]
pub struct Auth(pub Principal);

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Auth").field(&self.0.name).finish()
    }
}

async fn check(req: &poem::Request, bearer: Bearer) -> poem::Result<Principal> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| poem::Error::from_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR))?;
    match state.tokens.verify(&state.pool, &bearer.token).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(poem::Error::from_status(
            poem::http::StatusCode::UNAUTHORIZED,
        )),
        Err(e) => {
            tracing::warn!(error = %e, "token check: database unavailable");
            Err(poem::Error::from_string(
                "the database is unavailable; retry later",
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
            ))
        }
    }
}

/// A freshly minted token: the only time its secret exists outside the caller.
#[derive(Debug)]
pub struct Minted {
    pub id: Uuid,
    pub token: String,
    /// The stored row, as `list` shows it.
    pub row: TokenRow,
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn split(token: &str) -> Option<(Uuid, &str)> {
    let rest = token.strip_prefix("urumi_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 32 || secret.len() != 43 {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// Names of the platform's own actors (`system`, the CLI's `cli`, workers' `worker-…` ids
/// and anything `urumi…`): a token named so would make the audit log lie about who acted.
#[must_use]
pub fn is_reserved_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "system" || n == "cli" || n.starts_with("worker") || n.starts_with("urumi")
}

/// Mints a token with `role`; returns it once.
///
/// # Errors
/// The database error (a live token with the same name is a unique violation).
pub async fn mint(pool: &PgPool, name: &str, role: Role, by: &str) -> sqlx::Result<Minted> {
    mint_expiring(pool, name, role, by, None).await
}

/// [`mint`], with the moment the token stops working (`None`: never).
///
/// # Errors
/// The database error (a live token with the same name is a unique violation).
pub async fn mint_expiring(
    pool: &PgPool,
    name: &str,
    role: Role,
    by: &str,
    expires_at: Option<DateTime<Utc>>,
) -> sqlx::Result<Minted> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let secret: String = {
        let mut rng = rand::rng();
        (0..43)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let id = Uuid::now_v7();
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as!(
        TokenRow,
        "INSERT INTO urumi.api_tokens (id, name, role, secret_hash, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, name, role, created_by, created_at, revoked_at, revoked_by, expires_at",
        id,
        name,
        role.as_str(),
        &hash(&secret)[..],
        by,
        expires_at,
    )
    .fetch_one(&mut *tx)
    .await?;
    audit_token(&mut tx, id, "token.created", by, name, role).await?;
    tx.commit().await?;
    Ok(Minted {
        id,
        token: format!("urumi_{}_{secret}", id.simple()),
        row,
    })
}

async fn audit_token(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    kind: &str,
    by: &str,
    name: &str,
    role: Role,
) -> sqlx::Result<()> {
    let entry = urumi_engine::AuditEntry {
        kind,
        actor: by,
        subject: Some(format!("token:{id}")),
        run_id: None,
        detail: serde_json::json!({ "name": name, "role": role.as_str() }),
    };
    urumi_engine::audit_in(tx, entry).await
}

/// A token as listed (never its secret or hash).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Every token, newest first.
///
/// # Errors
/// The database error.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, name, role, created_by, created_at, revoked_at, revoked_by, expires_at
         FROM urumi.api_tokens ORDER BY id DESC",
    )
    .fetch_all(pool)
    .await
}

/// The live token named `name`, if any (names are unique among live tokens).
///
/// # Errors
/// The database error.
pub async fn live_by_name(pool: &PgPool, name: &str) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, name, role, created_by, created_at, revoked_at, revoked_by, expires_at
         FROM urumi.api_tokens WHERE name = $1 AND revoked_at IS NULL",
        name,
    )
    .fetch_optional(pool)
    .await
}

/// Revokes a token; `None` if there is no such token. Revoking twice keeps the first time.
///
/// # Errors
/// The database error.
pub async fn revoke(pool: &PgPool, id: Uuid, by: &str) -> sqlx::Result<Option<TokenRow>> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as!(
        TokenRow,
        "UPDATE urumi.api_tokens SET revoked_at = coalesce(revoked_at, now()), revoked_by = coalesce(revoked_by, $2)
         WHERE id = $1 RETURNING id, name, role, created_by, created_at, revoked_at, revoked_by, expires_at",
        id,
        by,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(r) = &row {
        let role = Role::parse(&r.role).unwrap_or(Role::Viewer);
        audit_token(&mut tx, id, "token.revoked", by, &r.name, role).await?;
    }
    tx.commit().await?;
    Ok(row)
}

/// Verified tokens, by the hash of the whole token, with when they were verified.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl TokenCache {
    /// A cache trusting a verification for `ttl`.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The caller behind `token`, or `None` if it is malformed, unknown, revoked or wrong.
    ///
    /// # Errors
    /// The database error.
    pub async fn verify(&self, pool: &PgPool, token: &str) -> sqlx::Result<Option<Principal>> {
        let key = hash(token);
        if let Some((p, at)) = self.entries.lock().expect("cache lock").get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(p.clone()));
        }
        let Some((id, secret)) = split(token) else {
            return Ok(None);
        };
        let row = sqlx::query!(
            "SELECT name, role, secret_hash FROM urumi.api_tokens
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            id,
        )
        .fetch_optional(pool)
        .await?;
        let Some((name, role, stored)) = row.map(|r| (r.name, r.role, r.secret_hash)) else {
            return Ok(None);
        };
        if !bool::from(hash(secret)[..].ct_eq(&stored[..])) {
            return Ok(None);
        }
        let Ok(role) = Role::parse(&role) else {
            return Ok(None);
        };
        let p = Principal {
            token_id: id,
            name,
            role,
        };
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.len() > 10_000 {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        entries.insert(key, (p.clone(), Instant::now()));
        Ok(Some(p))
    }

    /// Whether token `id` is still valid (not revoked), asked of the database, never the
    /// cache: long-lived streams re-check with it.
    ///
    /// # Errors
    /// The database error.
    pub async fn still_valid(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
        sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM urumi.api_tokens
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS "valid!""#,
            id,
        )
        .fetch_one(pool)
        .await
    }

    /// Forgets every cached verification (after a revocation in this process).
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_only_in_their_exact_shape() {
        let id = Uuid::now_v7();
        let secret = "a".repeat(43);
        let t = format!("urumi_{}_{secret}", id.simple());
        assert_eq!(split(&t), Some((id, secret.as_str())));
        assert_eq!(
            split(&format!("urumi_{}_{}", id.simple(), "a".repeat(42))),
            None
        );
        assert_eq!(split(&format!("urumi-{}_{secret}", id.simple())), None);
        assert_eq!(split("urumi_nothex_secret"), None);
        assert_eq!(split(""), None);
    }

    #[test]
    fn roles_are_ordered_viewer_operator_admin() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
        }
        assert!(Role::parse("root").is_err());
    }
}
