//! The detectors, in free text and nested JSON, and the redaction they
//! leave: what an agent sees instead of a secret.

#![allow(clippy::unwrap_used)]

use airlock_core::{Operation, Plane, ResourceScope};
use airlock_masking::{JsonMasker, MaskContext, MaskOutcome, Masker, REDACTED, TokenKey};
use serde_json::{Value, json};

const STORAGE_KEY: &str =
    "RCCCPP3m8cJrMPkOx90B5Ih1NKIPCw0Ew27YDnHg/XewdnDrlAvVM1+XParYYZuR/8kR9XzO1Fi7vyzgN1PJvQ==";
const OTHER_STORAGE_KEY: &str =
    "+g/wFp3JV1Z0BmZ2z7C064kCxEJp2hz2umbT+LbUsQCp6g51WlwughAkKgjnB49/iThesJQjVVGCVouW6KT+8g==";
const SHORT_KEY: &str = "Ogyfxa/XYIQ3gWvdCnMJy0oSUuTacOZyD8qk2h6YQGw=";
const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJvaWQiOiIxMjMiLCJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tIn0.c2lnbmF0dXJlLWJ5dGVz";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu\n-----END PRIVATE KEY-----";
const SAS_SIG: &str = "k1XnQ%2BGq5r3xN0pVd%2F8uYw7T4zSg%3D";

fn masker() -> JsonMasker {
    JsonMasker::builder(TokenKey::new([11u8; 32]).unwrap()).build()
}

fn read_op() -> Operation {
    Operation::new(
        "Microsoft.Web/sites/read",
        Plane::Management,
        ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app"),
    )
}

fn mask(content_type: &str, body: &str) -> (String, MaskOutcome) {
    let outcome = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some(content_type)),
            body.as_bytes(),
        )
        .unwrap();
    let text = outcome.body.as_ref().map_or_else(
        || body.to_owned(),
        |b| String::from_utf8(b.to_vec()).unwrap(),
    );
    (text, outcome)
}

fn mask_json(value: &Value) -> (Value, MaskOutcome) {
    let (text, outcome) = mask("application/json", &value.to_string());
    (serde_json::from_str(&text).unwrap(), outcome)
}

#[test]
fn connection_strings_keep_everything_but_the_key() {
    let cs = format!(
        "DefaultEndpointsProtocol=https;AccountName=st1;AccountKey={STORAGE_KEY};EndpointSuffix=core.windows.net"
    );
    let (masked, outcome) = mask_json(
        &json!({"properties": {"siteConfig": {"connectionStrings": [{"name": "db", "connectionString": cs}]}}}),
    );
    assert_eq!(
        masked["properties"]["siteConfig"]["connectionStrings"][0]["connectionString"],
        format!(
            "DefaultEndpointsProtocol=https;AccountName=st1;AccountKey={};EndpointSuffix=core.windows.net",
            REDACTED
        )
    );
    assert_eq!(
        outcome.paths,
        ["$.properties.siteConfig.connectionStrings[0].connectionString (AccountKey)"]
    );
    assert_eq!(outcome.count, 1);

    let text = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2hhcmVkLWtleQ==\nServer=tcp:db;User ID=admin;Pwd=hunter2;\nData Source=x;Password=\"p;w\";";
    let (masked, outcome) = mask("text/plain", text);
    assert_eq!(
        masked,
        format!(
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={}\nServer=tcp:db;User ID=admin;Pwd={};\nData Source=x;Password=\"{}\";",
            REDACTED, REDACTED, REDACTED
        )
    );
    assert_eq!(
        outcome.paths,
        ["$ (SharedAccessKey)", "$ (Pwd)", "$ (Password)"]
    );
}

#[test]
fn sas_signatures_lose_only_the_signature() {
    let url = format!(
        "https://st1.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01&sig={SAS_SIG}&spr=https"
    );
    let (masked, outcome) = mask_json(&json!({"accountSasToken": url}));
    assert_eq!(masked["accountSasToken"], url.replace(SAS_SIG, REDACTED));
    assert_eq!(outcome.paths, ["$.accountSasToken (sig)"]);

    let (masked, _) = mask("text/html", &format!("<a href=\"{url}\">x</a>"));
    assert!(!masked.contains(SAS_SIG));
    assert!(masked.contains("&spr=https"));
}

#[test]
fn jwts_are_masked_whole() {
    let (masked, outcome) =
        mask_json(&json!({"items": [{"auth": {"header": format!("Bearer {JWT}")}}]}));
    assert_eq!(
        masked["items"][0]["auth"]["header"],
        format!("Bearer {}", REDACTED)
    );
    assert_eq!(outcome.paths, ["$.items[0].auth.header (JWT)"]);

    let (masked, outcome) = mask("text/plain", &format!("token={JWT} end"));
    assert_eq!(masked, format!("token={} end", REDACTED));
    assert_eq!(outcome.count, 1);
    // A continuation token (base64 of JSON, no dots) is no JWT.
    let (_, outcome) = mask_json(
        &json!({"nextLink": "https://management.azure.com/x?$skiptoken=eyJuZXh0UGFydGl0aW9uS2V5IjoiMSJ9"}),
    );
    assert_eq!(outcome.count, 0);
}

