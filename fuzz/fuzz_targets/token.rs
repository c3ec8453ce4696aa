//! Fuzzes the bearer-token path: whatever a client sends as `Authorization`,
//! and whatever string reaches `JwtValidator::validate`, must be answered
//! (a 401, an `AuthError`), never a panic, and never accepted: the fuzzer
//! holds no private key for the one published key, so no input can be a
//! valid token.
//!
//! Each input, read as UTF-8 (lossily), goes (a) through `IdentityLayer` over
//! a trivial service, as the `Authorization` value itself and after `Bearer `
//! (inputs no header can carry are skipped), and (b) straight to `validate`.
//!
//! Run it with `cargo xtask fuzz [--seconds N]`.

#![no_main]

use std::convert::Infallible;
use std::sync::OnceLock;

use airlock_identity::{IdentityLayer, JwtValidator, KeySource, TokenValidator};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tower::{Layer, ServiceExt, service_fn};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AUDIENCE: &str = "api://airlock";
/// One RSA 2048 public key, `kid` "k1"; its private key is nowhere here.
const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#;

/// Built once per process: the runtime that drives every input's futures,
/// the validator, and the layer over it.
struct Harness {
    runtime: Runtime,
    validator: JwtValidator,
    layer: IdentityLayer,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let validator = runtime
            .block_on(
                JwtValidator::builder()
                    .tenant(TENANT)
                    .audience(AUDIENCE)
                    .keys(KeySource::Static(JWKS.to_owned()))
                    .build(),
            )
            .expect("the validator builds from the static JWKS");
        let layer = IdentityLayer::new(validator.clone());
        Harness {
            runtime,
            validator,
            layer,
        }
    })
}

/// Sends one request with `authorization` through the identity layer; the
/// answer must be a 401 with a challenge.
async fn through_layer(layer: &IdentityLayer, authorization: HeaderValue) {
    let service = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let mut request = Request::new(());
    request.headers_mut().insert(AUTHORIZATION, authorization);
    let Ok(response) = service.oneshot(request).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a request without a validly signed token got through"
    );
    assert!(response.headers().contains_key(WWW_AUTHENTICATE));
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let input = String::from_utf8_lossy(data);
    harness.runtime.block_on(async {
        if let Ok(value) = HeaderValue::from_bytes(input.as_bytes()) {
            through_layer(&harness.layer, value).await;
        }
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {input}")) {
            through_layer(&harness.layer, value).await;
        }
        let verdict = harness.validator.validate(&input).await;
        assert!(verdict.is_err(), "an unsigned input was accepted");
    });
});
