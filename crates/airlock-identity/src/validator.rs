//! [`TokenValidator`], the extension point, and [`JwtValidator`], the Entra ID
//! implementation.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_core::{BoxFuture, HttpClient, Principal};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::claims::map_claims;
use crate::header::{algorithm_name, read_header};
use crate::jwks::{KeySource, KeyStore};
use crate::token_cache::TokenCache;
use crate::{AuthError, BuildError, ClaimMapping, GroupResolver, IdentityMetrics};

/// Turns a bearer token into a verified [`Principal`]. Implement it to plug
/// another identity system into [`IdentityLayer`](crate::IdentityLayer).
pub trait TokenValidator: Send + Sync + 'static {
    /// Verifies `token` and says who it belongs to.
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, AuthError>>;

    /// The principal of `token` when it is known without waiting (e.g. a
    /// token verified before and still valid, in a cache); `None` means
    /// "ask [`validate`](Self::validate)", which must then give the same
    /// answer. The identity layer admits such a request at once, without
    /// setting up a wait (default: `None`, always ask).
    fn known(&self, token: &str) -> Option<Principal> {
        let _ = token;
        None
    }

    /// The audience clients should request a token for, named in the "no
    /// token" answer.
    fn audience(&self) -> Option<&str> {
        None
    }

    /// The longest token accepted, in bytes (default 16 KiB). The identity
    /// layer refuses a longer `Authorization` value before asking.
    fn max_token_bytes(&self) -> usize {
        DEFAULT_MAX_TOKEN_BYTES
    }
}

/// The longest token accepted by default: 16 KiB (Entra tokens are 1-3 KiB).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The Entra ID issuers, `{tenant}` standing for each allowed tenant.
pub const ENTRA_ISSUERS: [&str; 2] = [
    "https://sts.windows.net/{tenant}/",
    "https://login.microsoftonline.com/{tenant}/v2.0",
];

/// How long a principal whose groups came from a [`GroupResolver`] is reused
/// before the resolver is asked again (it may cache too).
const RESOLVED_GROUPS_REUSE: Duration = Duration::from_secs(300);

/// Validates Entra ID (and other OIDC) access tokens against the issuer's
/// published keys; see [`JwtValidator::builder`].
///
/// Cheap to clone. Signing keys are refreshed in the background while any
/// clone is alive.
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

