//! What every source's tests share.

use std::sync::Arc;
use std::time::Duration;

/// The gateway's HTTP client, allowed plain HTTP: the simulated endpoints
/// speak it on loopback.
pub(crate) fn http() -> Arc<dyn airlock_core::HttpClient> {
    let pooled = airlock_http::ClientBuilder::new(airlock_http::TrustRoots::system())
        .allow_http(true)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    Arc::new(airlock_http::HttpsClient::new(
        pooled,
        Duration::from_secs(10),
    ))
}
