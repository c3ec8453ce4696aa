//! The development token issuer: discovery, JWKS, minted tokens, rotation, outages.

use airlock_sim::{AGENTS_GROUP, DevIssuer, IssuerHandle, TENANT_ID, TokenSpec, TokenVersion};
use http::{Method, StatusCode};
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header};
use serde_json::{Value, json};

use crate::client::Http;

async fn jwks(http: &Http, issuer: &IssuerHandle) -> JwkSet {
    let answer = http.send(Method::GET, &issuer.jwks_uri(), &[], None).await;
    assert_eq!(answer.status, StatusCode::OK);
    serde_json::from_slice(&answer.body).unwrap()
}

/// Verifies `token` against the published JWKS, as a gateway would.
fn verify(keys: &JwkSet, issuer: &str, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let kid = decode_header(token)?.kid.unwrap_or_default();
    let jwk = keys
        .find(&kid)
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["api://airlock"]);
    validation.set_issuer(&[issuer]);
    Ok(decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[tokio::test]
async fn discovery_jwks_and_minted_tokens() {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    let http = Http::new();
    let port = issuer.addr().port();
    assert_eq!(
        issuer.issuer(),
        format!("http://127.0.0.1:{port}/{TENANT_ID}/v2.0")
    );
    assert_eq!(
        issuer.jwks_uri(),
        format!("http://127.0.0.1:{port}/{TENANT_ID}/discovery/v2.0/keys")
    );
    assert_eq!(issuer.tenant_id(), TENANT_ID);

    let discovery = http
        .send(Method::GET, &issuer.discovery_url(), &[], None)
        .await;
    assert_eq!(discovery.status, StatusCode::OK);
    let document = discovery.json();
    assert_eq!(document["issuer"], issuer.issuer());
    assert_eq!(document["jwks_uri"], issuer.jwks_uri());
    assert_eq!(document["token_endpoint"], issuer.token_endpoint());
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    for required in [
        "authorization_endpoint",
        "response_types_supported",
        "subject_types_supported",
    ] {
        assert!(!document[required].is_null(), "{required}");
    }

    let keys = jwks(&http, &issuer).await;
    assert_eq!(keys.keys.len(), 1);
    let key = &keys.keys[0];
    assert_eq!(
        key.common.key_id.as_deref(),
        Some(issuer.current_kid().as_str())
    );
    assert_eq!(key.common.public_key_use, Some(PublicKeyUse::Signature));
    let raw: Value = serde_json::to_value(key).unwrap();
    assert_eq!(
        (raw["kty"].as_str(), raw["alg"].as_str()),
        (Some("RSA"), Some("RS256"))
    );
    assert_eq!(raw["e"], "AQAB");
    assert!(raw["n"].as_str().unwrap().len() > 300, "a 2048-bit modulus");
    assert_eq!(issuer.jwks_requests(), 1);

    let token = issuer.mint(&TokenSpec::agent());
    let header = decode_header(&token).unwrap();
    assert_eq!(
        (header.alg, header.typ.as_deref()),
        (Algorithm::RS256, Some("JWT"))
    );
    let claims = verify(&keys, &issuer.issuer(), &token).unwrap();
    assert_eq!(claims["oid"], "00000000-0000-0000-0000-0000000000a1");
    assert_eq!(claims["tid"], TENANT_ID);
    assert_eq!(claims["groups"], json!([AGENTS_GROUP]));
    assert_eq!(claims["idtyp"], "app");

    let v1 = issuer.mint(&TokenSpec::approver().version(TokenVersion::V1));
    let claims = verify(&keys, &format!("https://sts.windows.net/{TENANT_ID}/"), &v1).unwrap();
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["scp"], "user_impersonation");

    // Tokens a validator must refuse.
    let expired = issuer.mint(&TokenSpec::agent().not_before_offset_secs(-7200));
    assert!(verify(&keys, &issuer.issuer(), &expired).is_err());
    let wrong_audience = issuer.mint(&TokenSpec::agent().audience("https://management.azure.com"));
    assert!(verify(&keys, &issuer.issuer(), &wrong_audience).is_err());
    let claims = json!({"aud": "api://airlock", "iss": issuer.issuer(), "exp": 4_000_000_000u64});
    let forged = issuer.sign_with_foreign_key(&Header::new(Algorithm::RS256), &claims);
    assert_eq!(
        decode_header(&forged).unwrap().kid,
        Some(issuer.current_kid())
    );
    assert!(
        verify(&keys, &issuer.issuer(), &forged).is_err(),
        "the signature must give it away"
    );
    let without_kid = issuer.sign(&Header::new(Algorithm::RS256), &claims);
    assert_eq!(decode_header(&without_kid).unwrap().kid, None);
    // The public key PEM verifies what the current key signed.
    let pem_key = DecodingKey::from_rsa_pem(issuer.public_key_pem().as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["api://airlock"]);
    assert!(decode::<Value>(&without_kid, &pem_key, &validation).is_ok());
    issuer.shutdown().await;
}