struct Inner {
    keys: KeyStore,
    /// One `Validation` per accepted algorithm, in the same order.
    validations: Vec<(Algorithm, Validation)>,
    algorithms: Vec<Algorithm>,
    audiences: Vec<String>,
    issuers: HashSet<String>,
    tenants: HashSet<String>,
    leeway: Duration,
    max_token_bytes: usize,
    cache: TokenCache,
    groups: Option<Arc<dyn GroupResolver>>,
    metrics: Arc<IdentityMetrics>,
    mapping: Option<ClaimMapping>,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("audiences", &self.inner.audiences)
            .field("tenants", &self.inner.tenants)
            .field("algorithms", &self.inner.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtValidator {
    /// Starts a validator configuration.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use airlock_identity::{JwtValidator, KeySource};
    ///
    /// # async fn run(client: Arc<dyn airlock_core::HttpClient>) -> Result<(), airlock_identity::BuildError> {
    /// let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    /// let validator = JwtValidator::builder()
    ///     .tenant(tenant)
    ///     .audience("api://airlock")
    ///     .keys(KeySource::Discovery(format!("https://login.microsoftonline.com/{tenant}/v2.0")))
    ///     .http_client(client)
    ///     .build()
    ///     .await?;
    /// # let _ = validator; Ok(()) }
    /// ```
    pub fn builder() -> JwtValidatorBuilder {
        JwtValidatorBuilder::default()
    }

    /// The issuers whose tokens it accepts (`iss`, exactly).
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.inner.issuers.iter().map(String::as_str)
    }

    /// Refetches the signing keys now; the last good set stays on failure.
    ///
    /// # Errors
    ///
    /// When the identity provider cannot be reached or answers badly.
    pub async fn refresh_keys(&self) -> Result<(), BuildError> {
        let url = self.inner.keys.source_url();
        self.inner
            .keys
            .refresh()
            .await
            .map_err(|reason| BuildError::Keys { url, reason })
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let inner = &*self.inner;
        if let Some(principal) = self.known(token) {
            return Ok(principal);
        }
        let now = SystemTime::now();
        if token.len() > inner.max_token_bytes {
            return Err(AuthError::TooLarge {
                limit: inner.max_token_bytes,
            });
        }
        let header = read_header(token, &inner.algorithms)?;
        let key = match inner.keys.get(&header.kid) {
            Some(key) => key,
            None => inner
                .keys
                .refetch_for(&header.kid)
                .await
                .ok_or(AuthError::UnknownKey)?,
        };
        if !key.verifies(header.alg) {
            return Err(AuthError::KeyMismatch);
        }
        let Some((_, validation)) = inner.validations.iter().find(|(alg, _)| *alg == header.alg)
        else {
            return Err(AuthError::KeyMismatch);
        };
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|e| self.jwt_error(e.kind()))?
            .claims;
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let leeway = inner.leeway.as_secs_f64();
        if claims
            .get("iat")
            .and_then(Value::as_f64)
            .is_some_and(|iat| iat > now_secs + leeway)
        {
            return Err(AuthError::NotYetValid);
        }
        // The signature holds, so the claims can be trusted for a precise
        // reason: the tenant first ("tenant X is not allowed" says more than
        // "unknown issuer" when both are wrong), then the issuer.
        if !inner.tenants.is_empty() {
            let tenant = claims
                .get("tid")
                .and_then(Value::as_str)
                .ok_or(AuthError::MissingClaim("tid"))?;
            if !inner.tenants.contains(&tenant.to_ascii_lowercase()) {
                return Err(AuthError::TenantNotAllowed {
                    tenant: tenant.to_owned(),
                });
            }
        }
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(AuthError::MissingClaim("iss"))?;
        if !inner.issuers.contains(issuer) {
            return Err(AuthError::UnknownIssuer);
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_f64)
            .ok_or(AuthError::MissingClaim("exp"))?;
        // An `exp` beyond what a `SystemTime` holds (`u64::MAX`, `1e19`) is
        // not a panic: such a token is verified but not cached.
        let mut valid_until = Duration::try_from_secs_f64((exp + leeway).max(0.0))
            .ok()
            .and_then(|lifetime| UNIX_EPOCH.checked_add(lifetime))
            .unwrap_or(now);
        let mapped = match &inner.mapping {
            Some(mapping) => mapping.map(claims)?,
            None => map_claims(claims)?,
        };
        let principal = if mapped.overage {
            let Some(resolver) = &inner.groups else {
                return Err(AuthError::GroupsUnresolved {
                    reason: "the token has too many groups to carry them (group overage) and no group resolver is configured, so Airlock cannot tell which groups this principal is in; configure [identity.groups] resolver = \"graph\"".into(),
                    principal: Box::new(mapped.build()),
                });
            };
            let groups = match resolver
                .member_groups(&mapped.tenant_id, &mapped.object_id)
                .await
            {
                Ok(groups) => groups,
                Err(e) => {
                    return Err(AuthError::GroupsUnresolved {
                        reason: format!(
                            "the token's groups (group overage) could not be resolved: {e}"
                        ),
                        principal: Box::new(mapped.build()),
                    });
                }
            };
            valid_until = valid_until.min(now + RESOLVED_GROUPS_REUSE);
            mapped.builder.groups(groups).build()
        } else {
            mapped.build()
        };
        inner
            .cache
            .insert(token, principal.clone(), valid_until, now);
        inner.metrics.validated("verified");
        Ok(principal)
    }

    fn jwt_error(&self, kind: &ErrorKind) -> AuthError {
        match kind {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidAudience => AuthError::WrongAudience {
                expected: self.inner.audiences.first().cloned().unwrap_or_default(),
            },
            ErrorKind::InvalidIssuer => AuthError::UnknownIssuer,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::MissingRequiredClaim(claim) => {
                AuthError::MissingClaim(match claim.as_str() {
                    "aud" => "aud",
                    "iss" => "iss",
                    _ => "exp",
                })
            }
            ErrorKind::InvalidClaimFormat(_) => {
                AuthError::Malformed("a registered claim has the wrong type")
            }
            ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_)
            | ErrorKind::InvalidToken => {
                AuthError::Malformed("the payload or signature is not base64url JSON")
            }
            _ => AuthError::KeyMismatch,
        }
    }
}

