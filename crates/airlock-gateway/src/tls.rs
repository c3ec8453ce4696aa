//! TLS for the listeners (rustls on aws-lc-rs).

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost`, written as `cert.pem` and `key.pem`.
    struct DevCertificates {
        cert_pem: String,
        key_pem: String,
    }

    impl DevCertificates {
        fn generate(hosts: &[&str]) -> Result<Self, rcgen::Error> {
            let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
            let certified = rcgen::generate_simple_self_signed(hosts)?;
            Ok(Self {
                cert_pem: certified.cert.pem(),
                key_pem: certified.signing_key.serialize_pem(),
            })
        }

        fn write_to(&self, dir: &Path) -> std::io::Result<()> {
            std::fs::write(dir.join("cert.pem"), &self.cert_pem)?;
            std::fs::write(dir.join("key.pem"), &self.key_pem)
        }
    }

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
