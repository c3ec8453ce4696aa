//! Bad tokens: each refused with the reason a client can act on.

use std::time::Duration;

use airlock_identity::AuthError;
use airlock_sim::{TokenSpec, TokenVersion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{TENANT, claims_of, now_secs, refusal, rs256, segment, start};

/// The claims of a valid agent token from `issuer`, to sign in odd ways.
fn agent_claims(issuer: &airlock_sim::IssuerHandle) -> Value {
    claims_of(&issuer.mint(&TokenSpec::agent())).into()
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (issuer, validator) = start().await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": issuer.current_kid()});
    let unsigned = format!("{}.{}.", segment(&header), segment(&agent_claims(&issuer)));

    let error = refusal(&validator, &unsigned).await;

    assert_eq!(
        error,
        AuthError::Algorithm {
            found: "none".into(),
            accepted: "RS256".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "tokens signed with 'none' are not accepted; accepted: RS256"
    );
    assert_eq!(error.oauth_error(), Some("invalid_token"));
}

/// The classic key confusion: HS256 with the RSA public key as the HMAC
/// secret verifies on a validator that lets the token pick the algorithm.
#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let (issuer, validator) = start().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(issuer.current_kid());
    let secret = EncodingKey::from_secret(issuer.public_key_pem().as_bytes());
    let forged = jsonwebtoken::encode(&header, &agent_claims(&issuer), &secret).unwrap();

    let error = refusal(&validator, &forged).await;

    assert_eq!(
        error,
        AuthError::Algorithm {
            found: "HS256".into(),
            accepted: "RS256".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "tokens signed with 'HS256' are not accepted; accepted: RS256"
    );
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent().audience("https://management.azure.com"));

    let error = refusal(&validator, &token).await;

    assert_eq!(
        error,
        AuthError::WrongAudience {
            expected: "api://airlock".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "the token's audience is not accepted; request a token for api://airlock"
    );
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (issuer, validator) = start().await;
    for iss in [
        format!("https://evil.example/{TENANT}/v2.0"),
        // Entra's real v2 issuer is not the one this validator discovered.
        format!("https://login.microsoftonline.com/{TENANT}/v2.0/"),
        format!("{}/", issuer.issuer()),
    ] {
        let token = issuer.mint(&TokenSpec::agent().claim("iss", json!(iss)));

        let error = refusal(&validator, &token).await;

        assert_eq!(error, AuthError::UnknownIssuer, "{iss}");
        assert_eq!(
            error.to_string(),
            "the token's issuer is not accepted; Airlock accepts tokens from the configured tenants' Entra ID issuers"
        );
    }
}

/// A token of another tenant names that tenant in its issuer too; the
/// tenant is checked first, so the refusal names the tenant (more useful
/// than "unknown issuer").
#[tokio::test]
async fn other_tenant_is_refused_by_tenant() {
    let (issuer, validator) = start().await;
    for version in [TokenVersion::V2, TokenVersion::V1] {
        let token = issuer.mint(&TokenSpec::agent().tenant_id("other").version(version));

        let error = refusal(&validator, &token).await;

        assert_eq!(
            error,
            AuthError::TenantNotAllowed {
                tenant: "other".into()
            },
            "{version:?}"
        );
        assert_eq!(
            error.to_string(),
            "tenant 'other' is not allowed; ask the Airlock operator to add it to [identity].tenants"
        );
    }
}

/// An accepted issuer with another `tid`, or none: refused by tenant.
#[tokio::test]
async fn other_or_missing_tid_from_an_accepted_issuer_is_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent().claim("tid", json!("other")));

    assert_eq!(
        refusal(&validator, &token).await,
        AuthError::TenantNotAllowed {
            tenant: "other".into()
        }
    );
    let no_tid = issuer.mint(&TokenSpec::agent().without_claim("tid"));
    assert_eq!(
        refusal(&validator, &no_tid).await,
        AuthError::MissingClaim("tid")
    );
}

#[tokio::test]
async fn expired_beyond_the_leeway_is_refused() {
    let (issuer, validator) = start().await;
    // exp two minutes ago: past the 60 s leeway.
    let spec = TokenSpec::agent()
        .not_before_offset_secs(-3720)
        .lifetime(Duration::from_secs(3600));

    let error = refusal(&validator, &issuer.mint(&spec)).await;

    assert_eq!(error, AuthError::Expired);
    assert_eq!(
        error.to_string(),
        "the token has expired; request a new token"
    );
}