#[test]
fn pem_private_keys_are_masked_as_a_block() {
    let (masked, outcome) =
        mask_json(&json!({"properties": {"certificate": {"pem": format!("{PEM}\n")}}}));
    assert_eq!(
        masked["properties"]["certificate"]["pem"],
        format!("{}\n", REDACTED)
    );
    assert_eq!(outcome.paths, ["$.properties.certificate.pem (PrivateKey)"]);

    let (masked, _) = mask("text/plain", &format!("key:\n{PEM}\ncert follows"));
    assert_eq!(masked, format!("key:\n{}\ncert follows", REDACTED));
    // Certificates are public: untouched.
    let cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----";
    assert_eq!(mask("text/plain", cert).1.count, 0);
}

#[test]
fn storage_key_shapes() {
    // 88-character keys anywhere.
    let (masked, outcome) = mask_json(
        &json!({"a": [{"b": STORAGE_KEY}], "note": format!("key is {OTHER_STORAGE_KEY}.")}),
    );
    assert_eq!(masked["a"][0]["b"], REDACTED);
    assert_eq!(masked["note"], format!("key is {}.", REDACTED));
    assert_eq!(
        outcome.paths,
        ["$.a[0].b (StorageKey)", "$.note (StorageKey)"]
    );
    // 44-character keys only where the field is named like a key.
    let (masked, outcome) = mask_json(&json!({
        "primaryKey": SHORT_KEY,
        "nested": {"adminPassword": SHORT_KEY, "clientSecret": SHORT_KEY, "key": [SHORT_KEY]},
        "etag": SHORT_KEY,
        "value": SHORT_KEY,
    }));
    assert_eq!(masked["primaryKey"], REDACTED);
    assert_eq!(masked["nested"]["adminPassword"], REDACTED);
    assert_eq!(masked["nested"]["clientSecret"], REDACTED);
    assert_eq!(masked["nested"]["key"][0], REDACTED);
    assert_eq!(masked["etag"], SHORT_KEY);
    assert_eq!(
        masked["value"], SHORT_KEY,
        "`value` counts only under a rule"
    );
    assert_eq!(outcome.count, 4);
}

#[test]
fn ordinary_arm_content_is_left_alone() {
    let body = json!({
        "id": "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/rg/providers/Microsoft.Web/sites/app",
        "properties": {
            "outboundIpAddresses": "20.50.2.1,20.50.2.2",
            "nextLink": "https://management.azure.com/subscriptions/s/providers/Microsoft.Web/sites?api-version=2023-01-01&$skiptoken=abc%3D",
            "connectionString": "Server=tcp:db;Database=app;Authentication=Active Directory Managed Identity",
            "query": "AccountName=st1;BlobEndpoint=https://st1.blob.core.windows.net/",
            "hash": "c2hhMjU2"
        }
    });
    let (masked, outcome) = mask_json(&body);
    assert_eq!(outcome, MaskOutcome::unchanged(), "{masked}");
}

#[test]
fn detector_findings_are_linkable_to_nothing() {
    // Free text may be the agent's own (a tag, a URL echoed in an error): a
    // finding there becomes the same redaction whatever the value and the
    // key, so nothing the agent writes can be compared with a secret.
    let body = json!({"a": format!("AccountKey={STORAGE_KEY}"), "b": format!("AccountKey={STORAGE_KEY}"), "c": format!("AccountKey={OTHER_STORAGE_KEY}")});
    let (masked, outcome) = mask_json(&body);
    assert_eq!(outcome.count, 3);
    for field in ["a", "b", "c"] {
        assert_eq!(masked[field], format!("AccountKey={REDACTED}"), "{field}");
    }
    let other = JsonMasker::builder(TokenKey::new([12u8; 32]).unwrap()).build();
    let body = body.to_string();
    let op = read_op();
    let context = MaskContext::new(&op).content_type(Some("application/json"));
    let mask_with = |m: &JsonMasker| m.mask(&context, body.as_bytes()).unwrap().body.unwrap();
    assert_eq!(mask_with(&other), mask_with(&masker()));
}

#[test]
fn masked_output_is_not_masked_again() {
    let body = json!({
        "cs": format!("AccountKey={STORAGE_KEY};Password=x"),
        "jwt": JWT,
        "pem": PEM,
        "url": format!("https://x/?sig={SAS_SIG}"),
        "k": STORAGE_KEY,
    })
    .to_string();
    let first = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("application/json")),
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(first.count, 6);
    let second = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("application/json")),
            &first.body.unwrap(),
        )
        .unwrap();
    assert_eq!(second, MaskOutcome::unchanged());
}

