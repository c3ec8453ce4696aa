//! `airlock ca init`: the CA forward-proxy mode mints its certificates from.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `proxy-ca.pem` (the certificate clients trust) and
/// `proxy-ca-key.pem` (owner-only) into `dir`; never overwrites either.
///
/// # Errors
///
/// A file exists already, or cannot be written.
pub fn init(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = airlock_gateway::generate_ca(name)?;
    let cert_file = dir.join("proxy-ca.pem");
    let key_file = dir.join("proxy-ca-key.pem");
    for file in [&cert_file, &key_file] {
        if file.exists() {
            anyhow::bail!(
                "{} exists already; move it away or choose another --dir (a new CA must be trusted by every client again)",
                file.display()
            );
        }
    }
    write_new(&key_file, &key, 0o600)?;
    write_new(&cert_file, &cert, 0o644)?;
    Ok((cert_file, key_file))
}

fn write_new(file: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut out = options
        .open(file)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", file.display()))?;
    out.write_all(text.as_bytes())?;
    Ok(())
}
