//! Signing keys: where they come from, how they are kept fresh, and how a
//! flood of unknown `kid`s is kept from turning into a flood of IdP calls.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use airlock_core::HttpClient;
use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderValue, Request, StatusCode};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;

use crate::discovery;

/// Where a [`JwtValidator`](crate::JwtValidator) gets its signing keys.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// OpenID Connect discovery of an issuer URL (e.g.
    /// `https://login.microsoftonline.com/{tenant}/v2.0`): its
    /// `/.well-known/openid-configuration` names the `jwks_uri`, and the
    /// discovered issuer is accepted as a token issuer.
    Discovery(String),
    /// A JWKS document at a URL, refreshed like a discovered one.
    JwksUrl(String),
    /// A fixed JWKS document (for example read from a file); never refreshed.
    Static(String),
}

/// A verification key and what it may verify.
#[derive(Debug)]
pub(crate) struct VerificationKey {
    pub(crate) key: DecodingKey,
    family: Family,
    /// The JWK's own `alg`, when it names one.
    alg: Option<Algorithm>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    Rsa,
    P256,
    P384,
}

impl VerificationKey {
    /// Whether this key may verify a signature made with `alg`.
    pub(crate) fn verifies(&self, alg: Algorithm) -> bool {
        let family = match alg.family() {
            AlgorithmFamily::Rsa => Family::Rsa,
            AlgorithmFamily::Ec if alg == Algorithm::ES256 => Family::P256,
            AlgorithmFamily::Ec if alg == Algorithm::ES384 => Family::P384,
            _ => return false,
        };
        family == self.family && self.alg.is_none_or(|named| named == alg)
    }
}

type KeyMap = HashMap<String, Arc<VerificationKey>>;

/// The current keys, their source, and the unknown-`kid` throttle.
pub(crate) struct KeyStore {
    client: Option<Arc<dyn HttpClient>>,
    /// `None` for a static key set.
    jwks_uri: Option<String>,
    keys: RwLock<Arc<KeyMap>>,
    /// When the last refetch for an unknown `kid` happened (single-flight).
    last_unknown_kid_fetch: tokio::sync::Mutex<Option<Instant>>,
    unknown_kid_interval: Duration,
    metrics: Arc<crate::IdentityMetrics>,
}

/// What loading the key source found.
pub(crate) struct Loaded {
    pub(crate) store: KeyStore,
    /// The issuer named by discovery, if the source was discovery.
    pub(crate) discovered_issuer: Option<String>,
}

impl KeyStore {
    /// Loads the keys once; fails when none can be loaded, so a validator
    /// never starts with nothing to verify against.
    pub(crate) async fn load(
        source: &KeySource,
        client: Option<Arc<dyn HttpClient>>,
        unknown_kid_interval: Duration,
        metrics: Arc<crate::IdentityMetrics>,
    ) -> Result<Loaded, crate::BuildError> {
        let need_client = || {
            client.clone().ok_or_else(|| {
                crate::BuildError::Invalid(
                    "fetching keys over HTTP needs an HttpClient: call JwtValidatorBuilder::http_client".into(),
                )
            })
        };
        let (jwks_uri, discovered_issuer, keys) = match source {
            KeySource::Static(document) => {
                let keys =
                    parse_jwks(document.as_bytes()).map_err(|reason| crate::BuildError::Keys {
                        url: "the static JWKS".into(),
                        reason,
                    })?;
                (None, None, keys)
            }
            KeySource::JwksUrl(url) => {
                let keys = fetch(need_client()?.as_ref(), url)
                    .await
                    .map_err(|reason| crate::BuildError::Keys {
                        url: url.clone(),
                        reason,
                    })?;
                (Some(url.clone()), None, keys)
            }
            KeySource::Discovery(issuer) => {
                let client = need_client()?;
                let found = discovery::discover(&client, issuer)
                    .await
                    .map_err(|reason| crate::BuildError::Keys {
                        url: issuer.clone(),
                        reason,
                    })?;
                let keys = fetch(client.as_ref(), &found.jwks_uri)
                    .await
                    .map_err(|reason| crate::BuildError::Keys {
                        url: found.jwks_uri.clone(),
                        reason,
                    })?;
                (Some(found.jwks_uri), Some(found.issuer), keys)
            }
        };
        Ok(Loaded {
            store: KeyStore {
                client,
                jwks_uri,
                keys: RwLock::new(Arc::new(keys)),
                last_unknown_kid_fetch: tokio::sync::Mutex::new(None),
                unknown_kid_interval,
                metrics,
            },
            discovered_issuer,
        })
    }

