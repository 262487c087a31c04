//! Authentication: the OAuth2 password flow at `POST /api/v1/auth/token`,
//! the [`CurrentUser`] dependency every protected route takes, and the
//! administrator bootstrap.
//!
//! Tokens are HS256 JWTs (`JWT_SECRET`) with `sub` = the user id. Every
//! protected request verifies the token (signature, `exp`; `alg: none` and
//! other algorithms are refused) and loads the user, so a deleted user's
//! token stops working at once and an admin flag change takes effect on the
//! next request. Failures answer 401 with `WWW-Authenticate: Bearer`.
//!
//! The token is verified once per request, by the stack's lenient
//! [`JwtLayer`] (see [`Auth::layer`]):
//! the rate limiter's key and [`CurrentUser`] read the verified subject
//! from the request. A refused token passes the layer without claims, so
//! public routes (login, health, docs) serve it as FastAPI does, and
//! [`CurrentUser`] refuses it.

use ferrapi::extract::{Dependency, FromRequestParts, Rejection, RequestContext};
use ferrapi::http::request::Parts;
use ferrapi::middleware::jwt::{
    IssuedToken, JwtIssuer, JwtLayer, JwtVerifier, VerifiedClaims, VerifyingKey,
};
use ferrapi::middleware::password::PasswordHasher;
use ferrapi::openapi::OperationBuilder;
use ferrapi::prelude::*;
use ferrapi::security::{OAuth2PasswordFlow, OAuth2Token};
use ferrapi_storage::cache::Cache;
use ferrapi_storage::db::DbPool;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// The service's OAuth2 password flow (documented with its token URL, so
/// that Swagger UI's "Authorize" button logs in).
pub struct Login;

impl OAuth2PasswordFlow for Login {
    const TOKEN_URL: &'static str = "/api/v1/auth/token";
}

// The service's own copy of `ferrapi::security::OAuth2PasswordRequestForm`:
// the same fields, with `username` documented as what this service takes
// (the e-mail address), which the framework's type cannot say. Its doc
// comment is the schema's description in the golden `service/openapi.json`.
/// The form of an OAuth2 password-flow token request (FastAPI's
/// `OAuth2PasswordRequestForm`), read with `Form<OAuth2PasswordRequestForm>`.
#[derive(Debug, Clone, Deserialize, JsonSchema, Validate)]
pub struct OAuth2PasswordRequestForm {
    /// `password` when given.
    #[serde(default)]
    pub grant_type: Option<String>,
    /// The user's name (for the reference service: the e-mail address).
    pub username: String,
    /// The password.
    pub password: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Client id, if the client sends one.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client secret, if the client sends one.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// Signing, verifying and hashing, shared by every request (application
/// state).
#[derive(Clone)]
pub struct Auth {
    issuer: JwtIssuer,
    verifier: JwtVerifier,
    hasher: PasswordHasher,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(..)")
    }
}

impl Auth {
    /// HS256 with `secret`; tokens live `ttl`.
    pub fn new(secret: &[u8], ttl: Duration, hasher: PasswordHasher) -> Self {
        Self {
            issuer: JwtIssuer::hs256(secret).ttl(ttl),
            verifier: JwtVerifier::new(VerifyingKey::hs256(secret)).leeway(Duration::ZERO),
            hasher,
        }
    }

    /// The password hasher (Argon2id).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// A token for user `id`.
    pub fn issue(&self, id: i64) -> Result<IssuedToken, AuthError> {
        self.issuer
            .issue(&TokenClaims {
                sub: id.to_string(),
            })
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    /// The user id a valid token names, if it is valid.
    pub fn user_id(&self, token: &str) -> Option<i64> {
        let claims: TokenClaims = self.verifier.verify(token).ok()?;
        claims.sub.parse().ok()
    }

    /// The layer that verifies each request's bearer token once, for the
    /// rate limiter and [`CurrentUser`]; a refused token passes it
    /// without claims.
    pub fn layer(&self) -> JwtLayer {
        JwtLayer::new(self.verifier.clone()).reject_invalid(false)
    }
}

/// The user id of the token [`Auth::layer`] verified for this request.
pub fn verified_user_id(extensions: &ferrapi::http::Extensions) -> Option<i64> {
    let VerifiedClaims(claims) = extensions.get::<VerifiedClaims>()?;
    claims.get("sub")?.as_str()?.parse().ok()
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenClaims {
    sub: String,
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Signing failed.
    #[error("cannot issue a token: {0}")]
    Internal(String),
}

/// Log in (OAuth2 password flow): form fields `username` (the e-mail
/// address) and `password`. Answers the bearer token; 401 for an unknown
/// user, a wrong password, or a user created without a password.
#[post("/auth/token", tags = ["auth"], responses(401 = "Incorrect username or password"))]
pub async fn login(
    State(auth): State<Arc<Auth>>,
    State(pool): State<DbPool>,
    Form(form): Form<OAuth2PasswordRequestForm>,
) -> Result<Json<IssuedToken>, HttpError> {
    let row = pool
        .fetch_optional(
            pool.query("SELECT id, password_hash FROM users WHERE lower(email) = lower(?)")
                .bind(form.username.clone()),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "login query failed");
            HttpError::new(
                ferrapi::http::StatusCode::SERVICE_UNAVAILABLE,
                "Database unavailable",
            )
        })?;
    let found = row.and_then(|r| {
        let id: i64 = r.try_get("id").ok()?;
        let hash: Option<String> = r.try_get("password_hash").ok()?;
        Some((id, hash?))
    });
    let hasher = auth.hasher().clone();
    let password = form.password;
    let verified = match found {
        Some((id, hash)) => hasher
            .verify_blocking(password, hash)
            .await
            .ok()
            .filter(|ok| *ok)
            .map(|_| id),
        None => {
            // Same work as a real check, so timing does not tell which
            // e-mail addresses exist.
            let _ = hasher.verify_dummy_blocking(password).await;
            None
        }
    };
    let Some(id) = verified else {
        return Err(unauthorized("Incorrect username or password"));
    };
    auth.issue(id).map(Json).map_err(|e| {
        tracing::error!(error = %e, "cannot issue a token");
        HttpError::internal()
    })
}

