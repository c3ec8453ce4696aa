//! [`ClientCertificate`]: an app registration signing in with a
//! certificate: a `client_assertion` JWT signed with its private key.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_core::{BoxFuture, HttpClient};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use sha2::{Digest, Sha256};

use crate::entra;
use crate::{FetchedToken, SourceError, TokenSource};

/// The `client_assertion_type` of a JWT assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid (Entra accepts at most 10 minutes).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Signs in as `client_id` with a certificate (PEM: the certificate and its
/// RSA private key, in one file as `AZURE_CLIENT_CERTIFICATE_PATH` holds
/// them, or two). Each token request carries a fresh assertion: header
/// `PS256` (or `RS256`) with `x5t#S256`, claims `aud` = the token URL,
/// `iss` = `sub` = the client id, a random `jti`, `nbf`, `exp` 5 minutes on.
pub struct ClientCertificate {
    http: Arc<dyn HttpClient>,
    token_url: String,
    client_id: String,
    key: EncodingKey,
    header: Header,
    identity: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("algorithm", &self.header.alg)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// From PEM text holding the certificate (the first one is used) and,
    /// in `key_pem` (which may be the same text), its RSA private key.
    /// `pss` signs PS256 (Entra's current choice), else RS256.
    ///
    /// # Errors
    ///
    /// No certificate, or no RSA private key, in the PEM.
    pub fn new(
        http: Arc<dyn HttpClient>,
        authority_host: &str,
        tenant_id: &str,
        client_id: &str,
        certificate_pem: &str,
        key_pem: &str,
        pss: bool,
    ) -> Result<Self, SourceError> {
        let certificate = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| {
                SourceError::permanent("the certificate file holds no PEM certificate")
            })?;
        let key = private_key_block(key_pem)
            .and_then(|block| EncodingKey::from_rsa_pem(block.as_bytes()).ok())
            .ok_or(())
            .map_err(|()| {
                SourceError::permanent(
                    "the certificate file holds no RSA private key (PEM, PKCS#8 or PKCS#1)",
                )
            })?;
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(certificate.as_ref()));
        let mut header = Header::new(if pss {
            Algorithm::PS256
        } else {
            Algorithm::RS256
        });
        header.x5t_s256 = Some(thumbprint.clone());
        Ok(Self {
            http,
            token_url: entra::token_url(authority_host, tenant_id),
            client_id: client_id.to_owned(),
            key,
            header,
            identity: format!(
                "client {client_id} in tenant {tenant_id} (certificate {thumbprint})"
            ),
        })
    }

    /// The assertion for one token request.
    fn assertion(&self) -> Result<String, SourceError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = serde_json::json!({
            "aud": self.token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME.as_secs(),
        });
        jsonwebtoken::encode(&self.header, &claims, &self.key).map_err(|e| {
            SourceError::permanent(format!("signing the client assertion failed: {e}"))
        })
    }
}

/// The first `-----BEGIN … PRIVATE KEY-----` block of `pem` (a file may
/// hold the certificate first).
fn private_key_block(pem: &str) -> Option<&str> {
    let start = pem
        .match_indices("-----BEGIN ")
        .map(|(at, _)| at)
        .find(|&at| {
            pem[at..]
                .lines()
                .next()
                .is_some_and(|line| line.contains("PRIVATE KEY"))
        })?;
    let end_marker = pem[start..].find("-----END ")? + start;
    let end = pem[end_marker..]
        .find('\n')
        .map_or(pem.len(), |n| end_marker + n + 1);
    Some(&pem[start..end])
}

impl TokenSource for ClientCertificate {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let assertion = self.assertion()?;
            let scope = entra::scope(audience);
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.as_str()),
                ("scope", scope.as_str()),
            ];
            entra::request_token(&*self.http, &self.token_url, &form, |text| {
                text.replace(&assertion, "<redacted>")
            })
            .await
        })
    }
}
