//! Rules: which operations' responses must be masked, and the JSON paths
//! they mask, including inside batch responses.

#![allow(clippy::unwrap_used)]

use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{
    JsonMasker, MaskContext, MaskError, MaskOutcome, MaskRule, Masker, TokenKey,
};
use serde_json::{Value, json};

fn op(name: &str) -> Operation {
    Operation::new(
        name,
        Plane::Management,
        ResourceScope::new("/subscriptions/s/resourceGroups/rg"),
    )
}

fn key() -> TokenKey {
    TokenKey::new([21u8; 32]).unwrap()
}

/// The token of `secret` in `field` of the test scope, read by nobody identified.
fn token(field: &str, secret: &str) -> String {
    key()
        .scope(None, "/subscriptions/s/resourceGroups/rg")
        .token(field, secret.as_bytes())
}

fn masker_with(operations: &[&str], paths: &[&str]) -> JsonMasker {
    JsonMasker::builder(key())
        .rule(MaskRule::new(operations, paths).unwrap())
        .build()
}

fn mask(masker: &JsonMasker, operation: &Operation, body: &Value) -> (Value, MaskOutcome) {
    let outcome = masker
        .mask(
            &MaskContext::new(operation).content_type(Some("application/json")),
            body.to_string().as_bytes(),
        )
        .unwrap();
    let masked = outcome
        .body
        .as_ref()
        .map_or_else(|| body.clone(), |b| serde_json::from_slice(b).unwrap());
    (masked, outcome)
}

const LIST_KEYS: &str = "Microsoft.Storage/storageAccounts/listKeys/action";

fn list_keys_body() -> Value {
    json!({"keys": [
        {"keyName": "key1", "value": "first-secret", "permissions": "FULL"},
        {"keyName": "key2", "value": "second-secret", "permissions": "FULL"}
    ]})
}

#[test]
fn paths_select_values_of_the_matching_operation() {
    let masker = masker_with(&[LIST_KEYS], &["$.keys[*].value"]);
    let (masked, outcome) = mask(&masker, &op(LIST_KEYS), &list_keys_body());
    assert_eq!(
        masked["keys"][0]["value"],
        token("$.keys[0].value", "first-secret")
    );
    assert_eq!(
        masked["keys"][1]["value"],
        token("$.keys[1].value", "second-secret")
    );
    assert_eq!(masked["keys"][0]["keyName"], "key1");
    assert_eq!(outcome.paths, ["$.keys[0].value", "$.keys[1].value"]);
    assert_eq!(outcome.count, 2);

    // Another operation's response is not touched by the rule.
    let (_, outcome) = mask(
        &masker,
        &op("Microsoft.Storage/storageAccounts/read"),
        &list_keys_body(),
    );
    assert_eq!(outcome, MaskOutcome::unchanged());
}

#[test]
fn operation_patterns_use_azure_wildcards() {
    let masker = masker_with(&["Microsoft.Storage/*/list*/action"], &["$.keys[*].value"]);
    assert!(masker.must_mask(&op("microsoft.storage/STORAGEACCOUNTS/listKeys/action")));
    assert!(masker.must_mask(&op(
        "Microsoft.Storage/storageAccounts/fileServices/listSas/action"
    )));
    assert!(!masker.must_mask(&op("Microsoft.Storage/storageAccounts/read")));
    assert!(!masker.must_mask(&op("Microsoft.Web/sites/listKeys/action")));
    assert!(matches!(
        MaskRule::new(["Microsoft.Storage/**"], ["$"]).unwrap_err(),
        MaskError::Operation(_)
    ));
    assert_eq!(
        MaskRule::new(Vec::<&str>::new(), ["$"]).unwrap_err(),
        MaskError::NoOperations
    );
}