impl TokenValidator for JwtValidator {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            let verified = self.verify(token).await;
            if verified.is_err() {
                self.inner.metrics.validated("rejected");
            }
            verified
        })
    }

    /// A token this validator verified before, until it expires (or its
    /// groups are due to be asked for again).
    fn known(&self, token: &str) -> Option<Principal> {
        let principal = self.inner.cache.get(token, SystemTime::now())?;
        self.inner.metrics.validated("cached");
        Some(principal)
    }

    fn audience(&self) -> Option<&str> {
        self.inner.audiences.first().map(String::as_str)
    }

    fn max_token_bytes(&self) -> usize {
        self.inner.max_token_bytes
    }
}

/// Settings for a [`JwtValidator`]; every one has a safe default except the
/// audiences, the tenants (or issuers) and the key source.
#[derive(Clone)]
pub struct JwtValidatorBuilder {
    keys: Option<KeySource>,
    client: Option<Arc<dyn HttpClient>>,
    tenants: Vec<String>,
    audiences: Vec<String>,
    issuers: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    refresh_interval: Duration,
    unknown_kid_interval: Duration,
    cache_capacity: usize,
    max_token_bytes: usize,
    groups: Option<Arc<dyn GroupResolver>>,
    metrics: Option<Arc<IdentityMetrics>>,
    mapping: Option<ClaimMapping>,
}

impl Default for JwtValidatorBuilder {
    fn default() -> Self {
        Self {
            keys: None,
            client: None,
            tenants: Vec::new(),
            audiences: Vec::new(),
            issuers: Vec::new(),
            algorithms: vec![Algorithm::RS256],
            leeway: Duration::from_secs(60),
            refresh_interval: Duration::from_secs(3600),
            unknown_kid_interval: Duration::from_secs(60),
            cache_capacity: 10_000,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            groups: None,
            metrics: None,
            mapping: None,
        }
    }
}

impl std::fmt::Debug for JwtValidatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidatorBuilder")
            .field("keys", &self.keys)
            .field("tenants", &self.tenants)
            .field("audiences", &self.audiences)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$name = $name;
            self
        }
    };
}

