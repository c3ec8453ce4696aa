//! [`Fingerprint`]: what binds a grant to the one request it was given for.

use std::fmt;

use airlock_core::{Operation, Principal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// SHA-256 over the requester (tenant and object id), the HTTP method, the
/// path as sent, the operation (name, plane and normalized scope, and those
/// of every operation it carries), the canonical query (every parameter,
/// names lower-cased, names and values form-decoded once, sorted), the
/// headers that change what Azure does (`Content-Type` and every `x-ms-*`
/// but the per-call ids and date, sorted) and the request body.
///
/// So a grant given for `POST …/listKeys?api-version=2023-05-01` is not
/// spent by `…?api-version=2019-06-01&$expand=kerb`, nor one for a `PUT`
/// by a `PATCH` of the same body, nor one for deleting a blob by the same
/// `DELETE` with `x-ms-delete-snapshots: include`, nor one for a secret's
/// old version by its current one, nor one for an ARM path that spells a
/// Key Vault operation by the vault's own request; the same parameters in
/// another order or another (equivalent) encoding are the same request.
///
/// Every field is length-prefixed, so no two different requests can be
/// spelled into the same input.
///
/// ```
/// use airlock_approval::Fingerprint;
/// use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
///
/// let agent = Principal::builder("agent-1", PrincipalKind::ManagedIdentity).tenant_id("t").build();
/// let op = Operation::new("Microsoft.Storage/storageAccounts/write", Plane::Management,
///     ResourceScope::new("/subscriptions/s/resourceGroups/RG"));
/// let same = Operation::new("Microsoft.Storage/storageAccounts/write", Plane::Management,
///     ResourceScope::new("/subscriptions/s/resourcegroups/rg/"));
/// let request = |method: &str, uri: &str, headers: &[(&str, &str)]| {
///     let mut request = http::Request::builder().method(method).uri(uri);
///     for (name, value) in headers {
///         request = request.header(*name, *value);
///     }
///     request.body(()).unwrap().into_parts().0
/// };
/// let put = |uri, op, body| Fingerprint::of(&agent, &request("PUT", uri, &[]), op, body);
/// assert_eq!(put("/rg?api-version=1", &op, b"{}"), put("/rg?api-version=1", &same, b"{}"));
/// assert_ne!(put("/rg?api-version=1", &op, b"{}"), put("/rg?api-version=1", &op, b"{ }"));
/// assert_ne!(put("/rg?api-version=1", &op, b"{}"), put("/rg?api-version=2", &op, b"{}"));
/// assert_eq!(put("/rg?a=1&b=%7E", &op, b""), put("/rg?b=~&A=1", &op, b""));
/// let patch = Fingerprint::of(&agent, &request("PATCH", "/rg", &[]), &op, b"{}");
/// assert_ne!(put("/rg", &op, b"{}"), patch);
/// // Headers that change what Azure does count; per-call ids do not.
/// let with = |headers| Fingerprint::of(&agent, &request("PUT", "/rg", headers), &op, b"{}");
/// assert_ne!(with(&[]), with(&[("x-ms-delete-snapshots", "include")]));
/// assert_eq!(with(&[]), with(&[("x-ms-client-request-id", "1"), ("x-ms-date", "now")]));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

/// `x-ms-*` headers that differ on every call of the same request (and so
/// on a client's retry) and change nothing Azure does.
const PER_CALL: [&str; 4] = [
    "x-ms-client-request-id",
    "x-ms-correlation-request-id",
    "x-ms-date",
    "x-ms-return-client-request-id",
];

impl Fingerprint {
    /// Fingerprints one request: who sends it (`principal`), how (`parts`:
    /// method, path, query, headers), what it does (`operation`) and its
    /// body.
    pub fn of(
        principal: &Principal,
        parts: &http::request::Parts,
        operation: &Operation,
        body: &[u8],
    ) -> Self {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(b"airlock-approval-fingerprint-v3");
        field(principal.tenant_id().to_ascii_lowercase().as_bytes());
        field(principal.id().to_ascii_lowercase().as_bytes());
        field(parts.method.as_str().as_bytes());
        field(parts.uri.path().as_bytes());
        let operations = operation.flatten();
        field(&(operations.len() as u64).to_be_bytes());
        for op in operations {
            field(op.name().to_ascii_lowercase().as_bytes());
            field(match op.plane() {
                airlock_core::Plane::Management => b"management",
                airlock_core::Plane::Data => b"data",
            });
            field(op.scope().normalized().as_bytes());
        }
        let parameters = canonical_query(parts.uri.query().unwrap_or_default());
        field(&(parameters.len() as u64).to_be_bytes());
        for (name, value) in &parameters {
            field(name);
            field(value);
        }
        let headers = semantic_headers(&parts.headers);
        field(&(headers.len() as u64).to_be_bytes());
        for (name, value) in &headers {
            field(name.as_bytes());
            field(value);
        }
        field(body);
        Self(hasher.finalize().into())
    }

    /// The fingerprint an approval of this request's *answer* is kept
    /// under: another domain, so a retry admitted by a request approval can
    /// never take an answer approval's grant, nor the other way round.
    ///
    /// ```
    /// # use airlock_approval::Fingerprint;
    /// # use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
    /// # let agent = Principal::builder("a", PrincipalKind::ManagedIdentity).build();
    /// # let op = Operation::new("Microsoft.Storage/storageAccounts/read", Plane::Management, ResourceScope::new("/s"));
    /// # let parts = http::Request::get("/s").body(()).unwrap().into_parts().0;
    /// let request = Fingerprint::of(&agent, &parts, &op, b"");
    /// assert_ne!(request.for_answer(), request);
    /// assert_eq!(request.for_answer(), request.for_answer());
    /// ```
    #[must_use]
    pub fn for_answer(&self) -> Self {
        self.in_domain(b"airlock-approval-answer-v1")
    }

    /// The fingerprint an approval that *reveals* this request's answer
    /// (`x-airlock-reveal`) is kept under: another domain, so a request
    /// without the header never takes a reveal's grant (its answer stays
    /// masked), and a reveal never silently joins or spends an approval
    /// that reveals nothing.
    ///
    /// ```
    /// # use airlock_approval::Fingerprint;
    /// # use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
    /// # let agent = Principal::builder("a", PrincipalKind::ManagedIdentity).build();
    /// # let op = Operation::new("Microsoft.KeyVault/vaults/secrets/getSecret/action", Plane::Data, ResourceScope::new("/s"));
    /// # let parts = http::Request::get("/s").body(()).unwrap().into_parts().0;
    /// let request = Fingerprint::of(&agent, &parts, &op, b"");
    /// assert_ne!(request.for_reveal(), request);
    /// assert_ne!(request.for_reveal(), request.for_answer());
    /// ```
    #[must_use]
    pub fn for_reveal(&self) -> Self {
        self.in_domain(b"airlock-approval-reveal-v1")
    }

    fn in_domain(&self, domain: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(domain);
        hasher.update(self.0);
        Self(hasher.finalize().into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// The digest in lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The headers that change what Azure does with the request, sorted:
/// `Content-Type` and every `x-ms-*` but [`PER_CALL`].
pub(crate) fn semantic_headers(headers: &http::HeaderMap) -> Vec<(&str, &[u8])> {
    let mut kept: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .filter(|(name, _)| {
            *name == "content-type" || (name.starts_with("x-ms-") && !PER_CALL.contains(name))
        })
        .collect();
    kept.sort_unstable();
    kept
}

/// The query's parameters, names lower-cased (ARM reads them so), names and
/// values form-decoded once (`+` a space, `%XX` a byte), sorted; empty
/// pieces (`a=1&&b=2`) dropped.
fn canonical_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    // As forms are read (and Airlock's classifier reads them): `+` is a
    // space, so `a+b` and `a%2Bb` are two requests, not one.
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " ")).collect::<Vec<u8>>()
    };
    let mut parameters: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode(name).to_ascii_lowercase(), decode(value))
        })
        .collect();
    parameters.sort();
    parameters
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut digest).map_err(serde::de::Error::custom)?;
        Ok(Self(digest))
    }
}
