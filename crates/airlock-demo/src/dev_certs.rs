//! [`DevCertificates`]: a development CA and a server certificate, generated at run time.

use std::path::Path;

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
    pub fn generate(hosts: &[&str]) -> Result<Self, rcgen::Error> {
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