impl JwtValidatorBuilder {
    /// Allows tokens of tenant `tid` (Entra `tid`); call once per tenant.
    /// With no tenant, `tid` is not checked and issuers must be given.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenants.push(tenant.into().to_ascii_lowercase());
        self
    }

    /// Accepts tokens for `audience` (the gateway's app ID URI or client
    /// id); call once per audience. At least one is required.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens from `issuer`, where `{tenant}` stands for each allowed
    /// tenant. Without any, the Entra ID v1 and v2 issuers ([`ENTRA_ISSUERS`])
    /// are accepted, plus the issuer discovery names.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Where signing keys come from. Required.
    #[must_use]
    pub fn keys(mut self, source: KeySource) -> Self {
        self.keys = Some(source);
        self
    }

    /// The client for discovery and JWKS requests. Without one, discovery
    /// and JWKS URLs use [`https_client`](crate::https_client) (feature
    /// `https`, on by default: system roots, `https://` only).
    #[must_use]
    pub fn http_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.client = Some(client);
        self
    }

    /// Counts this validator's work into `metrics` (default: its own,
    /// unregistered); see [`IdentityMetrics`].
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<IdentityMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Resolves group overage; without one, overage tokens are refused with 403.
    #[must_use]
    pub fn group_resolver(mut self, resolver: Arc<dyn GroupResolver>) -> Self {
        self.groups = Some(resolver);
        self
    }

    setter!(
        /// Accepted signature algorithms (default RS256). RS*, PS* and ES256/ES384 only: never `none` or HMAC.
        algorithms: Vec<Algorithm>
    );
    setter!(
        /// Clock skew allowed on `exp`, `nbf` and `iat` (default 60 s).
        leeway: Duration
    );
    setter!(
        /// How often keys are refetched in the background (default 1 h).
        refresh_interval: Duration
    );
    setter!(
        /// The least time between two refetches caused by unknown `kid`s (default 60 s).
        unknown_kid_interval: Duration
    );
    setter!(
        /// How many verified tokens are remembered (default 10 000; 0 disables).
        cache_capacity: usize
    );
    setter!(
        /// The longest token accepted, in bytes (default 16 KiB).
        max_token_bytes: usize
    );

    /// Maps claims with `mapping` instead of as Entra ID's (for a
    /// provider other than Entra: Kubernetes, GitHub Actions, any OIDC
    /// issuer); name its issuers with [`issuer`](Self::issuer) or let
    /// discovery name it.
    #[must_use]
    pub fn claims(mut self, mapping: ClaimMapping) -> Self {
        self.mapping = Some(mapping);
        self
    }

    /// Checks the settings, loads the keys once, and starts the background refresh.
    ///
    /// # Errors
    ///
    /// [`BuildError::Invalid`] for a wrong setting, [`BuildError::Keys`] when
    /// the first key fetch fails: a validator never starts without keys.
    pub async fn build(self) -> Result<JwtValidator, BuildError> {
        let invalid = |m: &str| Err(BuildError::Invalid(m.to_owned()));
        if self.audiences.is_empty() {
            return invalid("no audience: accept at least the gateway's own app ID URI (audience)");
        }
        if self.algorithms.is_empty() {
            return invalid("no accepted algorithm: use RS256");
        }
        if let Some(alg) = self.algorithms.iter().find(|a| {
            matches!(
                a,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 | Algorithm::EdDSA
            )
        }) {
            return Err(BuildError::Invalid(format!(
                "{} is not accepted: Airlock verifies asymmetric signatures only (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384)",
                algorithm_name(*alg)
            )));
        }
        let Some(source) = &self.keys else {
            return invalid("no key source: use discovery, a JWKS URL or a static JWKS");
        };
        let client = match (&self.client, source) {
            (Some(client), _) => Some(client.clone()),
            (None, KeySource::Static(_)) => None,
            #[cfg(feature = "https")]
            (None, _) => {
                Some(crate::https_client().map_err(|e| BuildError::Invalid(e.to_string()))?)
            }
            #[cfg(not(feature = "https"))]
            (None, _) => None,
        };
        let metrics = self.metrics.unwrap_or_default();
        let loaded =
            KeyStore::load(source, client, self.unknown_kid_interval, metrics.clone()).await?;
        let templates: Vec<&str> = if self.issuers.is_empty() {
            ENTRA_ISSUERS.to_vec()
        } else {
            self.issuers.iter().map(String::as_str).collect()
        };
        let mut issuers: Vec<String> = Vec::new();
        for template in templates {
            if template.contains("{tenant}") {
                issuers.extend(self.tenants.iter().map(|t| template.replace("{tenant}", t)));
            } else {
                issuers.push(template.to_owned());
            }
        }
        issuers.extend(loaded.discovered_issuer);
        if issuers.is_empty() {
            return invalid("no issuer: allow a tenant or name the issuers");
        }
        let validations = self
            .algorithms
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.leeway = self.leeway.as_secs();
                validation.validate_nbf = true;
                validation.set_audience(&self.audiences);
                // `iss` is checked after the tenant, for a more precise reason.
                validation.set_required_spec_claims(&["exp", "aud", "iss"]);
                (*alg, validation)
            })
            .collect();
        let inner = Arc::new(Inner {
            keys: loaded.store,
            validations,
            algorithms: self.algorithms,
            audiences: self.audiences,
            issuers: issuers.into_iter().collect(),
            tenants: self.tenants.into_iter().collect(),
            leeway: self.leeway,
            max_token_bytes: self.max_token_bytes,
            cache: TokenCache::new(self.cache_capacity),
            groups: self.groups,
            metrics,
            mapping: self.mapping,
        });
        if inner.keys.refreshes() {
            tokio::spawn(refresh_periodically(
                Arc::downgrade(&inner),
                self.refresh_interval,
            ));
        }
        Ok(JwtValidator { inner })
    }
}

/// Refetches keys every `interval` until the validator is dropped.
async fn refresh_periodically(inner: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(error) = inner.keys.refresh().await {
            tracing::warn!(%error, "refreshing signing keys failed; keeping the last good set");
        }
    }
}
