//! [`TrustRoots`]: which certificate authorities the client trusts.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The extra CA file (or PEM text) could not be used.
    #[error("CA certificates {origin}: {reason}")]
    Ca {
        /// The file, or `<PEM text>`.
        origin: String,
        /// Why.
        reason: String,
    },
    /// No trust anchors at all.
    #[error("no trusted root certificates: the system store is empty and no extra CA is given")]
    NoRoots,
    /// rustls refused the protocol configuration.
    #[error("TLS cannot be set up: {0}")]
    Tls(String),
}

/// The certificate authorities a client trusts: the system's, extra ones
/// from a PEM file or text, or only the extra ones.
///
/// ```
/// use airlock_http::TrustRoots;
///
/// let error = TrustRoots::none().with_ca_pem("not a certificate").store().unwrap_err();
/// assert!(error.to_string().contains("contains no PEM certificates"), "{error}");
/// ```
#[derive(Clone, Debug, Default)]
pub struct TrustRoots {
    system: bool,
    ca_files: Vec<PathBuf>,
    ca_pems: Vec<String>,
}

impl TrustRoots {
    /// The operating system's roots (unreadable ones are skipped).
    pub fn system() -> Self {
        Self {
            system: true,
            ..Self::default()
        }
    }

    /// No roots yet: only what `with_ca_*` adds (a development CA); with
    /// nothing added, a client that can speak only plain HTTP.
    pub fn none() -> Self {
        Self::default()
    }

    /// Also trusts the certificates in a PEM file.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Also trusts the certificates in `ca_file`, when there is one.
    #[must_use]
    pub fn with_optional_ca_file(self, ca_file: Option<&Path>) -> Self {
        match ca_file {
            Some(path) => self.with_ca_file(path),
            None => self,
        }
    }

    /// Also trusts the certificates in PEM text.
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_pems.push(pem.into());
        self
    }

    /// The root store.
    ///
    /// # Errors
    ///
    /// A file or text that holds no usable certificate, or the system's
    /// roots asked for and none found (and no extra CA given).
    pub fn store(&self) -> Result<RootCertStore, ClientError> {
        let mut roots = RootCertStore::empty();
        if self.system {
            // Unreadable system certificates are skipped: the extra CA may be all a deployment needs.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        for path in &self.ca_files {
            let origin = path.display().to_string();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(&origin, e.to_string()))?
                .collect::<Result<Vec<_>, _>>();
            add_all(&mut roots, &origin, certs)?;
        }
        for pem in &self.ca_pems {
            let certs =
                CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>();
            add_all(&mut roots, "<PEM text>", certs)?;
        }
        if self.system && roots.is_empty() {
            return Err(ClientError::NoRoots);
        }
        Ok(roots)
    }
}

fn add_all(
    roots: &mut RootCertStore,
    origin: &str,
    certs: Result<Vec<CertificateDer<'static>>, rustls_pki_types::pem::Error>,
) -> Result<(), ClientError> {
    let certs = certs.map_err(|e| ca_error(origin, e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error(origin, "contains no PEM certificates".into()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| ca_error(origin, e.to_string()))?;
    }
    Ok(())
}

fn ca_error(origin: &str, reason: String) -> ClientError {
    ClientError::Ca {
        origin: origin.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_roots_asked_for_is_an_empty_store() {
        assert!(TrustRoots::none().store().unwrap().is_empty());
    }

    #[test]
    fn a_missing_ca_file_names_the_file() {
        let error = TrustRoots::none()
            .with_ca_file("/nonexistent/ca.pem")
            .store()
            .unwrap_err();
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
    }
}