#[tokio::test]
async fn not_yet_valid_beyond_the_leeway_is_refused() {
    let (issuer, validator) = start().await;
    // nbf (and iat) two minutes from now.
    let token = issuer.mint(&TokenSpec::agent().not_before_offset_secs(120));

    let error = refusal(&validator, &token).await;

    assert_eq!(error, AuthError::NotYetValid);
    assert_eq!(
        error.to_string(),
        "the token is not valid yet (nbf/iat in the future); check the client's clock"
    );
}

#[tokio::test]
async fn iat_in_the_future_is_refused() {
    let (issuer, validator) = start().await;
    // nbf now, but issued two minutes from now.
    let token = issuer.mint(&TokenSpec::agent().claim("iat", json!(now_secs() + 120)));

    assert_eq!(refusal(&validator, &token).await, AuthError::NotYetValid);
}

#[tokio::test]
async fn missing_kid_is_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.sign(&rs256(None), &agent_claims(&issuer));

    let error = refusal(&validator, &token).await;

    assert_eq!(error, AuthError::MissingKeyId);
    assert_eq!(
        error.to_string(),
        "the token's header has no 'kid': Airlock only accepts tokens whose signing key it can name"
    );
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.sign(&rs256(Some("not-a-published-kid")), &agent_claims(&issuer));
    let fetches = issuer.jwks_requests();

    let error = refusal(&validator, &token).await;

    assert_eq!(error, AuthError::UnknownKey);
    assert_eq!(
        error.to_string(),
        "the token's signing key is not published by the identity provider (unknown 'kid'); request a new token"
    );
    assert_eq!(
        issuer.jwks_requests(),
        fetches + 1,
        "one refetch for the unknown kid"
    );
}

#[tokio::test]
async fn signed_by_a_foreign_key_is_refused() {
    let (issuer, validator) = start().await;
    // Carries the published kid; only the signature gives it away.
    let token = issuer.sign_with_foreign_key(&rs256(None), &agent_claims(&issuer));

    let error = refusal(&validator, &token).await;

    assert_eq!(error, AuthError::BadSignature);
    assert_eq!(error.to_string(), "the token's signature is invalid");
}

#[tokio::test]
async fn altered_claims_break_the_signature() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent());
    let mut claims = claims_of(&token);
    claims.insert(
        "groups".into(),
        json!(["00000000-0000-0000-0000-00000000ad01"]),
    );
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], segment(&claims.into()), parts[2]);

    assert_eq!(
        refusal(&validator, &tampered).await,
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn header_type_other_than_jwt_is_refused() {
    let (issuer, validator) = start().await;
    let claims = agent_claims(&issuer);
    let mut jws = rs256(Some(&issuer.current_kid()));
    jws.typ = Some("JWS".into());
    let mut untyped = rs256(Some(&issuer.current_kid()));
    untyped.typ = None;

    for header in [jws, untyped] {
        let error = refusal(&validator, &issuer.sign(&header, &claims)).await;
        assert_eq!(error, AuthError::TokenType, "{:?}", header.typ);
        assert_eq!(
            error.to_string(),
            "the token's header type must be 'JWT' or 'at+jwt' (RFC 9068)"
        );
    }
}

#[tokio::test]
async fn crit_header_is_refused() {
    let (issuer, validator) = start().await;
    let mut header = rs256(Some(&issuer.current_kid()));
    header.crit = Some(vec!["exp".into()]);

    let error = refusal(&validator, &issuer.sign(&header, &agent_claims(&issuer))).await;

    assert_eq!(error, AuthError::CriticalHeader);
    assert_eq!(
        error.to_string(),
        "the token's header lists critical extensions ('crit'), which Airlock does not support"
    );
}

#[tokio::test]
async fn truncated_tokens_are_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent());
    let without_signature = &token[..token.rfind('.').unwrap()];
    let signature_len = token.len() - token.rfind('.').unwrap() - 1;
    assert_eq!(signature_len, 342, "an RS256 signature, base64url");

    assert_eq!(
        refusal(&validator, without_signature).await,
        AuthError::Malformed("expected three dot-separated segments")
    );
    // 340 characters decode to 255 bytes: a short signature.
    assert_eq!(
        refusal(&validator, &token[..token.len() - 2]).await,
        AuthError::BadSignature
    );
    // 341 characters are not base64url at all.
    assert_eq!(
        refusal(&validator, &token[..token.len() - 1]).await,
        AuthError::Malformed("the payload or signature is not base64url JSON")
    );
    // Cut inside the header.
    assert!(matches!(
        refusal(&validator, &token[..10]).await,
        AuthError::Malformed(_)
    ));
}

