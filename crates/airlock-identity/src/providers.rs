//! [`IssuerRouter`]: several identity providers at once, the token's `iss`
//! choosing the one (and only the one) whose keys may verify it.

use std::collections::HashMap;

use airlock_core::{BoxFuture, Principal};
use base64::Engine as _;
use serde_json::Value;

use crate::{AuthError, BuildError, JwtValidator, TokenValidator};

/// Routes each token to the validator of the provider its `iss` names:
/// Entra tenants, a Kubernetes service-account issuer, GitHub Actions' OIDC,
/// any OIDC issuer, each a [`JwtValidator`] with its own keys, audiences and
/// [`ClaimMapping`](crate::ClaimMapping).
///
/// `iss` is read before the signature is checked only to choose; the chosen
/// validator then verifies the token with its own keys and checks `iss`
/// again, so a token signed by provider A that claims provider B's issuer
/// finds no key of A's among B's and is refused, and a token from an
/// issuer no provider has is refused with [`AuthError::IssuerNotTrusted`].
/// The first validator's audience is the one 401 challenges name.
pub struct IssuerRouter {
    by_issuer: HashMap<String, usize>,
    validators: Vec<JwtValidator>,
}

impl std::fmt::Debug for IssuerRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerRouter")
            .field("issuers", &self.by_issuer.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl IssuerRouter {
    /// Routes among `validators`, the first being the default provider.
    ///
    /// # Errors
    ///
    /// [`BuildError::Invalid`] when two validators accept the same issuer
    /// (which keys should verify its tokens would be ambiguous), or none is given.
    pub fn new(validators: Vec<JwtValidator>) -> Result<Self, BuildError> {
        if validators.is_empty() {
            return Err(BuildError::Invalid(
                "no identity provider: configure at least one".into(),
            ));
        }
        let mut by_issuer = HashMap::new();
        for (index, validator) in validators.iter().enumerate() {
            for issuer in validator.issuers() {
                if by_issuer.insert(issuer.to_owned(), index).is_some() {
                    return Err(BuildError::Invalid(format!(
                        "issuer '{issuer}' belongs to two identity providers; each issuer may have one"
                    )));
                }
            }
        }
        Ok(Self {
            by_issuer,
            validators,
        })
    }
}

/// The token's `iss`, unverified: only to choose a validator.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or(AuthError::Malformed("expected three dot-separated parts"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| AuthError::Malformed("the payload or signature is not base64url JSON"))?;
    let claims: serde_json::Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the payload or signature is not base64url JSON"))?;
    claims
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(AuthError::MissingClaim("iss"))
}

/// An untrusted issuer as an error message may repeat it: printable, short.
fn shown(issuer: &str) -> String {
    let mut shown: String = issuer
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    if issuer.chars().count() > 120 {
        shown.push('…');
    }
    shown
}

impl TokenValidator for IssuerRouter {
    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Principal, AuthError>> {
        Box::pin(async move {
            let limit = self.max_token_bytes();
            if token.len() > limit {
                return Err(AuthError::TooLarge { limit });
            }
            let issuer = unverified_issuer(token)?;
            let Some(&index) = self.by_issuer.get(&issuer) else {
                return Err(AuthError::IssuerNotTrusted {
                    issuer: shown(&issuer),
                });
            };
            self.validators[index].validate(token).await
        })
    }

    /// Known to the provider that verified it: a token is in no other
    /// provider's cache, as no other one accepts its issuer.
    fn known(&self, token: &str) -> Option<Principal> {
        self.validators
            .iter()
            .find_map(|validator| validator.known(token))
    }

    fn audience(&self) -> Option<&str> {
        self.validators.first().and_then(TokenValidator::audience)
    }

    fn max_token_bytes(&self) -> usize {
        self.validators
            .iter()
            .map(TokenValidator::max_token_bytes)
            .max()
            .unwrap_or(crate::DEFAULT_MAX_TOKEN_BYTES)
    }
}
