//! [`Fingerprint`]: what binds a grant to the one request it was given for.

use std::fmt;

use airlock_core::{Operation, Principal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// SHA-256 over the requester (tenant and object id), the HTTP method, the
/// operation (name and normalized scope, and those of every operation it
/// carries), the canonical query (every parameter, names lower-cased,
/// names and values percent-decoded once, sorted) and the request body.
///
/// So a grant given for `POST …/listKeys?api-version=2023-05-01` is not
/// spent by `…?api-version=2019-06-01&$expand=kerb`, nor one for a `PUT`
/// by a `PATCH` of the same body; the same parameters in another order or
/// another (equivalent) encoding are the same request.
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
/// let put = |op, query, body| Fingerprint::compute(&agent, &http::Method::PUT, op, query, body);
/// assert_eq!(put(&op, Some("api-version=1"), b"{}"), put(&same, Some("api-version=1"), b"{}"));
/// assert_ne!(put(&op, Some("api-version=1"), b"{}"), put(&op, Some("api-version=1"), b"{ }"));
/// assert_ne!(put(&op, Some("api-version=1"), b"{}"), put(&op, Some("api-version=2"), b"{}"));
/// assert_eq!(put(&op, Some("a=1&b=%7E"), b""), put(&op, Some("b=~&A=1"), b""));
/// assert_ne!(
///     put(&op, None, b"{}"),
///     Fingerprint::compute(&agent, &http::Method::PATCH, &op, None, b"{}"),
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprints one request: who sends it, with which method, what it
    /// does, its query and its body.
    pub fn compute(
        principal: &Principal,
        method: &http::Method,
        operation: &Operation,
        query: Option<&str>,
        body: &[u8],
    ) -> Self {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(b"airlock-approval-fingerprint-v2");
        field(principal.tenant_id().to_ascii_lowercase().as_bytes());
        field(principal.id().to_ascii_lowercase().as_bytes());
        field(method.as_str().as_bytes());
        let operations = operation.flatten();
        field(&(operations.len() as u64).to_be_bytes());
        for op in operations {
            field(op.name().to_ascii_lowercase().as_bytes());
            field(op.scope().normalized().as_bytes());
        }
        let parameters = canonical_query(query.unwrap_or_default());
        field(&(parameters.len() as u64).to_be_bytes());
        for (name, value) in &parameters {
            field(name);
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
    /// let request = Fingerprint::compute(&agent, &http::Method::GET, &op, None, b"");
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
    /// let request = Fingerprint::compute(&agent, &http::Method::GET, &op, None, b"");
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

/// The query's parameters, names lower-cased (ARM reads them so), names and
/// values percent-decoded once, sorted; empty pieces (`a=1&&b=2`) dropped.
fn canonical_query(query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |text: &str| percent_encoding::percent_decode_str(text).collect::<Vec<u8>>();
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
