//! Debian packages the project's tools need, installed with `apt-get` when
//! missing (as root, or through sudo).

use anyhow::Context as _;
use xshell::{Shell, cmd};

/// Installs `packages` (Debian package names) with `apt-get`; nothing when
/// `packages` is empty.
pub(crate) fn install(sh: &Shell, packages: &[&str]) -> anyhow::Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    println!(
        "not installed: {}; installing Debian's packages with apt-get (a minute or two)",
        packages.join(", ")
    );
    let root = cmd!(sh, "id -u").read().is_ok_and(|id| id.trim() == "0");
    let (program, prefix): (&str, &[&str]) = if root {
        ("apt-get", &[])
    } else {
        ("sudo", &["apt-get"])
    };
    let by_hand = format!(
        "install them by hand (apt-get install {})",
        packages.join(" ")
    );
    let _env = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "{program} {prefix...} update -qq")
        .run()
        .with_context(|| format!("apt-get update failed; {by_hand}"))?;
    cmd!(
        sh,
        "{program} {prefix...} install -y -qq --no-install-recommends {packages...}"
    )
    .run()
    .with_context(|| format!("installing failed; {by_hand}"))?;
    Ok(())
}

/// Where `program` is: on `PATH`, or in `/usr/sbin` (where Debian puts
/// nginx, outside a normal user's `PATH`).
pub(crate) fn find_program(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}
