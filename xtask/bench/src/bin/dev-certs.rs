//! `dev-certs`: a throwaway CA and a server certificate signed by it, for
//! the TLS listener `cargo xtask bench` starts a gateway with.
//!
//! ```text
//! dev-certs --dir DIR --host localhost
//! ```
//!
//! writes `DIR/ca.pem`, `DIR/cert.pem` and `DIR/key.pem` (owner-only).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// Command line of `dev-certs`.
#[derive(Debug, Parser)]
#[command(
    name = "dev-certs",
    about = "A throwaway CA and a server certificate for the bench"
)]
struct Args {
    /// Where the three PEM files go.
    #[arg(long)]
    dir: PathBuf,
    /// The server certificate's DNS name; repeatable.
    #[arg(long = "host", required = true)]
    hosts: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "airlock bench CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(args.hosts)?.signed_by(&key, &issuer)?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    std::fs::write(args.dir.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(args.dir.join("cert.pem"), cert.pem())?;
    let key_file = args.dir.join("key.pem");
    std::fs::write(&key_file, key.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