    /// Whether the keys come from a URL (and so are refreshed).
    pub(crate) fn refreshes(&self) -> bool {
        self.jwks_uri.is_some()
    }

    /// The key named `kid`, if published.
    pub(crate) fn get(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
            .cloned()
    }

    /// Refetches the key set; on failure the last good set stays.
    /// Where the keys come from, for messages (`the static JWKS` for a static set).
    pub(crate) fn source_url(&self) -> String {
        self.jwks_uri
            .clone()
            .unwrap_or_else(|| "the static JWKS".to_owned())
    }

    pub(crate) async fn refresh(&self) -> Result<(), String> {
        let (Some(client), Some(uri)) = (&self.client, &self.jwks_uri) else {
            return Ok(());
        };
        let fetched = fetch(client.as_ref(), uri).await;
        self.metrics.keys_refreshed(fetched.is_ok());
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fetched?);
        Ok(())
    }

    /// For a `kid` not in the set: refetches, at most once per
    /// `unknown_kid_interval` however many requests ask, then looks again.
    pub(crate) async fn refetch_for(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        if !self.refreshes() {
            return None;
        }
        let mut last = self.last_unknown_kid_fetch.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.get(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.unknown_kid_interval) {
            return None;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.refresh().await {
            tracing::warn!(%error, "refetching signing keys for an unknown kid failed; keeping the last good set");
        }
        self.get(kid)
    }
}

/// GETs and parses a JWKS document.
async fn fetch(client: &dyn HttpClient, url: &str) -> Result<KeyMap, String> {
    let mut request = Request::get(url)
        .body(Bytes::new())
        .map_err(|e| format!("bad JWKS URL: {e}"))?;
    request
        .headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    let response = client.send(request).await.map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("the JWKS endpoint answered {}", response.status()));
    }
    parse_jwks(response.body())
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS document into signing keys by `kid`. Keys without a `kid`,
/// encryption keys, symmetric keys and key types it cannot use are skipped;
/// a set with no usable key is an error.
pub(crate) fn parse_jwks(document: &[u8]) -> Result<KeyMap, String> {
    let raw: RawSet =
        serde_json::from_slice(document).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = KeyMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if let Some((kid, key)) = usable(&jwk) {
            keys.insert(kid, Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err(
            "the JWKS document has no usable signing key (RSA or EC P-256/P-384 with a 'kid')"
                .into(),
        );
    }
    Ok(keys)
}

fn usable(jwk: &Jwk) -> Option<(String, VerificationKey)> {
    let kid = jwk.common.key_id.clone().filter(|k| !k.is_empty())?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => Family::P256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P384 => Family::P384,
        _ => return None,
    };
    // A JWK that names an algorithm is used for that one only; one that names
    // an encryption algorithm (RSA-OAEP) is not a signing key.
    let alg = match jwk.common.key_algorithm {
        Some(named) => Some(format!("{named:?}").parse::<Algorithm>().ok()?),
        None => None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, VerificationKey { key, family, alg }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_JWK: &str = r#"{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;

    #[test]
    fn keeps_signing_keys_and_skips_the_rest() {
        let document = format!(
            r#"{{"keys":[{RSA_JWK},
                {{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}},
                {{"kty":"RSA","use":"enc","kid":"enc","n":"AQAB","e":"AQAB"}},
                {{"kty":"RSA","n":"AQAB","e":"AQAB"}},
                {{"kty":"weird","kid":"w"}}]}}"#
        );
        let keys = parse_jwks(document.as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["k1"]);
        let key = &keys["k1"];
        assert!(key.verifies(Algorithm::RS256));
        assert!(!key.verifies(Algorithm::PS256), "the JWK pins RS256");
        assert!(!key.verifies(Algorithm::HS256));
        assert!(!key.verifies(Algorithm::ES256));
    }

    #[test]
    fn a_set_without_usable_keys_is_an_error() {
        assert!(
            parse_jwks(br#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#)
                .unwrap_err()
                .contains("no usable signing key")
        );
        assert!(
            parse_jwks(b"<html>")
                .unwrap_err()
                .starts_with("not a JWKS document")
        );
    }
}
