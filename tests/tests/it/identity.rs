//! Who gets in: only requests with a valid Entra-shaped token for an allowed
//! tenant and audience reach Azure; everything else is a 401 (or 403 for
//! unresolvable groups) that says why, never echoing the token.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airlock_core::StaticTokenProvider;
use airlock_gateway::{Config, Gateway};
use airlock_sim::{DevIssuer, TokenSpec, TokenVersion};
use airlock_tests::{Harness, Options, assert_airlock_error, raw, rg_path};
use http::StatusCode;
use serde_json::json;

const API: &str = "api-version=2021-04-01";

#[tokio::test]
async fn no_token_gets_the_key_vault_challenge_on_every_host() {
    let h = Harness::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let anonymous = h.client(None);
    let expected = format!(
        "Bearer authorization=\"https://login.windows.net/{}\", resource=\"api://airlock\"",
        airlock_sim::TENANT_ID
    );
    // The Key Vault SDK's first request: no token, no body, on the vault's host.
    let probe = anonymous.get(&h.secret_url()).await.unwrap();
    let json = assert_airlock_error(&probe, StatusCode::UNAUTHORIZED, "AirlockUnauthenticated");
    assert_eq!(probe.header("www-authenticate"), Some(expected.as_str()));
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api://airlock"),
        "{json}"
    );
    // ARM answers the same way.
    let arm = anonymous
        .get(&format!("{}?{API}", rg_path()))
        .await
        .unwrap();
    assert_airlock_error(&arm, StatusCode::UNAUTHORIZED, "AirlockUnauthenticated");
    assert_eq!(arm.header("www-authenticate"), Some(expected.as_str()));
    // The SDK then retries with a token and gets the secret.
    let secret = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(secret.status, StatusCode::OK);
    assert_eq!(
        h.sim.requests().len(),
        1,
        "only the authenticated request reached Azure"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason_and_never_reach_azure() {
    let h = Harness::start().await;
    let expired = h.issuer.mint(
        &TokenSpec::agent()
            .not_before_offset_secs(-7200)
            .lifetime(Duration::from_secs(3600)),
    );
    let other_tenant = h
        .issuer
        .mint(&TokenSpec::agent().tenant_id("99999999-9999-9999-9999-999999999999"));
    let arm_audience = h
        .issuer
        .mint(&TokenSpec::agent().audience("https://management.azure.com"));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(h.issuer.current_kid());
    let claims = json!({"aud": "api://airlock", "iss": h.issuer.issuer(), "tid": airlock_sim::TENANT_ID, "oid": "x", "exp": 4_000_000_000u64});
    let foreign = h.issuer.sign_with_foreign_key(&header, &claims);
    let cases = [
        (expired, "the token has expired; request a new token"),
        (
            other_tenant,
            "tenant '99999999-9999-9999-9999-999999999999' is not allowed",
        ),
        (
            arm_audience,
            "the token's audience is not accepted; request a token for api://airlock",
        ),
        (foreign, "the token's signature is invalid"),
        ("not-a-jwt".to_owned(), "the token is not a well-formed JWT"),
    ];
    for (token, reason) in cases {
        let response = h
            .client(Some(&token))
            .get(&format!("{}?{API}", rg_path()))
            .await
            .unwrap();
        let json = assert_airlock_error(
            &response,
            StatusCode::UNAUTHORIZED,
            "AirlockUnauthenticated",
        );
        let message = json["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(reason), "{message}");
        let challenge = response.header("www-authenticate").unwrap();
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains(reason),
            "{challenge}"
        );
        let everything = format!(
            "{:?}{}",
            response.headers,
            String::from_utf8_lossy(&response.body)
        );
        assert!(!everything.contains(&token), "the token was echoed");
    }
    assert!(h.sim.requests().is_empty(), "nothing may reach Azure");
    h.shutdown().await;
}

#[tokio::test]
async fn v1_tokens_and_a_lower_case_scheme_are_accepted() {
    let h = Harness::start().await;
    let v1 = h
        .issuer
        .mint(&TokenSpec::approver().version(TokenVersion::V1));
    let response = h
        .client(Some(&v1))
        .get(&format!("{}?{API}", rg_path()))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    // RFC 7235 §2.1: the scheme is case-insensitive; the token is still verified.
    let answer = raw(
        &h,
        &format!("GET {}?{API} HTTP/1.1\r\nHost: localhost\r\nAuthorization: bearer {}\r\nConnection: close\r\n\r\n", rg_path(), h.agent_token),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(h.sim.requests().len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let h = Harness::start().await;
    let answer = raw(
        &h,
        &format!(
            "GET {}?{API} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {t}\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n",
            rg_path(),
            t = h.agent_token
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.contains("more than one Authorization header"),
        "{answer}"
    );
    assert!(h.sim.requests().is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn group_overage_without_a_resolver_is_a_403_not_an_empty_group_list() {
    let h = Harness::start().await;
    let overage = h.issuer.mint(
        &TokenSpec::agent()
            .groups(Vec::<String>::new())
            .claim("_claim_names", json!({"groups": "src1"}))
            .claim("_claim_sources", json!({"src1": {"endpoint": "https://graph.windows.net/t/users/o/getMemberObjects"}})),
    );
    let response = h
        .client(Some(&overage))
        .get(&format!("{}?{API}", rg_path()))
        .await
        .unwrap();
    let json = assert_airlock_error(&response, StatusCode::FORBIDDEN, "AirlockGroupsUnresolved");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[identity.groups] resolver"),
        "{json}"
    );
    assert!(h.sim.requests().is_empty());
    // The token was valid: the refusal is recorded against who sent it.
    let trail = h.audit_trail().await;
    let refused = trail
        .iter()
        .find(|e| e.event.error_code.as_deref() == Some("AirlockGroupsUnresolved"))
        .expect("the refusal is recorded");
    let principal = refused
        .event
        .principal
        .as_ref()
        .expect("with its principal");
    assert_eq!(principal.id, TokenSpec::agent().object_id);
    h.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_identity_provider_stops_the_start_with_its_url() {
    let issuer = DevIssuer::start(airlock_sim::TENANT_ID).await.unwrap();
    issuer.set_available(false);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, airlock_tests::ALLOW_ALL).unwrap();
    let text = format!(
        "[listen]\naddress = \"127.0.0.1:0\"\n[identity]\ntenants = [\"{}\"]\naudiences = [\"api://airlock\"]\ndiscovery = \"{}\"\n[policy]\nfile = \"{}\"\n[masking]\nkey_file = \"{}\"\n[approval]\nstore = \"memory\"\n[admin]\naddress = \"127.0.0.1:0\"\n[upstream]\nallow_insecure_http = true\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
        issuer.tenant_id(),
        issuer.issuer(),
        policy.display(),
        dir.path().join("masking.key").display()
    );
    let config = Config::parse(&text, "test", |_| None).unwrap();
    let error = Gateway::start_with(config, std::sync::Arc::new(StaticTokenProvider::new("t")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("identity: cannot load signing keys from"),
        "{error}"
    );
    assert!(error.contains(&issuer.issuer()), "{error}");
    issuer.shutdown().await;
}

/// `[[identity.provider]]`: a Kubernetes cluster's service-account issuer
/// beside the Entra tenant. Its tokens become `aks:<subject>` principals that
/// policy names; a token signed by the cluster but claiming Entra's issuer,
/// and a token from an issuer nobody configured, are refused with 401.
#[tokio::test]
async fn a_second_identity_provider_s_workloads_are_principals_of_their_own() {
    let cluster = DevIssuer::start("aks-cluster").await.unwrap();
    let builder = "system:serviceaccount:agents:builder";
    let h = Harness::start_with(Options {
        policy: Some(format!(
            "[[rule]]\nname = \"builder-reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n[rule.principals]\nids = [\"aks:{builder}\"]\n"
        )),
        extra_toml: format!(
            "[[identity.provider]]\nname = \"aks\"\nissuer = \"{}\"\n[identity.provider.claims]\ngroups = \"groups\"\n",
            cluster.issuer()
        ),
        ..Options::default()
    })
    .await;
    let service_account = |iss: &str, sub: &str| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(cluster.current_kid());
        cluster.sign(
            &header,
            &json!({"iss": iss, "aud": "api://airlock", "sub": sub, "iat": now, "nbf": now, "exp": now + 600}),
        )
    };
    let rg = format!("{}?{API}", rg_path());

    let read = h
        .client(Some(&service_account(&cluster.issuer(), builder)))
        .get(&rg)
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    let other = h
        .client(Some(&service_account(
            &cluster.issuer(),
            "system:serviceaccount:agents:other",
        )))
        .get(&rg)
        .await
        .unwrap();
    assert_airlock_error(&other, StatusCode::FORBIDDEN, "AirlockPolicyDenied");
    // Entra's agent still signs in (and policy gives it nothing here).
    let entra = h.agent.get(&rg).await.unwrap();
    assert_airlock_error(&entra, StatusCode::FORBIDDEN, "AirlockPolicyDenied");

    let forged = h
        .client(Some(&service_account(&h.issuer.issuer(), builder)))
        .get(&rg)
        .await
        .unwrap();
    assert_airlock_error(&forged, StatusCode::UNAUTHORIZED, "AirlockUnauthenticated");
    let unknown = h
        .client(Some(&service_account(
            "https://oidc.elsewhere.example/",
            builder,
        )))
        .get(&rg)
        .await
        .unwrap();
    let json = assert_airlock_error(&unknown, StatusCode::UNAUTHORIZED, "AirlockUnauthenticated");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'https://oidc.elsewhere.example/' is not one Airlock trusts"),
        "{json}"
    );
    assert_eq!(
        h.sim.requests().len(),
        1,
        "only the builder's read reached Azure"
    );
    let trail = h.audit_trail().await;
    let principal = trail[0].event.principal.as_ref().unwrap();
    assert_eq!(principal.id, format!("aks:{builder}"));
    assert_eq!(principal.kind, "application");
    h.shutdown().await;
    cluster.shutdown().await;
}
