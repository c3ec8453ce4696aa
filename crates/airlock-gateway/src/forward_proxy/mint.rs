//! Leaf certificates minted on the fly for the hosts a `CONNECT` tunnels
//! to, from the configured CA: ECDSA P-256, short-lived, cached per host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair};
use rustls::crypto::aws_lc_rs::sign::any_ecdsa_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Mints and caches leaf certificates; cheap to share.
pub(crate) struct Minter {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    lifetime: Duration,
    cache: Mutex<HashMap<String, (Arc<CertifiedKey>, SystemTime)>>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter for the CA in `cert_pem` with its key `key_pem`.
    pub(crate) fn new(cert_pem: &str, key_pem: &str, lifetime: Duration) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("the CA key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| format!("the CA certificate: {e}"))?;
        let ca_der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("the CA certificate: {e}"))?;
        Ok(Self {
            issuer,
            ca_der,
            lifetime,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The certificate for `host`: cached, or minted when missing or when
    /// less than a quarter of its life is left.
    pub(crate) fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, String> {
        let now = SystemTime::now();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((leaf, renew_at)) = cache.get(host)
            && now < *renew_at
        {
            return Ok(leaf.clone());
        }
        let leaf = Arc::new(self.mint(host, now)?);
        cache.insert(host.to_owned(), (leaf.clone(), now + self.lifetime * 3 / 4));
        Ok(leaf)
    }

    fn mint(&self, host: &str, now: SystemTime) -> Result<CertifiedKey, String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            CertificateParams::new(vec![host.to_owned()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Valid from a little before now: clocks disagree.
        params.not_before = (now - Duration::from_secs(300)).into();
        params.not_after = (now + self.lifetime).into();
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = any_ecdsa_type(&der).map_err(|e| e.to_string())?;
        Ok(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signing,
        ))
    }
}

/// A CA for forward-proxy mode: certificate and key, PEM (`airlock ca init`).
///
/// # Errors
///
/// When rcgen cannot make the key or certificate.
pub fn generate_ca(common_name: &str) -> Result<(String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, IsCa, KeyUsagePurpose};
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = SystemTime::now();
    params.not_before = (now - Duration::from_secs(300)).into();
    params.not_after = (now + Duration::from_secs(2 * 365 * 24 * 3600)).into();
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_minted_once_per_host_and_chain_to_the_ca() {
        let (cert, key) = generate_ca("test CA").unwrap();
        let minter = Minter::new(&cert, &key, Duration::from_secs(3600)).unwrap();
        let first = minter.leaf("management.azure.com").unwrap();
        let again = minter.leaf("management.azure.com").unwrap();
        assert!(Arc::ptr_eq(&first, &again), "cached");
        let other = minter.leaf("kv1.vault.azure.net").unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(first.cert.len(), 2, "leaf and CA");
        assert!(Minter::new(&cert, "not a key", Duration::from_secs(3600)).is_err());
    }
}
