//! Put Airlock's `IdentityLayer` on an ordinary axum `Router` and read the
//! caller's `Principal` in a handler.
//!
//! A development issuer stands in for Entra ID, so this runs anywhere:
//!
//! ```text
//! cargo run -p airlock-examples --example identity_on_axum
//! ```
//!
//! Against Entra ID, build the validator with your tenant, your API's app ID
//! URI and `KeySource::Discovery("https://login.microsoftonline.com/{tenant}/v2.0")`,
//! and the crate's HTTPS client (`airlock_identity::https_client`), or your own
//! `airlock_core::HttpClient`.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::{HttpClient, Principal};
use airlock_identity::http::{ClientBuilder, HttpsClient, TrustRoots};
use airlock_identity::{IdentityLayer, JwtValidator, KeySource};
use airlock_sim::{DevIssuer, TENANT_ID, TokenSpec};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

/// The handler sees only verified callers.
async fn whoami(Extension(principal): Extension<Principal>) -> Json<Value> {
    Json(json!({
        "id": principal.id(),
        "kind": principal.kind().as_str(),
        "name": principal.display_name(),
        "groups": principal.groups(),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let issuer = DevIssuer::start(TENANT_ID).await?;
    // The development issuer speaks plain HTTP on loopback; against Entra ID
    // leave `http_client` out and the default HTTPS client is used.
    let client = Arc::new(HttpsClient::new(
        ClientBuilder::new(TrustRoots::none())
            .allow_http(true)
            .build()?,
        Duration::from_secs(10),
    ));
    let validator = JwtValidator::builder()
        .tenant(TENANT_ID)
        .audience("api://airlock")
        .keys(KeySource::Discovery(issuer.issuer()))
        .http_client(client.clone())
        .build()
        .await?;

    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(IdentityLayer::new(validator));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/whoami", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let get = |token: Option<String>| {
        let mut request = http::Request::get(&url);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(bytes::Bytes::new());
        let client = client.clone();
        async move { anyhow::Ok(client.send(request?).await?) }
    };
    let anonymous = get(None).await?;
    println!(
        "without a token: {} {}",
        anonymous.status(),
        String::from_utf8_lossy(anonymous.body())
    );
    assert_eq!(anonymous.status(), 401);

    let me = get(Some(issuer.mint(&TokenSpec::agent()))).await?;
    println!(
        "as the agent:    {} {}",
        me.status(),
        String::from_utf8_lossy(me.body())
    );
    let me: Value = serde_json::from_slice(me.body())?;
    assert_eq!(me["name"], "build-agent");

    server.abort();
    issuer.shutdown().await;
    Ok(())
}