fn unauthorized(detail: &str) -> HttpError {
    HttpError::unauthorized(detail.to_owned()).with_header("www-authenticate", "Bearer")
}

/// The authenticated caller, loaded from the database by the token's `sub`.
#[derive(Debug, Clone, Serialize)]
pub struct CurrentUser {
    /// User id.
    pub id: i64,
    /// Whether the user is an administrator.
    pub is_admin: bool,
}

impl Dependency for CurrentUser {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let token = OAuth2Token::<Login>::from_request_parts(parts, cx).await?;
        let Some(auth) = cx.state::<Arc<Auth>>() else {
            return Err(HttpError::internal().into());
        };
        let invalid = || -> Rejection {
            HttpError::unauthorized("Could not validate credentials")
                .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
                .into()
        };
        // Verified by the layer; else (no layer, or a refused token)
        // verified here.
        let id = verified_user_id(&parts.extensions)
            .or_else(|| auth.user_id(token.token()))
            .ok_or_else(invalid)?;
        let Some(cache) = cx.state::<Cache>() else {
            return Err(HttpError::internal().into());
        };
        let Some(pool) = cx.state::<DbPool>() else {
            return Err(HttpError::internal().into());
        };
        // From the cache (no query) when it is there; a deleted user's
        // entry is dropped with the user. Otherwise loaded with the pool,
        // outside the request's transaction: that transaction then begins
        // with the handler's first statement. On SQLite a deferred
        // transaction that read first and writes next cannot wait for the
        // write lock (SQLITE_BUSY at once when another connection committed
        // in between), so reading the principal in it made concurrent
        // writers fail.
        let loaded = cache
            .get_or_compute(&principal_key(id), || async {
                let row = pool
                    .fetch_optional(
                        pool.query("SELECT is_admin FROM users WHERE id = ?")
                            .bind(id),
                    )
                    .await?;
                Ok::<_, ferrapi_storage::db::DbError>(row.map(|row| Principal {
                    is_admin: row.try_get::<i64, _>("is_admin").unwrap_or(0) != 0,
                }))
            })
            .await;
        match loaded {
            Ok(Some(p)) => Ok(CurrentUser {
                id,
                is_admin: p.is_admin,
            }),
            Ok(None) => Err(invalid()),
            Err(e) => {
                tracing::error!(error = %e, "loading the current user failed");
                Err(HttpError::new(
                    ferrapi::http::StatusCode::SERVICE_UNAVAILABLE,
                    "Database unavailable",
                )
                .into())
            }
        }
    }

    fn describe(op: &mut OperationBuilder<'_>) {
        <OAuth2Token<Login> as ferrapi::openapi::DescribeInput>::describe(op);
        op.error_response(ferrapi::http::StatusCode::UNAUTHORIZED, "Not authenticated");
    }
}

/// What a token's user may do, cached under [`principal_key`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Principal {
    is_admin: bool,
}

/// The cache key of a user's principal.
pub fn principal_key(id: i64) -> String {
    format!("principal:{id}")
}

/// An administrator (403 for anyone else).
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

impl Dependency for Admin {
    async fn resolve(parts: &mut Parts, cx: &RequestContext) -> Result<Self, Rejection> {
        let Depends(user) = Depends::<CurrentUser>::from_request_parts(parts, cx).await?;
        if user.is_admin {
            Ok(Admin(user))
        } else {
            Err(HttpError::forbidden("Admin privileges required").into())
        }
    }

    fn describe(op: &mut OperationBuilder<'_>) {
        CurrentUser::describe(op);
        op.error_response(
            ferrapi::http::StatusCode::FORBIDDEN,
            "Not enough privileges",
        );
    }
}

/// Creates the bootstrap administrator if no user has its e-mail address.
pub async fn bootstrap_admin(
    pool: &DbPool,
    email: &str,
    password: &str,
    hasher: &PasswordHasher,
) -> anyhow::Result<bool> {
    let exists = pool
        .fetch_optional(
            pool.query("SELECT id FROM users WHERE lower(email) = lower(?)")
                .bind(email.to_owned()),
        )
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    let hash = hasher.hash_blocking(password.to_owned()).await?;
    let result = pool
        .execute(
            pool.query(
                "INSERT INTO users (name, email, age, password_hash, is_admin, created_at) \
                 VALUES (?, ?, ?, ?, 1, ?)",
            )
            .bind("Administrator")
            .bind(email.to_owned())
            .bind(18_i64)
            .bind(hash)
            .bind(crate::model::Timestamp::now().to_rfc3339()),
        )
        .await;
    match result {
        Ok(_) => Ok(true),
        // Another instance created it at the same moment.
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The auth router (`/api/v1/auth/token`).
pub fn router() -> Router {
    Router::new().prefix("/api/v1").route(login)
}