#[test]
fn json_path_subset() {
    let body = json!({
        "value": "top",
        "primaryMasterKey": "pk",
        "properties": {
            "publishingPassword": "pp",
            "outputs": {"a": {"type": "String", "value": "out-a"}, "b": {"type": "Int", "value": 3}},
            "odata.type": "dotted",
            "list": ["l0", "l1", "l2"],
            "deep": {"x": {"password": "deep-pw"}, "password": {"nested": "whole-object"}}
        }
    });
    let cases: &[(&str, &[&str])] = &[
        ("$.value", &["$.value"]),
        ("$['primaryMasterKey']", &["$.primaryMasterKey"]),
        ("$[\"primaryMasterKey\"]", &["$.primaryMasterKey"]),
        (
            "$.properties.publishingPassword",
            &["$.properties.publishingPassword"],
        ),
        // Numbers are not strings: only the string output is masked.
        (
            "$.properties.outputs.*.value",
            &["$.properties.outputs.a.value"],
        ),
        (
            "$.properties['odata.type']",
            &["$.properties['odata.type']"],
        ),
        ("$.properties.list[1]", &["$.properties.list[1]"]),
        (
            "$.properties.list[*]",
            &[
                "$.properties.list[0]",
                "$.properties.list[1]",
                "$.properties.list[2]",
            ],
        ),
        // (json! sorts members: `password` comes before `x`.)
        (
            "$..password",
            &[
                "$.properties.deep.password.nested",
                "$.properties.deep.x.password",
            ],
        ),
        // A path that selects an object masks every string in it.
        (
            "$.properties.outputs",
            &[
                "$.properties.outputs.a.type",
                "$.properties.outputs.a.value",
                "$.properties.outputs.b.type",
            ],
        ),
        // Names compare case-insensitively.
        (
            "$.PROPERTIES.PublishingPassword",
            &["$.properties.publishingPassword"],
        ),
        // Paths that find nothing are fine.
        ("$.nothing.here[3]", &[]),
        ("$.properties.list[7]", &[]),
    ];
    for (path, expected) in cases {
        let masker = masker_with(&["Microsoft.Web/sites/config/list/action"], &[path]);
        let (masked, outcome) = mask(
            &masker,
            &op("Microsoft.Web/sites/config/list/action"),
            &body,
        );
        assert_eq!(outcome.paths, *expected, "{path}");
        assert_eq!(outcome.count as usize, expected.len(), "{path}");
        for (at, original) in string_leaves(&body, "$".into()) {
            let now = body_at(&masked, &at).unwrap();
            if expected.contains(&at.as_str()) {
                assert_eq!(*now, token(&at, original), "{path}: {at}");
            } else {
                assert_eq!(now, original, "{path}: {at}");
            }
        }
    }
}

