//! TLS for the client-facing listener (rustls on aws-lc-rs), and development
//! certificates for the demo and tests.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{key} {path}: {reason}")]
    File {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error("listen.tls: the certificate and key do not form a usable pair: {0}")]
    Pair(rustls::Error),
    /// A development certificate could not be generated.
    #[error("could not generate a development certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The listener's rustls configuration: HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |key, path: &Path, reason: String| TlsError::File {
        key,
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_error("listen.tls.cert_file", cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("listen.tls.cert_file", cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "listen.tls.cert_file",
            cert_file,
            "contains no PEM certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        file_error(
            "listen.tls.key_file",
            key_file,
            format!("no usable PEM private key ({e})"),
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::Pair)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(TlsError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A development CA and a server certificate it signed, all PEM.
///
/// Clients trust the gateway by trusting `ca_pem` (`curl --cacert ca.pem`,
/// `REQUESTS_CA_BUNDLE`/`SSL_CERT_FILE` for the Azure CLI and Python SDKs,
/// `NODE_EXTRA_CA_CERTS` for JavaScript).
#[derive(Clone)]
pub struct DevCertificates {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The server certificate.
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
}

impl std::fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCertificates").finish_non_exhaustive()
    }
}

impl DevCertificates {
    /// A CA and a certificate for `hosts` (and every `*.host`), valid for
    /// loopback addresses too. Verifiers refuse wildcards directly under a
    /// single-label name such as `*.localhost`, so name vault hosts
    /// (`demo-vault.localhost`) explicitly.
    pub fn generate(hosts: &[&str]) -> Result<Self, TlsError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Airlock development CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let mut names: Vec<String> = Vec::new();
        for host in hosts {
            names.push((*host).to_owned());
            names.push(format!("*.{host}"));
        }
        names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
        let server_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("localhost"),
        );
        let server_cert = params.signed_by(&server_key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        })
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into `dir`.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem)?;
        std::fs::write(dir.join("cert.pem"), &self.cert_pem)?;
        std::fs::write(dir.join("key.pem"), &self.key_pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_load_into_a_listener_config() {
        let dir = tempfile::tempdir().unwrap();
        DevCertificates::generate(&["localhost"])
            .unwrap()
            .write_to(dir.path())
            .unwrap();
        let config =
            server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn unusable_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        let certs = DevCertificates::generate(&["localhost"]).unwrap();
        certs.write_to(dir.path()).unwrap();
        let err = server_config(&dir.path().join("empty.pem"), &dir.path().join("key.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("listen.tls.cert_file") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = server_config(&dir.path().join("cert.pem"), &dir.path().join("empty.pem"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("listen.tls.key_file"), "{err}");
        // A key that does not belong to the certificate.
        let other = DevCertificates::generate(&["localhost"]).unwrap();
        std::fs::write(dir.path().join("other-key.pem"), other.key_pem).unwrap();
        let err = server_config(
            &dir.path().join("cert.pem"),
            &dir.path().join("other-key.pem"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("do not form a usable pair"), "{err}");
    }
}
