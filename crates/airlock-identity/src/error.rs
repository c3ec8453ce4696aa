//! Why a request's identity was refused, and the one place that becomes a response.

use airlock_core::AirlockError;

/// Why a bearer token was not accepted. The text names the problem and the
/// fix; it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization` header.
    #[error(
        "no bearer token: send 'Authorization: Bearer <access token>' with an Entra ID token issued for {audience}"
    )]
    MissingToken {
        /// The audience to ask for.
        audience: String,
    },
    /// The request carries more than one `Authorization` header.
    #[error("more than one Authorization header: send exactly one 'Authorization: Bearer <token>'")]
    DuplicateAuthorization,
    /// A `CONNECT`'s `Proxy-Authorization` cannot be read.
    #[error(
        "the Proxy-Authorization header {0}: send 'Proxy-Authorization: Bearer <token>', or put the token in the proxy URL as its password (HTTPS_PROXY=http://agent:<token>@gateway:port)"
    )]
    ProxyAuthorization(&'static str),
    /// The header does not use the Bearer scheme.
    #[error(
        "the Authorization header must use the Bearer scheme ('Authorization: Bearer <token>')"
    )]
    NotBearer,
    /// The token is larger than accepted.
    #[error("the token is longer than {limit} bytes; send an access token, not a document")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The token is not a well-formed JWT.
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    /// The token is signed with an algorithm that is not accepted.
    #[error("tokens signed with '{found}' are not accepted; accepted: {accepted}")]
    Algorithm {
        /// The `alg` the token names (a short, sanitised string).
        found: String,
        /// The accepted algorithms, comma-separated.
        accepted: String,
    },
    /// The header's `typ` is not `JWT` or `at+jwt`.
    #[error("the token's header type must be 'JWT' or 'at+jwt' (RFC 9068)")]
    TokenType,
    /// The header names critical extensions this validator does not understand.
    #[error(
        "the token's header lists critical extensions ('crit'), which Airlock does not support"
    )]
    CriticalHeader,
    /// The header has no `kid`.
    #[error(
        "the token's header has no 'kid': Airlock only accepts tokens whose signing key it can name"
    )]
    MissingKeyId,
    /// No published key has the token's `kid`.
    #[error(
        "the token's signing key is not published by the identity provider (unknown 'kid'); request a new token"
    )]
    UnknownKey,
    /// The key named by `kid` cannot verify this algorithm.
    #[error("the token's signing key does not match its algorithm")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired; request a new token")]
    Expired,
    /// `nbf` (or `iat`) is in the future.
    #[error("the token is not valid yet (nbf/iat in the future); check the client's clock")]
    NotYetValid,
    /// `aud` is not one of the accepted audiences.
    #[error("the token's audience is not accepted; request a token for {expected}")]
    WrongAudience {
        /// The audience to ask for.
        expected: String,
    },
    /// `iss` is not a configured issuer.
    #[error(
        "the token's issuer is not accepted; Airlock accepts tokens from the configured tenants' Entra ID issuers"
    )]
    UnknownIssuer,
    /// No configured identity provider issues tokens as `iss` says.
    #[error(
        "the token's issuer '{issuer}' is not one Airlock trusts; get a token from a configured identity provider, or ask the Airlock operator to add an [[identity.provider]] for it"
    )]
    IssuerNotTrusted {
        /// The token's (unverified) `iss`, cut short and without control characters.
        issuer: String,
    },
    /// The claim a provider's claim mapping takes the principal id from is missing.
    #[error(
        "the token has no usable '{claim}' claim, which its identity provider's claim mapping names as the principal's id"
    )]
    MappedClaimMissing {
        /// The claim.
        claim: String,
    },
    /// A claim a provider's claim mapping reads has the wrong shape.
    #[error("the token's '{claim}' claim is malformed: expected a string or an array of strings")]
    MappedClaimMalformed {
        /// The claim.
        claim: String,
    },
    /// `tid` is not an allowed tenant.
    #[error(
        "tenant '{tenant}' is not allowed; ask the Airlock operator to add it to [identity].tenants"
    )]
    TenantNotAllowed {
        /// The token's (verified) tenant.
        tenant: String,
    },
    /// A claim the principal needs is missing or has the wrong type.
    #[error("the token has no usable '{0}' claim")]
    MissingClaim(&'static str),
    /// A claim is present but not in the shape Entra issues it.
    #[error(
        "the token's '{claim}' claim is malformed: {problem}; request a new token from Entra ID"
    )]
    BadClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The token's groups did not fit in it and could not be looked up.
    /// The token itself was valid: `principal` is who sent it (without
    /// groups), so the refusal is recorded against them.
    #[error("{reason}")]
    GroupsUnresolved {
        /// Why, and what to configure.
        reason: String,
        /// The verified principal, its groups unknown.
        principal: Box<airlock_core::Principal>,
    },
    /// No signing keys are available: the identity provider has not answered since start.
    #[error("no signing keys are available ({0}); the identity provider could not be reached")]
    KeysUnavailable(String),
}

impl AuthError {
    /// The RFC 6750 error code: `None` when no credential was sent, so the
    /// challenge carries only the authority and resource (what Key Vault's
    /// first, token-less probe expects).
    pub fn oauth_error(&self) -> Option<&'static str> {
        match self {
            AuthError::MissingToken { .. } => None,
            AuthError::DuplicateAuthorization
            | AuthError::NotBearer
            | AuthError::ProxyAuthorization(_) => Some("invalid_request"),
            _ => Some("invalid_token"),
        }
    }

    /// The error Airlock answers with; `challenge` are the extra
    /// `WWW-Authenticate` parameters (`authorization`, `resource`).
    pub fn into_airlock(self, challenge: &[(String, String)]) -> AirlockError {
        match self {
            AuthError::GroupsUnresolved { reason, .. } => AirlockError::GroupsUnresolved(reason),
            AuthError::KeysUnavailable(reason) => AirlockError::IdentityUnavailable(reason),
            other => AirlockError::Unauthenticated {
                oauth_error: other.oauth_error(),
                description: other.to_string(),
                challenge: challenge.to_vec(),
            },
        }
    }
}

/// Why a [`JwtValidator`](crate::JwtValidator) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is missing or wrong.
    #[error("{0}")]
    Invalid(String),
    /// The first key fetch failed: the validator would have nothing to verify with.
    #[error("cannot load signing keys from {url}: {reason}")]
    Keys {
        /// Where the keys were fetched from.
        url: String,
        /// Why it failed.
        reason: String,
    },
}