/// Every string in `value`, with its path rendered as the masker does.
fn string_leaves(value: &Value, at: String) -> Vec<(String, &str)> {
    match value {
        Value::String(s) => vec![(at, s.as_str())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| string_leaves(v, format!("{at}[{i}]")))
            .collect(),
        Value::Object(members) => members
            .iter()
            .flat_map(|(k, v)| {
                let step = if k.contains('.') {
                    format!("['{k}']")
                } else {
                    format!(".{k}")
                };
                string_leaves(v, format!("{at}{step}"))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The value at a rendered path (only the forms the test uses).
fn body_at<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    let mut value = body;
    let mut rest = path.strip_prefix('$')?;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']")?;
            value = value.get(&after[..end])?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            value = value.get(after[..end].parse::<usize>().ok()?)?;
            rest = &after[end + 1..];
        } else {
            let after = rest.strip_prefix('.')?;
            let end = after.find(['.', '[']).unwrap_or(after.len());
            value = value.get(&after[..end])?;
            rest = &after[end..];
        }
    }
    Some(value)
}

#[test]
fn unsupported_paths_are_refused_with_a_reason() {
    for (path, needle) in [
        ("keys", "starts with '$'"),
        ("$.keys[?(@.x)]", "no filters"),
        ("$.keys[0:2]", "no filters, slices or unions"),
        ("$.a b", "in brackets"),
    ] {
        let error = MaskRule::new([LIST_KEYS], [path]).unwrap_err();
        assert!(error.to_string().contains(needle), "{path}: {error}");
    }
}

#[test]
fn rules_apply_to_child_operations_anywhere_in_the_body() {
    let masker = masker_with(&[LIST_KEYS], &["$.keys[*].value"]);
    let batch = op("Microsoft.Resources/batch/action")
        .with_child(op("Microsoft.Compute/virtualMachines/read"))
        .with_child(op(LIST_KEYS));
    assert!(masker.must_mask(&batch));
    let body = json!({"responses": [
        {"httpStatusCode": 200, "content": {"name": "vm1"}},
        {"httpStatusCode": 200, "content": list_keys_body()}
    ]});
    let (masked, outcome) = mask(&masker, &batch, &body);
    assert_eq!(
        masked["responses"][1]["content"]["keys"][0]["value"],
        token("$.responses[1].content.keys[0].value", "first-secret")
    );
    assert_eq!(
        masked["responses"][1]["content"]["keys"][1]["value"],
        token("$.responses[1].content.keys[1].value", "second-secret")
    );
    assert_eq!(
        outcome.paths,
        [
            "$.responses[1].content.keys[0].value",
            "$.responses[1].content.keys[1].value"
        ]
    );
    // Nested children count too.
    let nested = op("Microsoft.Resources/deployments/write")
        .with_child(op("Microsoft.Resources/batch/action").with_child(op(LIST_KEYS)));
    assert!(masker.must_mask(&nested));
    // The top-level operation's paths stay anchored at the root.
    let (_, outcome) = mask(
        &masker,
        &op(LIST_KEYS),
        &json!({"wrapped": list_keys_body()}),
    );
    assert_eq!(outcome.count, 0);
}

#[test]
fn a_rule_can_turn_the_detectors_off_for_its_operations() {
    let cs = "AccountName=a;AccountKey=abcdefgh";
    let body = json!({"value": "kv-secret", "note": cs});
    let on = masker_with(
        &["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
        &["$.value"],
    );
    let off = JsonMasker::builder(key())
        .rule(
            MaskRule::new(
                ["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
                ["$.value"],
            )
            .unwrap()
            .detectors(false),
        )
        .build();
    let get = op("Microsoft.KeyVault/vaults/secrets/getSecret/action");
    let (_, outcome) = mask(&on, &get, &body);
    assert_eq!(outcome.paths, ["$.note (AccountKey)", "$.value"]);
    let (masked, outcome) = mask(&off, &get, &body);
    assert_eq!(outcome.paths, ["$.value"]);
    assert_eq!(masked["note"], cs);
    // Other operations keep the detectors.
    let (_, outcome) = mask(&off, &op("Microsoft.Web/sites/read"), &body);
    assert_eq!(outcome.paths, ["$.note (AccountKey)"]);
}

#[test]
fn value_fields_look_like_keys_under_a_rule() {
    let short_key = "Ogyfxa/XYIQ3gWvdCnMJy0oSUuTacOZyD8qk2h6YQGw=";
    let masker = masker_with(
        &["Microsoft.ServiceBus/namespaces/authorizationRules/listkeys/action"],
        &[],
    );
    let body = json!({"keys": [{"value": short_key}]});
    let (_, outcome) = mask(
        &masker,
        &op("Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action"),
        &body,
    );
    assert_eq!(outcome.paths, ["$.keys[0].value (Key)"]);
    let (_, outcome) = mask(&masker, &op("Microsoft.ServiceBus/namespaces/read"), &body);
    assert_eq!(outcome.count, 0);
}

#[test]
fn must_mask_bodies_are_parsed_or_refused() {
    let masker = masker_with(&[LIST_KEYS], &["$.keys[*].value"]);
    let list_keys = op(LIST_KEYS);
    // JSON without a JSON content type is still parsed.
    let outcome = masker
        .mask(
            &MaskContext::new(&list_keys).content_type(Some("application/octet-stream")),
            list_keys_body().to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(outcome.count, 2);
    let outcome = masker
        .mask(
            &MaskContext::new(&list_keys).content_type(None),
            list_keys_body().to_string().as_bytes(),
        )
        .unwrap();
    assert_eq!(outcome.count, 2);
    // Malformed JSON is refused, saying where, never what.
    let error = masker
        .mask(
            &MaskContext::new(&list_keys).content_type(Some("application/json")),
            br#"{"keys":[{"value":"first-secret",]}"#,
        )
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the body is not valid JSON: expected a member name at byte 33"
    );
    // Binary content that must be masked cannot be.
    let error = masker
        .mask(
            &MaskContext::new(&list_keys).content_type(Some("application/octet-stream")),
            &[0xff, 0xfe, 0x00],
        )
        .unwrap_err();
    assert!(matches!(error, MaskError::Unreadable { .. }), "{error}");
    // Text that must be masked is scanned by the detectors.
    let outcome = masker
        .mask(
            &MaskContext::new(&list_keys).content_type(Some("application/xml")),
            b"<p userPWD=\"pw1\"/>",
        )
        .unwrap();
    assert_eq!(outcome.paths, ["$ (userPWD)"]);
    // An empty body holds nothing.
    assert_eq!(
        masker
            .mask(
                &MaskContext::new(&list_keys).content_type(Some("application/json")),
                b""
            )
            .unwrap(),
        MaskOutcome::unchanged()
    );
}

#[test]
fn masked_tokens_under_rules_are_kept() {
    let masker = masker_with(&[LIST_KEYS], &["$.keys[*].value"]);
    let (masked, _) = mask(&masker, &op(LIST_KEYS), &list_keys_body());
    let (again, outcome) = mask(&masker, &op(LIST_KEYS), &masked);
    assert_eq!(outcome, MaskOutcome::unchanged());
    assert_eq!(again, masked);
}
