//! A throwaway PostgreSQL server for tests (feature `testing`): a new
//! cluster in a temporary directory (`initdb`), started on a free loopback
//! port, with password authentication, optionally TLS, stopped and deleted
//! when dropped. It can be stopped and started again, to test what the
//! gateway does while its database is gone.
//!
//! PostgreSQL's server binaries must be installed (Debian's `postgresql`
//! package; `cargo xtask ci` installs it). They are found through
//! `AIRLOCK_PG_BIN`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin`, else `PATH`. PostgreSQL refuses to run as
//! root: as root, the server runs as user `postgres` (the package creates
//! it), through `runuser`.
//!
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use airlock_store::testing::PostgresServer;
//! use airlock_store::{PostgresOptions, PostgresStore};
//!
//! let server = PostgresServer::start().unwrap();
//! let url = server.create_database("airlock").await.unwrap();
//! let store = PostgresStore::connect(
//!     PostgresOptions::new(url).password(PostgresServer::PASSWORD),
//! )
//! .await
//! .unwrap();
//! # drop(store);
//! # });
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use tempfile::TempDir;

/// A PostgreSQL server of its own, for one test.
#[derive(Debug)]
pub struct PostgresServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// The user the server runs as, when the test runs as root.
    run_as: Option<String>,
    /// The CA that signed the server's certificate, when TLS is on.
    ca_pem: Option<String>,
}

/// How the server's TLS is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tls {
    Off,
    On,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl PostgresServer {
    /// The superuser the cluster is created with.
    pub const USER: &'static str = "airlock";
    /// Its password (authentication is `scram-sha-256`, even on loopback,
    /// so the password path is the one tested).
    pub const PASSWORD: &'static str = "test-password-not-secret";

    /// A new cluster, started, without TLS.
    ///
    /// # Errors
    ///
    /// PostgreSQL is not installed, or `initdb` or the server failed (the
    /// message includes the server's log).
    pub fn start() -> Result<Self, String> {
        Self::create(Tls::Off)
    }

    /// A new cluster, started with TLS on (a certificate for `localhost`
    /// and `127.0.0.1`, signed by a new CA: [`ca_pem`](Self::ca_pem)).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_with_tls() -> Result<Self, String> {
        Self::create(Tls::On)
    }

    fn create(tls: Tls) -> Result<Self, String> {
        let bin = binaries()?;
        let dir = tempfile::tempdir().map_err(|e| format!("cannot create a directory: {e}"))?;
        let run_as = running_as_root().then(|| "postgres".to_owned());
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, Self::PASSWORD).map_err(|e| e.to_string())?;
        let mut server = Self {
            port: 0,
            dir,
            bin,
            run_as,
            ca_pem: None,
        };
        if let Some(user) = &server.run_as {
            chown_to(server.dir.path(), user)?;
            chown_to(&password_file, user)?;
        }
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                Self::USER,
                "--auth=scram-sha-256",
                "--pwfile",
                path_str(&password_file)?,
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let mut settings = vec![
            "listen_addresses = '127.0.0.1'".to_owned(),
            format!(
                "unix_socket_directories = '{}'",
                path_str(server.dir.path())?
            ),
            // A test server: durability is not what is tested.
            "fsync = off".to_owned(),
            "synchronous_commit = off".to_owned(),
            "full_page_writes = off".to_owned(),
            "max_connections = 200".to_owned(),
        ];
        if tls == Tls::On {
            server.ca_pem = Some(server.write_certificate()?);
            settings.extend([
                "ssl = on".to_owned(),
                "ssl_cert_file = 'server.crt'".to_owned(),
                "ssl_key_file = 'server.key'".to_owned(),
            ]);
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| e.to_string())?;
        text.push('\n');
        text.push_str(&settings.join("\n"));
        text.push('\n');
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        // A free port, then the server on it (another process may take the
        // port in between: try a few).
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port()?;
            match server.start_again() {
                Ok(()) => return Ok(server),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port.
    ///
    /// # Errors
    ///
    /// The server did not start (the message includes its log).
    pub fn start_again(&self) -> Result<(), String> {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let port = format!("-p {}", self.port);
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &port,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
        .map_err(|error| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{error}\nserver log:\n{log}")
        })
    }

    /// Stops the server (fast shutdown: connections are cut).
    ///
    /// # Errors
    ///
    /// `pg_ctl stop` failed.
    pub fn stop(&self) -> Result<(), String> {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", path_str(&data)?, "-m", "fast", "-w", "stop"],
        )
    }

    /// Creates a new database and answers its URL (without the password).
    ///
    /// # Errors
    ///
    /// The server cannot be reached.
    pub async fn create_database(&self, prefix: &str) -> Result<String, String> {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{}_{n}", std::process::id());
        let (client, connection) =
            tokio_postgres::connect(&self.url_with_password("postgres"), tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to the test server: {e}"))?;
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        drop(client);
        let _ = driver.await;
        Ok(self.url(&name))
    }

    /// The URL of `database`, without the password.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}",
            Self::USER,
            self.port
        )
    }

    /// The URL of `database`, with the password (for tools that take only a URL).
    pub fn url_with_password(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{database}",
            Self::USER,
            Self::PASSWORD,
            self.port
        )
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM of the CA that signed the server's certificate (TLS servers only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes `server.crt` and `server.key` into the data directory and
    /// answers the CA's PEM.
    fn write_certificate(&self) -> Result<String, String> {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let failed = |e: rcgen::Error| format!("cannot make a test certificate: {e}");
        let ca_key = KeyPair::generate().map_err(failed)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(failed)?;
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(failed)?;
        let cert = params.signed_by(&key, &issuer).map_err(failed)?;
        let data = self.data();
        let key_file = data.join("server.key");
        std::fs::write(data.join("server.crt"), cert.pem()).map_err(|e| e.to_string())?;
        std::fs::write(&key_file, key.serialize_pem()).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        if let Some(user) = &self.run_as {
            chown_to(&data.join("server.crt"), user)?;
            chown_to(&key_file, user)?;
        }
        Ok(ca_cert.pem())
    }

    /// Runs one of PostgreSQL's programs (as the server's user under root).
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let program_path = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program_path);
                command
            }
            None => Command::new(&program_path),
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", program_path.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.data()) {
            let _ = self.run("pg_ctl", &["-D", data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

/// Where PostgreSQL's server programs are.
fn binaries() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("AIRLOCK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists());
    on_path.ok_or_else(|| {
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: install them \
         (Debian: apt-get install postgresql; `cargo xtask ci` does), or set AIRLOCK_PG_BIN \
         to the directory holding them"
            .to_owned()
    })
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Gives `path` to `user` (the server's user, when tests run as root).
fn chown_to(path: &Path, user: &str) -> Result<(), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "user {user} does not exist: PostgreSQL refuses to run as root, and its \
                     Debian package creates {user} (apt-get install postgresql)"
                )
            })
    };
    std::os::unix::fs::chown(path, Some(id("-u")?), Some(id("-g")?))
        .map_err(|e| format!("cannot give {} to {user}: {e}", path.display()))
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|e| e.to_string())
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}
