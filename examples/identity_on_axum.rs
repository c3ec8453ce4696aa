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
//! and an `HttpClient` with TLS (the gateway's `OutboundClient`, or your own).

use std::sync::Arc;

use airlock_core::Principal;
use airlock_identity::{IdentityLayer, JwtValidator, KeySource};
use airlock_sim::{DevIssuer, LoopbackClient, TENANT_ID, TokenSpec};
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
    let validator = JwtValidator::builder()
        .tenant(TENANT_ID)
        .audience("api://airlock")
        .keys(KeySource::Discovery(issuer.issuer()))
        .http_client(Arc::new(LoopbackClient::new()))
        .build()
        .await?;

    let app = Router::new()
        .route("/whoami", get(whoami))
        .layer(IdentityLayer::new(validator));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/whoami", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let client = airlock_gateway::demo::AgentClient::new(&url, None)?;
    let anonymous = client.get(&url).await?;
    println!(
        "without a token: {} {}",
        anonymous.status,
        String::from_utf8_lossy(&anonymous.body)
    );
    assert_eq!(anonymous.status, 401);

    let agent = client.with_token(issuer.mint(&TokenSpec::agent()));
    let me = agent.get(&url).await?;
    println!(
        "as the agent:    {} {}",
        me.status,
        String::from_utf8_lossy(&me.body)
    );
    assert_eq!(me.json()["name"], "build-agent");

    server.abort();
    issuer.shutdown().await;
    Ok(())
}