#[tokio::test]
async fn rotation_outage_and_token_endpoint() {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    let http = Http::new();
    let old_kid = issuer.current_kid();
    let old_token = issuer.mint(&TokenSpec::agent());

    let new_kid = issuer.rotate_key();
    assert_ne!(new_kid, old_kid);
    let keys = jwks(&http, &issuer).await;
    let kids: Vec<&str> = keys
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.as_deref())
        .collect();
    assert_eq!(kids, [old_kid.as_str(), new_kid.as_str()]);
    let new_token = issuer.mint(&TokenSpec::agent());
    assert_eq!(
        decode_header(&new_token).unwrap().kid,
        Some(new_kid.clone())
    );
    assert!(verify(&keys, &issuer.issuer(), &old_token).is_ok());
    assert!(verify(&keys, &issuer.issuer(), &new_token).is_ok());

    issuer.retire_old_keys();
    let keys = jwks(&http, &issuer).await;
    assert_eq!(keys.keys.len(), 1);
    assert!(verify(&keys, &issuer.issuer(), &old_token).is_err());
    assert_eq!(issuer.jwks_requests(), 2);

    issuer.set_available(false);
    for url in [issuer.discovery_url(), issuer.jwks_uri()] {
        assert_eq!(
            http.send(Method::GET, &url, &[], None).await.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{url}"
        );
    }
    assert_eq!(issuer.jwks_requests(), 3);
    issuer.set_available(true);
    assert_eq!(
        http.send(Method::GET, &issuer.discovery_url(), &[], None)
            .await
            .status,
        StatusCode::OK
    );

    // Client credentials, as the gateway's own credential would ask.
    issuer.register_client("gateway-app", "s");
    let form = "grant_type=client_credentials&client_id=gateway-app&client_secret=s&scope=https%3A%2F%2Fmanagement.azure.com%2F.default";
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let answer = http
        .send(Method::POST, &issuer.token_endpoint(), &headers, Some(form))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let json = answer.json();
    assert_eq!(json["token_type"], "Bearer");
    let token = json["access_token"].as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .unwrap()
        .claims;
    assert_eq!(claims["aud"], "https://management.azure.com");
    assert_eq!(claims["azp"], "gateway-app");
    let no_secret = "grant_type=client_credentials&client_id=gateway-app&scope=x/.default";
    assert_eq!(
        http.send(
            Method::POST,
            &issuer.token_endpoint(),
            &headers,
            Some(no_secret)
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );

    let other_tenant = issuer.jwks_uri().replace(TENANT_ID, "someone-else");
    assert_eq!(
        http.send(Method::GET, &other_tenant, &[], None)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    issuer.shutdown().await;
}

/// Client credentials as Entra answers them, and the simulated Azure
/// checking the tokens as ARM and Key Vault do.
#[tokio::test]
async fn client_credentials_and_azure_checking_the_tokens() {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_client("gateway-app", "right-secret");
    let sim = airlock_sim::SimAzure::builder()
        .trust_issuer(issuer.verifier())
        .start()
        .await
        .unwrap();
    let http = Http::new();
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let ask = |client: &str, secret: &str, audience: &str| {
        format!(
            "grant_type=client_credentials&client_id={client}&client_secret={secret}&scope={}%2F.default",
            audience.replace(':', "%3A").replace('/', "%2F")
        )
    };
    let wrong = http
        .send(
            Method::POST,
            &issuer.token_endpoint(),
            &headers,
            Some(&ask("gateway-app", "nope", "https://management.azure.com")),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json()["error"], "invalid_client");
    assert!(
        wrong.json()["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
    assert!(!String::from_utf8_lossy(&wrong.body).contains("right-secret"));
    let unknown = http
        .send(
            Method::POST,
            &issuer.token_endpoint(),
            &headers,
            Some(&ask("stranger", "x", "https://management.azure.com")),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json()["error"], "unauthorized_client");
    assert_eq!(issuer.tokens_issued(), 0);

    let token_for = async |audience: &str| {
        let answer = http
            .send(
                Method::POST,
                &issuer.token_endpoint(),
                &headers,
                Some(&ask("gateway-app", "right-secret", audience)),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer.json()["access_token"].as_str().unwrap().to_owned()
    };
    let arm_token = token_for("https://management.azure.com").await;
    let vault_token = token_for("https://vault.azure.net").await;
    assert_eq!(issuer.tokens_issued(), 2);
    let http = &http;
    let arm_url = format!("{}/subscriptions?api-version=2022-12-01", sim.arm_url());
    let arm = async |token: &str| {
        let auth = format!("Bearer {token}");
        http.send(
            Method::GET,
            &arm_url,
            &[("authorization", auth.as_str())],
            None,
        )
        .await
    };
    assert_eq!(arm(&arm_token).await.status, StatusCode::OK);
    let wrong_audience = arm(&vault_token).await;
    assert_eq!(wrong_audience.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_audience.json()["error"]["code"],
        "InvalidAuthenticationTokenAudience"
    );
    let expired = issuer.mint(
        &TokenSpec::agent()
            .audience("https://management.azure.com")
            .not_before_offset_secs(-7200)
            .lifetime(std::time::Duration::from_secs(3600)),
    );
    let answer = arm(&expired).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"]["code"], "ExpiredAuthenticationToken");
    let forged = issuer.sign_with_foreign_key(
        &Header::new(Algorithm::RS256),
        &json!({"aud": "https://management.azure.com"}),
    );
    assert_eq!(
        arm(&forged).await.json()["error"]["code"],
        "InvalidAuthenticationToken"
    );
    sim.shutdown().await;
    issuer.shutdown().await;
}
