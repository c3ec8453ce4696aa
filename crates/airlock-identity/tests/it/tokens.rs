//! Valid tokens, v1 and v2, of each kind of principal: what the gateway
//! learns about the caller.

use std::time::Duration;

use airlock_core::PrincipalKind;
use airlock_sim::{AGENTS_GROUP, APPROVERS_GROUP, TokenSpec, TokenVersion};
use serde_json::json;

use crate::support::{TENANT, accepted, claims_of, rs256, start};

const AGENT_OID: &str = "00000000-0000-0000-0000-0000000000a1";
const AGENT_CLIENT: &str = "00000000-0000-0000-0000-0000000000a2";
const ALICE_OID: &str = "00000000-0000-0000-0000-0000000000b1";
const ALICE_CLIENT: &str = "00000000-0000-0000-0000-0000000000b2";
const CI_OID: &str = "00000000-0000-0000-0000-0000000000d1";
const CI_CLIENT: &str = "00000000-0000-0000-0000-0000000000d2";

#[tokio::test]
async fn v2_managed_identity_token() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent());

    let agent = accepted(&validator, &token).await;

    assert_eq!(agent.id(), AGENT_OID);
    assert_eq!(agent.tenant_id(), TENANT);
    assert_eq!(agent.app_id(), Some(AGENT_CLIENT));
    assert_eq!(agent.kind(), PrincipalKind::ManagedIdentity);
    assert_eq!(agent.display_name(), Some("build-agent"));
    assert_eq!(agent.groups(), [AGENTS_GROUP]);
    assert!(agent.roles().is_empty());
    assert!(agent.in_group(AGENTS_GROUP));
    // The v2 issuer is the one discovery found, not a login.microsoftonline.com URL.
    assert_eq!(agent.raw_claims()["iss"], json!(issuer.issuer()));
    assert_eq!(agent.raw_claims()["ver"], "2.0");
    assert_eq!(
        agent.to_string(),
        format!("build-agent (managed_identity {AGENT_OID})")
    );
}

#[tokio::test]
async fn v1_managed_identity_token() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent().version(TokenVersion::V1));

    let agent = accepted(&validator, &token).await;

    assert_eq!(
        agent.raw_claims()["iss"],
        format!("https://sts.windows.net/{TENANT}/")
    );
    assert_eq!(agent.raw_claims()["ver"], "1.0");
    assert_eq!(agent.id(), AGENT_OID);
    assert_eq!(agent.tenant_id(), TENANT);
    // v1 names the client `appid`, not `azp`.
    assert_eq!(agent.app_id(), Some(AGENT_CLIENT));
    assert_eq!(agent.kind(), PrincipalKind::ManagedIdentity);
    assert_eq!(agent.display_name(), Some("build-agent"));
    assert_eq!(agent.groups(), [AGENTS_GROUP]);
}

#[tokio::test]
async fn v2_application_token_with_app_roles() {
    let (issuer, validator) = start().await;
    let spec =
        TokenSpec::application("ci-pipeline", CI_OID, CI_CLIENT).roles(["Deployer", "Reader"]);

    let app = accepted(&validator, &issuer.mint(&spec)).await;

    assert_eq!(app.id(), CI_OID);
    assert_eq!(app.tenant_id(), TENANT);
    assert_eq!(app.app_id(), Some(CI_CLIENT));
    assert_eq!(app.kind(), PrincipalKind::Application);
    assert_eq!(app.roles(), ["Deployer", "Reader"]);
    assert!(app.has_role("Deployer"));
    assert!(app.groups().is_empty());
    // An app-only token carries no name claim.
    assert_eq!(app.display_name(), None);
}

#[tokio::test]
async fn v1_application_token() {
    let (issuer, validator) = start().await;
    let spec = TokenSpec::application("ci-pipeline", CI_OID, CI_CLIENT)
        .version(TokenVersion::V1)
        .roles(["Reader"]);

    let app = accepted(&validator, &issuer.mint(&spec)).await;

    assert_eq!(
        (app.id(), app.tenant_id(), app.app_id()),
        (CI_OID, TENANT, Some(CI_CLIENT))
    );
    assert_eq!(app.kind(), PrincipalKind::Application);
    assert_eq!(app.roles(), ["Reader"]);
}

#[tokio::test]
async fn v2_user_token() {
    let (issuer, validator) = start().await;

    let alice = accepted(&validator, &issuer.mint(&TokenSpec::approver())).await;

    assert_eq!(alice.id(), ALICE_OID, "the oid, not the pairwise sub");
    assert_eq!(alice.tenant_id(), TENANT);
    assert_eq!(alice.app_id(), Some(ALICE_CLIENT));
    assert_eq!(alice.kind(), PrincipalKind::User);
    assert_eq!(alice.display_name(), Some("Alice Approver"));
    assert_eq!(alice.groups(), [APPROVERS_GROUP]);
    assert!(alice.roles().is_empty());
    assert_eq!(alice.raw_claims()["scp"], "user_impersonation");
    assert_eq!(
        alice.raw_claims()["preferred_username"],
        "alice@contoso.example"
    );
}

#[tokio::test]
async fn v1_user_token() {
    let (issuer, validator) = start().await;
    let spec = TokenSpec::approver()
        .version(TokenVersion::V1)
        .roles(["Approver"]);

    let alice = accepted(&validator, &issuer.mint(&spec)).await;

    assert_eq!(
        (alice.id(), alice.tenant_id(), alice.app_id()),
        (ALICE_OID, TENANT, Some(ALICE_CLIENT))
    );
    assert_eq!(alice.kind(), PrincipalKind::User);
    assert_eq!(alice.display_name(), Some("Alice Approver"));
    assert_eq!(alice.groups(), [APPROVERS_GROUP]);
    assert_eq!(alice.roles(), ["Approver"]);
    assert_eq!(alice.raw_claims()["upn"], "alice@contoso.example");
}

/// RFC 9068 access tokens say `typ: at+jwt`.
#[tokio::test]
async fn at_jwt_header_type_is_accepted() {
    let (issuer, validator) = start().await;
    let claims = claims_of(&issuer.mint(&TokenSpec::agent()));
    let mut header = rs256(Some(&issuer.current_kid()));
    header.typ = Some("at+jwt".to_owned());

    let agent = accepted(&validator, &issuer.sign(&header, &claims.into())).await;

    assert_eq!(agent.id(), AGENT_OID);
}

/// A client whose clock is a little off still gets in: 60 s of leeway on
/// `exp` and `nbf`.
#[tokio::test]
async fn clock_skew_within_the_leeway_is_tolerated() {
    let (issuer, validator) = start().await;
    let just_expired = TokenSpec::agent()
        .not_before_offset_secs(-3630)
        .lifetime(Duration::from_secs(3600));
    let barely_valid_yet = TokenSpec::agent().not_before_offset_secs(20);

    for spec in [just_expired, barely_valid_yet] {
        let agent = accepted(&validator, &issuer.mint(&spec)).await;
        assert_eq!(agent.id(), AGENT_OID);
    }
}

/// The verified-token cache answers the same principal for the same token.
#[tokio::test]
async fn the_same_token_twice_is_the_same_principal() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::approver());
    let fetches = issuer.jwks_requests();

    let first = accepted(&validator, &token).await;
    let second = accepted(&validator, &token).await;

    assert_eq!(first, second);
    assert_eq!(
        issuer.jwks_requests(),
        fetches,
        "the keys fetched at build did"
    );
}
