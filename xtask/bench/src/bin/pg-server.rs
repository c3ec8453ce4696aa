//! `pg-server`: a throwaway PostgreSQL cluster for `cargo xtask bench`'s
//! replica targets, started the way the test suite starts one
//! (`airlock_store::testing::PostgresServer`: `initdb` into a temporary
//! directory, a free loopback port, scram passwords).
//!
//! ```text
//! pg-server
//! ```
//! prints `pg-server ready: postgres://airlock@127.0.0.1:PORT/DB password P`
//! once the database exists (a throwaway cluster's password), and stops
//! the cluster and removes its files on SIGTERM or SIGINT (the bench stops
//! its children with SIGTERM first).

use airlock_store::testing::PostgresServer;
use anyhow::anyhow;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let server = PostgresServer::start().map_err(|e| anyhow!(e))?;
    let url = server
        .create_database("bench")
        .await
        .map_err(|e| anyhow!(e))?;
    println!(
        "pg-server ready: {url} password {}",
        PostgresServer::PASSWORD
    );
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Dropping the server stops the cluster; its directory goes with it.
    drop(server);
    Ok(())
}
