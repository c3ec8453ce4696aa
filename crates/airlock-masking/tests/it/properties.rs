//! Properties of the JSON masker over generated documents: its output is
//! valid JSON of the same shape, masked strings are tokens, masking is
//! idempotent, and it parses exactly what it should.

#![allow(clippy::unwrap_used)]

use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, MaskContext, MaskOutcome, MaskRule, Masker, TokenKey};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn masker() -> JsonMasker {
    JsonMasker::builder(TokenKey::new([51u8; 32]).unwrap())
        .rule(
            MaskRule::new(
                ["Microsoft.Test/things/listKeys/action"],
                ["$..value", "$.a[*]", "$.k.*"],
            )
            .unwrap(),
        )
        .build()
}

fn op(name: &str) -> Operation {
    Operation::new(
        name,
        Plane::Management,
        ResourceScope::new("/subscriptions/s"),
    )
}

fn strings() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,24}",
        1 => "AccountKey=[A-Za-z0-9+/]{8,30}={0,2};EndpointSuffix=core.windows.net",
        1 => "Server=x;(Password|Pwd) ?= ?[^;]{0,10};",
        1 => "eyJ[A-Za-z0-9_-]{8,20}\\.[A-Za-z0-9_-]{2,20}\\.[A-Za-z0-9_-]{0,20}",
        1 => "https://a/b\\?sv=1&sig=[A-Za-z0-9%]{1,20}&se=2",
        1 => "-----BEGIN (RSA |EC )?PRIVATE KEY-----\n[A-Za-z0-9+/\n]{0,40}(\n-----END PRIVATE KEY-----)?",
        1 => "[A-Za-z0-9+/]{86}==",
        1 => "[A-Za-z0-9+/]{43}=",
        1 => "\\*\\*\\*MASKED:[0-9a-f]{8}\\*\\*\\*",
        1 => "(Password=)?\\*\\*\\*MASKED\\*\\*\\*;?",
    ]
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("value".to_owned()),
        Just("primaryKey".to_owned()),
        Just("password".to_owned()),
        Just("a".to_owned()),
        Just("k".to_owned()),
        "[a-zA-Z.]{1,8}",
        ".{0,6}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        strings().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Same keys in the same order, same array lengths, same non-strings;
/// every string that changed holds a token.
fn same_shape(before: &Value, after: &Value) -> Result<(), String> {
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            if !a.keys().eq(b.keys()) {
                return Err(format!("members differ: {a:?} / {b:?}"));
            }
            a.values()
                .zip(b.values())
                .try_for_each(|(x, y)| same_shape(x, y))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err("array lengths differ".into());
            }
            a.iter().zip(b).try_for_each(|(x, y)| same_shape(x, y))
        }
        (Value::String(a), Value::String(b)) => {
            if a == b || b.contains("***MASKED") {
                Ok(())
            } else {
                Err(format!("{a:?} became {b:?}"))
            }
        }
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{a} became {b}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn output_is_valid_json_of_the_same_shape(value in json(), pretty in any::<bool>(), rule in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&value).unwrap() } else { value.to_string() };
        let operation = op(if rule { "Microsoft.Test/things/listKeys/action" } else { "Microsoft.Test/things/read" });
        let outcome = masker().mask(&MaskContext::new(&operation).content_type(Some("application/json")), text.as_bytes()).unwrap();
        prop_assert_eq!(outcome.count as usize, outcome.paths.len());
        let Some(body) = &outcome.body else {
            prop_assert_eq!(outcome.count, 0);
            return Ok(());
        };
        prop_assert!(outcome.count > 0);
        let masked: Value = serde_json::from_slice(body).unwrap();
        // Compared with the input as parsed (serde_json's float printing
        // does not round-trip exactly; the masker keeps numbers byte for byte).
        let before: Value = serde_json::from_str(&text).unwrap();
        if let Err(problem) = same_shape(&before, &masked) {
            prop_assert!(false, "{}", problem);
        }
        // Masking what is masked changes nothing.
        let again = masker().mask(&MaskContext::new(&operation).content_type(Some("application/json")), body).unwrap();
        prop_assert_eq!(again, MaskOutcome::unchanged());
    }

    #[test]
    fn parses_what_serde_json_parses(bytes in prop::collection::vec(prop_oneof![
        Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b'"'), Just(b':'), Just(b','),
        Just(b'\\'), Just(b'u'), Just(b'0'), Just(b'1'), Just(b'e'), Just(b'-'), Just(b'.'),
        Just(b' '), Just(b'a'), Just(b'n'), any::<u8>(),
    ], 0..40)) {
        let operation = op("Microsoft.Test/things/listKeys/action");
        let strict = serde_json::from_slice::<Value>(&bytes).is_ok();
        match masker().mask(&MaskContext::new(&operation).content_type(Some("application/json")), &bytes) {
            Ok(outcome) => {
                let empty = bytes.iter().all(|b| b" \t\r\n".contains(b));
                prop_assert!(strict || empty, "accepted what serde_json refuses: {:?}", String::from_utf8_lossy(&bytes));
                if let Some(body) = outcome.body {
                    prop_assert!(serde_json::from_slice::<Value>(&body).is_ok());
                }
            }
            Err(_) => prop_assert!(!strict, "refused what serde_json accepts: {:?}", String::from_utf8_lossy(&bytes)),
        }
    }
}
