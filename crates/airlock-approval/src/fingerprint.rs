//! [`Fingerprint`]: what binds a grant to the one request it was given for.

use std::fmt;

use airlock_core::{Operation, Principal};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// SHA-256 over the requester (tenant and object id), the operation (name
/// and normalized scope, and those of every operation it carries) and the
/// request body.
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
/// assert_eq!(Fingerprint::compute(&agent, &op, b"{}"), Fingerprint::compute(&agent, &same, b"{}"));
/// assert_ne!(Fingerprint::compute(&agent, &op, b"{}"), Fingerprint::compute(&agent, &op, b"{ }"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprints one request.
    pub fn compute(principal: &Principal, operation: &Operation, body: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(b"airlock-approval-fingerprint-v1");
        field(principal.tenant_id().to_ascii_lowercase().as_bytes());
        field(principal.id().to_ascii_lowercase().as_bytes());
        let operations = operation.flatten();
        field(&(operations.len() as u64).to_be_bytes());
        for op in operations {
            field(op.name().to_ascii_lowercase().as_bytes());
            field(op.scope().normalized().as_bytes());
        }
        field(body);
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