#[test]
fn what_masking_leaves_beside_a_token_is_no_new_finding() {
    // A 44-character key shape ending right before a masked value: not a
    // key the first time (a base64 character follows), and not the second
    // time either (a token follows).
    let name = format!("{}Key", "Ab1".repeat(13) + "x");
    assert_eq!(name.len(), 43);
    let text = format!("primaryKey: {name}=value-of-it");
    let first = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("text/plain")),
            text.as_bytes(),
        )
        .unwrap();
    assert_eq!(first.count, 1);
    let second = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("text/plain")),
            &first.body.unwrap(),
        )
        .unwrap();
    assert_eq!(second, MaskOutcome::unchanged());
}

#[test]
fn escaped_json_is_decoded_before_detection() {
    // System.Text.Json escapes '+' and other characters as \uXXXX.
    let escaped = STORAGE_KEY.replace('+', "\\u002B");
    let body = format!(
        r#"{{"cs":"AccountKey\u003d{escaped};x=1","pem":"{}"}}"#,
        PEM.replace('\n', "\\n")
    );
    let (masked, outcome) = mask("application/json; charset=utf-8", &body);
    let masked: Value = serde_json::from_str(&masked).unwrap();
    assert_eq!(masked["cs"], format!("AccountKey={};x=1", REDACTED));
    assert_eq!(masked["pem"], REDACTED);
    assert_eq!(outcome.count, 2);
}

#[test]
fn secrets_spelled_only_with_escapes_are_found() {
    // No `=`, `J` or PEM header in the raw bytes: only decoding shows them.
    let jwt = JWT.replace('J', "\\u004a");
    let body = format!(r#"{{"cs":"Password\u003dhunter2","token":"{jwt}"}}"#);
    assert!(!body.contains(['=', 'J']));
    let (masked, outcome) = mask("application/json", &body);
    let masked: Value = serde_json::from_str(&masked).unwrap();
    assert_eq!(masked["cs"], format!("Password={REDACTED}"));
    assert_eq!(masked["token"], REDACTED);
    assert_eq!(outcome.count, 2);
}

#[test]
fn answers_with_nothing_shaped_like_a_secret_are_left_alone() {
    // Valid JSON or not, JSON or text: unchanged, nothing counted.
    for (content_type, body) in [
        (
            "application/json",
            r#"{"id":"/subscriptions/s","properties":{"tier":"Hot"}}"#,
        ),
        ("application/json", r#"{"id": "/subscriptions/s", "#),
        (
            "text/plain",
            "no secrets here, https://st.blob.core.windows.net/",
        ),
    ] {
        let outcome = masker()
            .mask(
                &MaskContext::new(&read_op()).content_type(Some(content_type)),
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(outcome, MaskOutcome::unchanged(), "{body}");
    }
}

#[test]
fn json_keeps_order_spacing_and_numbers() {
    let body = "{\n  \"z\": 1.10,\n  \"a\": [1e2, 12345678901234567890123],\n  \"s\": \"Pwd=x\"\n}";
    let (masked, _) = mask("application/json", body);
    assert_eq!(
        masked,
        format!(
            "{{\n  \"z\": 1.10,\n  \"a\": [1e2, 12345678901234567890123],\n  \"s\": \"Pwd={}\"\n}}",
            REDACTED
        )
    );
}

#[test]
fn detectors_can_be_turned_off() {
    let masker = JsonMasker::builder(TokenKey::new([11u8; 32]).unwrap())
        .detectors(false)
        .build();
    let body = format!(r#"{{"cs":"AccountKey={STORAGE_KEY}"}}"#);
    let outcome = masker
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("application/json")),
            body.as_bytes(),
        )
        .unwrap();
    assert_eq!(outcome, MaskOutcome::unchanged());
}

#[test]
fn binary_and_empty_bodies_are_left_alone() {
    let secret = format!("AccountKey={STORAGE_KEY}");
    let outcome = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("application/octet-stream")),
            secret.as_bytes(),
        )
        .unwrap();
    assert_eq!(outcome, MaskOutcome::unchanged());
    let outcome = masker()
        .mask(
            &MaskContext::new(&read_op()).content_type(Some("application/json")),
            b"  \n",
        )
        .unwrap();
    assert_eq!(outcome, MaskOutcome::unchanged());
}

#[test]
fn malformed_json_that_need_not_be_masked_is_scanned_as_text() {
    let body = format!("{{\"cs\": \"AccountKey={STORAGE_KEY}\", oops}}");
    let (masked, outcome) = mask("application/json", &body);
    assert!(!masked.contains(STORAGE_KEY));
    assert_eq!(outcome.paths, ["$ (AccountKey)"]);
}
