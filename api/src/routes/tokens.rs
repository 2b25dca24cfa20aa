//! `/api/v1/tokens`: mint, list and revoke API tokens (needs `admin`), and the caller's own
//! token (any role: how a dashboard learns what to offer). A token's secret is answered
//! once, at minting; lists never show secrets or hashes.

use std::sync::Arc;

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::{self, Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::text::{ExpiryHours, Text};
use crate::views::{MintedToken, Token, TokenList};

/// Tokens.
#[derive(Debug)]
pub struct TokensApi(pub Arc<AppState>);

/// A token to mint.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateToken {
    /// Unique among live tokens; recorded as the actor of everything done with it.
    #[oai(validator(
        min_length = 1,
        max_length = 100,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]*$"
    ))]
    pub name: Text,
    pub role: Role,
    /// The token stops working this many hours after minting (1 to 87,600); without it, it
    /// works until revoked.
    pub expires_in_hours: ExpiryHours,
}

#[derive(Debug, ApiResponse)]
enum Minted {
    /// Minted; `token` is shown this once.
    #[oai(status = 201)]
    Created(JsonBody<MintedToken>),
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Mint a token. Needs `admin`.
    #[oai(path = "/tokens", method = "post", operation_id = "create_token")]
    async fn create_token(&self, auth: Auth, body: Json<CreateToken>) -> Result<Minted, ApiError> {
        auth.0.require(Role::Admin)?;
        if auth::is_reserved_name(&body.name) {
            return Err(ApiError::unprocessable(
                Some("name"),
                format!(
                    "{:?} is a name of the platform's own actors (system, cli, worker…, urumi…); choose another",
                    &*body.name
                ),
            ));
        }
        let expires_at = body
            .expires_in_hours
            .0
            .map(|h| chrono::Utc::now() + chrono::Duration::hours(i64::from(h)));
        let m = auth::mint_expiring(
            &self.0.pool,
            &body.name,
            body.role,
            auth.0.actor(),
            expires_at,
        )
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                ApiError::conflict(format!("a live token is already named {:?}", body.name))
            }
            _ => e.into(),
        })?;
        Ok(Minted::Created(JsonBody(MintedToken {
            info: Token::from(&m.row),
            token: m.token,
        })))
    }

    /// Every token, newest first (never their secrets). Needs `admin`.
    #[oai(path = "/tokens", method = "get", operation_id = "list_tokens")]
    async fn list_tokens(&self, auth: Auth) -> Result<JsonBody<TokenList>, ApiError> {
        auth.0.require(Role::Admin)?;
        let rows = auth::list(&self.0.pool).await?;
        Ok(JsonBody(TokenList {
            items: rows.iter().map(Token::from).collect(),
        }))
    }

    /// The token this request is authenticated with: its name (the actor recorded for its
    /// actions) and role. Any role.
    #[oai(
        path = "/tokens/current",
        method = "get",
        operation_id = "current_token"
    )]
    async fn current_token(&self, auth: Auth) -> Result<JsonBody<Token>, ApiError> {
        let row = auth::live_by_name(&self.0.pool, auth.0.actor())
            .await?
            // Revoked through another API process since this one cached the verification.
            .ok_or_else(|| ApiError::unauthorized("the token was revoked"))?;
        Ok(JsonBody(Token::from(&row)))
    }

    /// Revoke a token. Other API processes stop accepting it within `api.token_cache_ms`.
    /// Needs `admin`.
    #[oai(path = "/tokens/:id", method = "delete", operation_id = "revoke_token")]
    async fn revoke_token(&self, auth: Auth, id: Path<Uuid>) -> Result<JsonBody<Token>, ApiError> {
        auth.0.require(Role::Admin)?;
        let row = auth::revoke(&self.0.pool, id.0, auth.0.actor())
            .await?
            .ok_or_else(|| ApiError::not_found(format!("token {} not found", id.0)))?;
        self.0.tokens.clear();
        Ok(JsonBody(Token::from(&row)))
    }
}
