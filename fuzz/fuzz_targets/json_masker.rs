//! Fuzzes the JSON masker with whatever Azure (or anything posing as it)
//! could answer: every body, as JSON that must be masked, as JSON that need
//! not be, and as text, is masked or refused with a `MaskError`, never a
//! panic. What the masker accepts as JSON it must return as JSON:
//!
//! - a body `serde_json` parses is accepted, and the output parses too, with
//!   the same members in the same order, the same array lengths and the same
//!   non-string values; every string that changed holds a token;
//! - a body it accepts and rewrites stays JSON (`IgnoredAny` parses it);
//! - masking the output again the same way changes nothing (tokens are
//!   never re-masked) — unless masking turned a body that was not JSON into
//!   JSON (a control character inside a masked value), which is then read
//!   differently;
//! - `count` always equals the number of reported paths.
//!
//! Run it with `cargo xtask fuzz --target json_masker`.

#![no_main]

use std::sync::OnceLock;

use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, MaskOutcome, MaskRule, Masker, TokenKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MUST_MASK: &str = "Microsoft.Storage/storageAccounts/listKeys/action";

struct Harness {
    masker: JsonMasker,
    must_mask: Operation,
    read: Operation,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let rule = MaskRule::new(
            [MUST_MASK],
            ["$.keys[*].value", "$..connectionString", "$.properties.*", "$[0]"],
        )
        .expect("the rule is valid");
        let scope = ResourceScope::new("/subscriptions/s/resourceGroups/rg");
        Harness {
            masker: JsonMasker::builder(TokenKey::new([7u8; 32]).expect("32 bytes"))
                .rule(rule)
                .build(),
            must_mask: Operation::new(MUST_MASK, Plane::Management, scope.clone()),
            read: Operation::new("Microsoft.Web/sites/read", Plane::Management, scope),
        }
    })
}

/// Same members in the same order, same lengths, same non-strings; changed
/// strings hold a token.
fn same_shape(before: &Value, after: &Value) -> bool {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            a.keys().eq(b.keys()) && a.values().zip(b.values()).all(|(x, y)| same_shape(x, y))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_shape(x, y))
        }
        (Value::String(a), Value::String(b)) => a == b || b.contains("***MASKED:"),
        (a, b) => a == b,
    }
}

/// Masks `data`; `must` says the operation must be masked (then only
/// invalid JSON may be refused), `json` that the content type is JSON,
/// `same_reading` that the output will be read as the input was.
fn check(
    operation: &Operation,
    content_type: &str,
    data: &[u8],
    must: bool,
    json: bool,
    same_reading: bool,
) {
    let masker = &harness().masker;
    let parsed = serde_json::from_slice::<Value>(data);
    let outcome = match masker.mask(operation, Some(content_type), data) {
        Ok(outcome) => outcome,
        Err(_) => {
            assert!(must, "only a body that must be masked may be refused");
            assert!(parsed.is_err(), "refused a body serde_json parses");
            return;
        }
    };
    assert_eq!(outcome.count as usize, outcome.paths.len());
    let Some(body) = &outcome.body else {
        assert_eq!(outcome.count, 0);
        return;
    };
    assert!(outcome.count > 0, "rewrote a body without masking anything");
    if must {
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok(),
            "masked JSON is no longer JSON"
        );
    }
    if let (true, Ok(before)) = (json, &parsed) {
        let after: Value = serde_json::from_slice(body).expect("valid JSON in, valid JSON out");
        assert!(same_shape(before, &after), "the shape changed");
    }
    let again = masker
        .mask(operation, Some(content_type), body)
        .expect("masked output masks again");
    if same_reading {
        assert_eq!(again, MaskOutcome::unchanged(), "masked output was masked again");
    }
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    // Whether the masker reads the body as JSON (else, when it need not be
    // masked, as text).
    let is_json = harness
        .masker
        .mask(&harness.must_mask, Some("application/json"), data)
        .is_ok();
    check(&harness.must_mask, "application/json", data, true, true, true);
    check(&harness.read, "application/json; charset=utf-8", data, false, true, is_json);
    check(&harness.read, "text/plain", data, false, false, true);
});
