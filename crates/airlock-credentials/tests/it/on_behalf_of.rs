//! The on-behalf-of exchange against the simulated Entra token endpoint: a
//! user's token (and an agent's acting for a user) for the gateway becomes
//! the same caller's token for ARM, cached per caller token and audience;
//! Entra's `invalid_grant` for expired, app-only or foreign tokens is passed
//! on without the caller's token or the secret.

use std::time::Duration;

use airlock_credentials::OnBehalfOf;
use airlock_sim::{DevIssuer, IssuerHandle, TENANT_ID, TokenSpec};

use crate::support::http;

const ARM: &str = "https://management.azure.com";
const VAULT: &str = "https://vault.azure.net";
const GATEWAY_APP: &str = "gateway-app";
const GATEWAY_URI: &str = "api://airlock";
const SECRET: &str = "obo-s3cret+&=";

async fn issuer() -> IssuerHandle {
    let issuer = DevIssuer::start(TENANT_ID).await.unwrap();
    issuer.register_on_behalf_of_client(GATEWAY_APP, SECRET, GATEWAY_URI);
    issuer
}

fn exchange(issuer: &IssuerHandle, secret: &str) -> OnBehalfOf {
    let authority = format!("http://{}", issuer.addr());
    OnBehalfOf::new(http(), &authority, TENANT_ID, GATEWAY_APP, secret)
}

#[tokio::test]
async fn the_callers_token_becomes_theirs_for_azure_and_is_reused_until_it_expires() {
    let issuer = issuer().await;
    let obo = exchange(&issuer, SECRET);
    let alice = TokenSpec::approver();
    let caller = issuer.mint(&alice);

    let for_arm = obo.token(&caller, ARM).await.unwrap();
    let claims = issuer.verifier().verify(for_arm.secret(), ARM).unwrap();
    assert_eq!(claims["oid"], alice.object_id, "still Alice, for ARM");
    assert_eq!(claims["azp"], GATEWAY_APP);
    let issued = issuer.tokens_issued();
    // Reused for the same caller token and audience; a new audience, a new exchange.
    assert_eq!(
        obo.token(&caller, ARM).await.unwrap().secret(),
        for_arm.secret()
    );
    assert_eq!(issuer.tokens_issued(), issued);
    assert!(
        issuer
            .verifier()
            .verify(obo.token(&caller, VAULT).await.unwrap().secret(), VAULT)
            .is_ok()
    );
    assert_eq!(issuer.tokens_issued(), issued + 1);
    assert_eq!(obo.cached(), 2);

    // An agent acting for Alice stays that agent, acting for her.
    let agent_for_alice = issuer.mint(&TokenSpec::agent_for_user(alice, "bot-app").blueprint("bp"));
    let claims = issuer
        .verifier()
        .verify(
            obo.token(&agent_for_alice, ARM).await.unwrap().secret(),
            ARM,
        )
        .unwrap();
    assert_eq!(
        (claims["azp"].as_str(), claims["xms_act_fct"].as_str()),
        (Some("bot-app"), Some("11"))
    );

    // A token about to expire is not handed out: a short-lived answer is
    // exchanged again on the next request.
    issuer.set_app_token_lifetime(Duration::from_secs(30));
    let other =
        issuer.mint(&TokenSpec::approver().object_id("00000000-0000-0000-0000-0000000000b9"));
    let first = obo.token(&other, ARM).await.unwrap();
    let second = obo.token(&other, ARM).await.unwrap();
    assert_ne!(
        first.secret(),
        second.secret(),
        "expiring within the margin: exchanged again"
    );
    issuer.shutdown().await;
}

/// Azure refuses an exchanged token (401): it is forgotten and exchanged
/// anew, unless it is younger than `keep_refused_for` (an Azure that
/// refuses every token then costs one exchange per period, not per request).
#[tokio::test]
async fn a_token_azure_refuses_is_exchanged_anew_unless_just_had() {
    use airlock_core::{CallerToken, TokenExchange};
    let issuer = issuer().await;
    let caller = CallerToken::new(&issuer.mint(&TokenSpec::approver()));
    let fresh = exchange(&issuer, SECRET);
    let first = fresh.exchange(&caller, ARM).await.unwrap();
    assert!(!fresh.rejected(&caller, ARM, &first), "just had: kept");
    assert_eq!(
        fresh.exchange(&caller, ARM).await.unwrap().secret(),
        first.secret()
    );

    let obo = exchange(&issuer, SECRET).keep_refused_for(Duration::ZERO);
    let first = obo.exchange(&caller, ARM).await.unwrap();
    let issued = issuer.tokens_issued();
    assert!(obo.rejected(&caller, ARM, &first));
    let second = obo.exchange(&caller, ARM).await.unwrap();
    assert_eq!(issuer.tokens_issued(), issued + 1, "exchanged anew");
    assert!(issuer.verifier().verify(second.secret(), ARM).is_ok());
    // A caller still holding the first learns that the next differs.
    assert!(obo.rejected(&caller, ARM, &first));
    assert_eq!(
        obo.exchange(&caller, ARM).await.unwrap().secret(),
        second.secret()
    );
    issuer.shutdown().await;
}

#[tokio::test]
async fn entras_refusals_name_the_reason_and_never_the_tokens_or_the_secret() {
    let issuer = issuer().await;
    let obo = exchange(&issuer, SECRET);
    let cases = [
        (
            issuer.mint(
                &TokenSpec::approver()
                    .not_before_offset_secs(-7200)
                    .lifetime(Duration::from_secs(3600)),
            ),
            "AADSTS500133",
        ),
        (
            issuer.mint(&TokenSpec::approver().audience("api://someone-else")),
            "Assertion audience does not match",
        ),
        (
            issuer.mint(&TokenSpec::agent()),
            "not a delegated (user) token",
        ),
    ];
    for (caller, reason) in cases {
        let error = obo.token(&caller, ARM).await.unwrap_err();
        assert!(!error.transient, "{error}");
        assert!(
            error.message.contains("invalid_grant") && error.message.contains(reason),
            "{error}"
        );
        assert!(
            !error.message.contains(&caller) && !error.message.contains(SECRET),
            "{error}"
        );
    }
    let wrong_secret = exchange(&issuer, "not-the-secret")
        .token(&issuer.mint(&TokenSpec::approver()), ARM)
        .await
        .unwrap_err();
    assert!(
        wrong_secret.message.contains("invalid_client"),
        "{wrong_secret}"
    );
    assert_eq!(obo.cached(), 0, "refusals are not cached");
    issuer.set_available(false);
    let down = obo
        .token(&issuer.mint(&TokenSpec::approver()), ARM)
        .await
        .unwrap_err();
    assert!(down.transient, "{down}");
    issuer.shutdown().await;
}