#[tokio::test]
async fn garbage_is_refused() {
    let (_issuer, validator) = start().await;
    for (garbage, expected) in [
        ("", "expected three dot-separated segments"),
        ("not-a-jwt", "expected three dot-separated segments"),
        ("a.b.c.d", "expected three dot-separated segments"),
        ("a.b.c", "the header is not base64url"),
        ("%%%.%%%.%%%", "the header is not base64url"),
        // base64url of `hello`: decodes, but is not JSON.
        ("aGVsbG8.e30.c2ln", "the header is not a JSON object"),
        // base64url of `[1]`: JSON, not an object.
        ("WzFd.e30.c2ln", "the header is not a JSON object"),
        // base64url of `{}`: an object without `alg`.
        ("e30.e30.c2ln", "the header has no 'alg'"),
    ] {
        assert_eq!(
            refusal(&validator, garbage).await,
            AuthError::Malformed(expected),
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn huge_token_is_refused_before_it_is_parsed() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent().claim("padding", json!("x".repeat(16 * 1024))));
    assert!(token.len() > 16 * 1024);

    let error = refusal(&validator, &token).await;

    assert_eq!(error, AuthError::TooLarge { limit: 16 * 1024 });
    assert_eq!(
        error.to_string(),
        "the token is longer than 16384 bytes; send an access token, not a document"
    );
}

#[tokio::test]
async fn empty_segments_are_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent());
    let parts: Vec<&str> = token.split('.').collect();

    assert_eq!(
        refusal(&validator, "..").await,
        AuthError::Malformed("the header is not a JSON object")
    );
    assert_eq!(
        refusal(&validator, &format!(".{}.{}", parts[1], parts[2])).await,
        AuthError::Malformed("the header is not a JSON object")
    );
    // A real header with the payload and signature emptied out.
    assert_eq!(
        refusal(&validator, &format!("{}..", parts[0])).await,
        AuthError::BadSignature
    );
    // Signature stripped from an RS256 token.
    assert_eq!(
        refusal(&validator, &format!("{}.{}.", parts[0], parts[1])).await,
        AuthError::BadSignature
    );
    // Payload emptied out.
    assert_eq!(
        refusal(&validator, &format!("{}..{}", parts[0], parts[2])).await,
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn token_without_exp_is_refused() {
    let (issuer, validator) = start().await;
    let token = issuer.mint(&TokenSpec::agent().without_claim("exp"));

    let error = refusal(&validator, &token).await;

    assert_eq!(error, AuthError::MissingClaim("exp"));
    assert_eq!(error.to_string(), "the token has no usable 'exp' claim");
}

#[tokio::test]
async fn tokens_without_aud_iss_or_oid_are_refused() {
    let (issuer, validator) = start().await;
    for (claim, expected) in [("aud", "aud"), ("iss", "iss")] {
        let token = issuer.mint(&TokenSpec::agent().without_claim(claim));
        assert_eq!(
            refusal(&validator, &token).await,
            AuthError::MissingClaim(expected)
        );
    }
    let no_subject = TokenSpec::agent().without_claim("oid").without_claim("sub");
    assert_eq!(
        refusal(&validator, &issuer.mint(&no_subject)).await,
        AuthError::MissingClaim("oid")
    );
    let exp_as_text = TokenSpec::agent().claim("exp", json!("tomorrow"));
    assert_eq!(
        refusal(&validator, &issuer.mint(&exp_as_text)).await,
        AuthError::MissingClaim("exp")
    );
}

/// A token the issuer signed with an `exp` past what a clock can hold is
/// accepted (it has not expired), not a panic; it is verified every time.
#[tokio::test]
async fn absurd_expiry_is_not_a_panic() {
    let (issuer, validator) = start().await;
    for exp in [
        json!(u64::MAX),
        json!(10_000_000_000_000_000_000_u64),
        json!(1e19),
    ] {
        let token = issuer.mint(&TokenSpec::agent().claim("exp", exp.clone()));
        let verdict = tokio::spawn({
            let validator = validator.clone();
            async move {
                use airlock_identity::TokenValidator as _;
                let first = validator.validate(&token).await.map(|p| p.id().to_owned());
                let second = validator.validate(&token).await.map(|p| p.id().to_owned());
                (first, second)
            }
        })
        .await
        .unwrap_or_else(|panic| panic!("validating exp {exp} panicked: {panic}"));
        let agent = Ok("00000000-0000-0000-0000-0000000000a1".to_owned());
        assert_eq!(verdict, (agent.clone(), agent), "exp {exp}");
    }
}
