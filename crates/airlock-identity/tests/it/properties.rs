//! Whatever a client sends as a token, the validator answers an error, never
//! a panic (and never a principal it did not verify).

use airlock_identity::{JwtValidator, TokenValidator as _};
use airlock_sim::{IssuerHandle, TokenSpec};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};
use tokio::runtime::Runtime;

use crate::support::{issuer, request, through};

/// A runtime serving a development issuer, and a validator for it.
fn world() -> (Runtime, IssuerHandle, JwtValidator) {
    let runtime = Runtime::new().unwrap();
    let (issuer, validator) = runtime.block_on(async {
        let issuer = issuer().await;
        let validator = crate::support::builder(&issuer).build().await.unwrap();
        (issuer, validator)
    });
    (runtime, issuer, validator)
}

fn config() -> Config {
    Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn random_bytes_are_refused_without_panicking() {
    let (runtime, _issuer, validator) = world();
    proptest!(config(), |(bytes in proptest::collection::vec(any::<u8>(), 0..4096))| {
        let token = String::from_utf8_lossy(&bytes);
        let verdict = runtime.block_on(validator.validate(&token));
        prop_assert!(verdict.is_err());
    });
}

#[test]
fn random_strings_are_refused_without_panicking() {
    let (runtime, _issuer, validator) = world();
    proptest!(config(), |(token in prop_oneof![
        any::<String>(),
        // The token alphabet, dots included: gets past the first checks.
        "[A-Za-z0-9_.=-]{0,600}",
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,80}",
    ])| {
        let verdict = runtime.block_on(validator.validate(&token));
        prop_assert!(verdict.is_err());
    });
}

/// Three base64url segments of random bytes: a well-formed shape with
/// nonsense inside.
#[test]
fn random_segments_are_refused_without_panicking() {
    let (runtime, _issuer, validator) = world();
    let bytes = || proptest::collection::vec(any::<u8>(), 0..300);
    proptest!(config(), |(header in bytes(), payload in bytes(), signature in bytes())| {
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        );
        let verdict = runtime.block_on(validator.validate(&token));
        prop_assert!(verdict.is_err());
    });
}

/// Any JSON value, weighted towards what JOSE header fields hold.
fn json_value(kid: String) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            "RS256", "none", "None", "HS256", "ES256", "PS256", "EdDSA", "JWT", "at+jwt", "jwt",
            "JWS", "", "exp",
        ])
        .prop_map(Value::from),
        Just(Value::from(kid)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JOSE header: often a valid `{alg, typ, kid}` start, then random fields
/// (the ones the validator reads among them) added or overwritten with any
/// value.
fn jose_header(kid: String) -> impl Strategy<Value = Map<String, Value>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "alg", "typ", "kid", "crit", "cty", "jku", "jwk", "x5u", "x5c", "x5t", "enc", "zip",
        ])
        .prop_map(str::to_owned),
        ".{0,8}",
    ];
    let fields = proptest::collection::vec((name, json_value(kid.clone())), 0..7);
    (prop::bool::weighted(0.7), fields).prop_map(move |(valid_start, fields)| {
        let mut header = Map::new();
        if valid_start {
            header.insert("alg".into(), "RS256".into());
            header.insert("typ".into(), "JWT".into());
            header.insert("kid".into(), kid.clone().into());
        }
        header.extend(fields);
        header
    })
}

/// Random headers on a real token's claims and signature: a header the
/// issuer did not sign never verifies, and reading it never panics.
#[test]
fn random_jose_headers_are_refused_without_panicking() {
    let (runtime, issuer, validator) = world();
    let token = issuer.mint(&TokenSpec::agent());
    let (signed_header, rest) = token.split_once('.').unwrap();
    proptest!(config(), |(header in jose_header(issuer.current_kid()))| {
        let encoded = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
        prop_assume!(encoded != signed_header);
        let forged = format!("{encoded}.{rest}");
        let verdict = runtime.block_on(validator.validate(&forged));
        prop_assert!(verdict.is_err(), "accepted: {}", forged);
    });
    // The untouched token is still good: the property did not break the validator.
    assert!(runtime.block_on(validator.validate(&token)).is_ok());
}

/// Random `Authorization` values through the layer: always a 401 with a
/// Bearer challenge, never the inner service.
#[test]
fn random_authorization_values_are_401_through_the_layer() {
    let (runtime, _issuer, validator) = world();
    let layer = airlock_identity::IdentityLayer::new(validator);
    proptest!(config(), |(value in prop_oneof![
        "[ -~]{0,300}",
        "[Bb][Ee][Aa][Rr][Ee][Rr] [ -~]{0,300}",
    ])| {
        let answer = runtime.block_on(through(&layer, request(&[&value])));
        prop_assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        prop_assert!(answer.seen.is_none());
        prop_assert!(answer.challenge().unwrap().starts_with("Bearer"));
    });
}
