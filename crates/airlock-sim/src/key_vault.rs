//! The Key Vault secrets API, served for hosts `{vault}.vault.localhost[:port]`
//! and `{vault}.vault.azure.net`.
//!
//! Like the real service, a request without a token gets the 401 challenge
//! that Azure SDKs probe with; secret ids are absolute URLs on the simulator's
//! own vault URL, never on the request's `Host`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::response::Response;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, HeaderName, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::TENANT_ID;
use crate::arm::echo_client_request_id;
use crate::arm_error::ArmError;
use crate::auth::{Credential, credential};
use crate::inventory::key;
use crate::issuer::TokenRejection;
use crate::reply::Reply;
use crate::routing::{PathSegments, query_pairs, query_value};
use crate::state::SimState;
use crate::timestamp::unix_seconds;

/// How long a deleted secret stays recoverable.
const RECOVERABLE_DAYS: u64 = 90;

/// A vault and its secrets (keyed lower-case: Key Vault names are case-insensitive).
#[derive(Debug)]
pub(crate) struct Vault {
    name: String,
    secrets: BTreeMap<String, Secret>,
    deleted: BTreeMap<String, DeletedSecret>,
}

#[derive(Debug)]
struct Secret {
    name: String,
    /// Oldest first; the last is current.
    versions: Vec<SecretVersion>,
}

#[derive(Debug)]
struct SecretVersion {
    version: String,
    value: String,
    content_type: Option<String>,
    tags: Map<String, Value>,
    enabled: bool,
    created: u64,
    updated: u64,
}

#[derive(Debug)]
struct DeletedSecret {
    secret: Secret,
    deleted: u64,
}

impl Vault {
    /// An empty vault.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            secrets: BTreeMap::new(),
            deleted: BTreeMap::new(),
        }
    }

    /// Adds a new version of secret `name`; returns the secret's key.
    pub(crate) fn set_secret(
        &mut self,
        name: &str,
        value: String,
        content_type: Option<String>,
        tags: Map<String, Value>,
        enabled: bool,
        now: SystemTime,
    ) -> String {
        let now = unix_seconds(now);
        let version = SecretVersion {
            version: uuid::Uuid::new_v4().simple().to_string(),
            value,
            content_type,
            tags,
            enabled,
            created: now,
            updated: now,
        };
        let secret = self.secrets.entry(key(name)).or_insert_with(|| Secret {
            name: name.to_owned(),
            versions: Vec::new(),
        });
        secret.versions.push(version);
        key(name)
    }
}

/// The vault a host names, if it is a Key Vault host.
pub(crate) fn vault_from_host(host: &str) -> Option<String> {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    let vault = host
        .strip_suffix(".vault.localhost")
        .or_else(|| host.strip_suffix(".vault.azure.net"))?;
    (!vault.is_empty() && !vault.contains('.')).then(|| vault.to_owned())
}

/// A parsed Key Vault request, as handlers see it.
struct VaultRequest<'a> {
    method: &'a Method,
    vault: String,
    vault_url: String,
    body: &'a Bytes,
}

type Handler = fn(&SimState, &VaultRequest<'_>, &[&str]) -> Result<Reply, ArmError>;

struct Route {
    pattern: &'static str,
    methods: &'static [Method],
    handler: Handler,
}

/// Every Key Vault path the simulator serves; the first match wins.
const ROUTES: &[Route] = &[
    Route {
        pattern: "secrets",
        methods: &[Method::GET],
        handler: list_secrets,
    },
    Route {
        pattern: "secrets/{name}/versions",
        methods: &[Method::GET],
        handler: list_versions,
    },
    Route {
        pattern: "secrets/{name}",
        methods: &[Method::GET, Method::PUT, Method::DELETE],
        handler: secret,
    },
    Route {
        pattern: "secrets/{name}/{version}",
        methods: &[Method::GET],
        handler: secret_version,
    },
    Route {
        pattern: "deletedsecrets",
        methods: &[Method::GET],
        handler: list_deleted,
    },
    Route {
        pattern: "deletedsecrets/{name}",
        methods: &[Method::GET, Method::DELETE],
        handler: deleted_secret,
    },
    Route {
        pattern: "deletedsecrets/{name}/recover",
        methods: &[Method::POST],
        handler: recover,
    },
];

/// Answers one Key Vault request for `vault`.
pub(crate) fn handle(state: &SimState, vault: &str, head: &Parts, body: &Bytes) -> Response {
    let reply = answer(state, vault, head, body).unwrap_or_else(ArmError::into_reply);
    tracing::debug!(method = %head.method, vault, path = head.uri.path(), status = reply.status.as_u16(), "Key Vault");
    let mut response = reply.into_response();
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-ms-keyvault-service-version"),
        HeaderValue::from_static("1.9.2064.1"),
    );
    headers.insert(
        HeaderName::from_static("x-ms-keyvault-region"),
        HeaderValue::from_static("westeurope"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(id) = uuid::Uuid::new_v4().to_string().parse() {
        headers.insert(HeaderName::from_static("x-ms-request-id"), id);
    }
    echo_client_request_id(headers, &head.headers);
    response
}

fn answer(state: &SimState, vault: &str, head: &Parts, body: &Bytes) -> Result<Reply, ArmError> {
    if !state.inventory().vaults.contains_key(&key(vault)) {
        let known: Vec<String> = state
            .inventory()
            .vaults
            .values()
            .map(|v| v.name.clone())
            .collect();
        return Err(ArmError::new(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            format!(
                "The vault '{vault}' does not exist in this simulated Azure; it serves: {}.",
                known.join(", ")
            ),
        ));
    }
    match credential(&head.headers) {
        Credential::Missing | Credential::Malformed => {
            return Err(unauthorized(
                "AKV10000: Request is missing a Bearer or PoP token.",
            ));
        }
        Credential::Bearer(token) => {
            state
                .config
                .accepts(token, "https://vault.azure.net")
                .map_err(|why| {
                    unauthorized(match why {
                        TokenRejection::Expired => "AKV10013: Token has expired.",
                        TokenRejection::WrongAudience => {
                            "AKV10022: Invalid audience. Expected https://vault.azure.net."
                        }
                        TokenRejection::Invalid => {
                            "The access token is not valid for this key vault."
                        }
                    })
                })
                .map(drop)?;
        }
    }
    let query = query_pairs(head.uri.query());
    match query_value(&query, "api-version") {
        None | Some("") => {
            return Err(bad_parameter(
                "The 'api-version' query parameter is missing; Key Vault requires it (for example ?api-version=7.4).",
            ));
        }
        Some(version) if !supported_api_version(version) => {
            return Err(bad_parameter(format!(
                "The specified version ({version}) is not recognized. Consider using the latest supported version (7.5)."
            )));
        }
        Some(_) => {}
    }
    let request = VaultRequest {
        method: &head.method,
        vault: key(vault),
        vault_url: state.config.vault_url(&key(vault)),
        body,
    };
    let segments = PathSegments::parse(head.uri.path());
    for route in ROUTES {
        if let Some(captures) = segments.matches(route.pattern) {
            if !route.methods.contains(request.method) {
                return Err(ArmError::method_not_allowed(request.method, route.methods));
            }
            return (route.handler)(state, &request, &captures);
        }
    }
    Err(ArmError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "The path '{}' is not served by this simulated Key Vault (it serves /secrets and /deletedsecrets).",
            head.uri.path()
        ),
    ))
}

/// `7.x` (with an optional `-preview` suffix) or `2016-10-01`.
fn supported_api_version(version: &str) -> bool {
    let release = version
        .split_once("-preview")
        .map_or(version, |(release, _)| release);
    // Key Vault's releases are 2016-10-01, 7.x, and since 2025 dated again
    // (the Python SDK 4.12 sends 2026-04-01).
    let dated_since_2025 = release.len() == 10
        && release.as_bytes()[4] == b'-'
        && release.as_bytes()[7] == b'-'
        && release[..4].parse::<u32>().is_ok_and(|year| year >= 2025)
        && release[5..7]
            .parse::<u32>()
            .is_ok_and(|m| (1..=12).contains(&m))
        && release[8..]
            .parse::<u32>()
            .is_ok_and(|d| (1..=31).contains(&d));
    release == "2016-10-01"
        || dated_since_2025
        || release
            .strip_prefix("7.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()))
}

/// 401 with the challenge Azure SDKs read the tenant and resource from.
fn unauthorized(message: &str) -> ArmError {
    ArmError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message).header(
        WWW_AUTHENTICATE,
        format!("Bearer authorization=\"https://login.windows.net/{TENANT_ID}\", resource=\"https://vault.azure.net\""),
    )
}

fn bad_parameter(message: impl Into<String>) -> ArmError {
    ArmError::new(StatusCode::BAD_REQUEST, "BadParameter", message)
}

fn secret_not_found(name_or_id: &str) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        format!(
            "A secret with (name/id) {name_or_id} was not found in this key vault. If you recently deleted this secret \
             you may be able to recover it using the correct recovery command. For help resolving this issue, \
             please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
    )
}

fn attributes(version: &SecretVersion) -> Value {
    json!({
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    })
}

/// A secret bundle: `id`, `attributes`, `tags`, `contentType`, and `value` when asked for.
fn bundle(vault_url: &str, secret: &Secret, version: &SecretVersion, with_value: bool) -> Value {
    let mut bundle = json!({
        "id": format!("{vault_url}/secrets/{}/{}", secret.name, version.version),
        "attributes": attributes(version),
        "tags": version.tags,
    });
    if with_value {
        bundle["value"] = json!(version.value);
    }
    if let Some(content_type) = &version.content_type {
        bundle["contentType"] = json!(content_type);
    }
    bundle
}

fn deleted_bundle(vault_url: &str, deleted: &DeletedSecret) -> Option<Value> {
    let current = deleted.secret.versions.last()?;
    let mut value = bundle(vault_url, &deleted.secret, current, false);
    value["recoveryId"] = json!(format!(
        "{vault_url}/deletedsecrets/{}",
        deleted.secret.name
    ));
    value["deletedDate"] = json!(deleted.deleted);
    value["scheduledPurgeDate"] = json!(deleted.deleted + RECOVERABLE_DAYS * 86_400);
    Some(value)
}

/// Runs `f` on the request's vault (which [`answer`] has checked exists).
fn with_vault<T>(
    state: &SimState,
    request: &VaultRequest<'_>,
    f: impl FnOnce(&mut Vault) -> Result<T, ArmError>,
) -> Result<T, ArmError> {
    let mut inventory = state.inventory();
    let vault = inventory.vaults.get_mut(&request.vault).ok_or_else(|| {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "The vault no longer exists.",
        )
    })?;
    f(vault)
}

fn name_capture<'a>(captures: &[&'a str]) -> &'a str {
    captures.first().copied().unwrap_or_default()
}

/// `GET /secrets`: metadata only.
fn list_secrets(
    state: &SimState,
    request: &VaultRequest<'_>,
    _: &[&str],
) -> Result<Reply, ArmError> {
    with_vault(state, request, |vault| {
        let items: Vec<Value> = vault
            .secrets
            .values()
            .filter_map(|secret| {
                let current = secret.versions.last()?;
                let mut item = bundle(&request.vault_url, secret, current, false);
                item["id"] = json!(format!("{}/secrets/{}", request.vault_url, secret.name));
                Some(item)
            })
            .collect();
        Ok(one_page(&items))
    })
}

/// `GET /secrets/{name}/versions`: metadata only.
fn list_versions(
    state: &SimState,
    request: &VaultRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let name = name_capture(captures);
    with_vault(state, request, |vault| {
        let secret = vault
            .secrets
            .get(&key(name))
            .ok_or_else(|| secret_not_found(name))?;
        let items: Vec<Value> = secret
            .versions
            .iter()
            .map(|version| bundle(&request.vault_url, secret, version, false))
            .collect();
        Ok(one_page(&items))
    })
}

/// `GET|PUT|DELETE /secrets/{name}`.
fn secret(
    state: &SimState,
    request: &VaultRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let name = name_capture(captures);
    match *request.method {
        Method::PUT => set_secret(state, request, name),
        Method::DELETE => delete_secret(state, request, name),
        _ => with_vault(state, request, |vault| {
            let secret = vault
                .secrets
                .get(&key(name))
                .ok_or_else(|| secret_not_found(name))?;
            let current = secret
                .versions
                .last()
                .ok_or_else(|| secret_not_found(name))?;
            readable(bundle(&request.vault_url, secret, current, true), current)
        }),
    }
}

/// `GET /secrets/{name}/{version}`.
fn secret_version(
    state: &SimState,
    request: &VaultRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let name = name_capture(captures);
    let wanted = captures.get(1).copied().unwrap_or_default();
    with_vault(state, request, |vault| {
        let not_found = || secret_not_found(&format!("{name}/{wanted}"));
        let secret = vault.secrets.get(&key(name)).ok_or_else(not_found)?;
        let version = secret
            .versions
            .iter()
            .find(|v| v.version.eq_ignore_ascii_case(wanted))
            .ok_or_else(not_found)?;
        readable(bundle(&request.vault_url, secret, version, true), version)
    })
}

/// 200 with the bundle, or 403 for a disabled secret.
fn readable(bundle: Value, version: &SecretVersion) -> Result<Reply, ArmError> {
    if version.enabled {
        Ok(Reply::json(StatusCode::OK, bundle))
    } else {
        Err(ArmError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
        ))
    }
}

/// `PUT /secrets/{name}`: a new version.
fn set_secret(state: &SimState, request: &VaultRequest<'_>, name: &str) -> Result<Reply, ArmError> {
    let valid_name = (1..=127).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid_name {
        return Err(bad_parameter(format!(
            "The request URI contains an invalid name: {name}. Secret names are 1-127 characters of letters, digits and '-'."
        )));
    }
    let body: Map<String, Value> = match serde_json::from_slice(request.body) {
        Ok(Value::Object(body)) => body,
        Ok(_) => return Err(bad_parameter("The request body must be a JSON object.")),
        Err(error) => {
            return Err(bad_parameter(format!(
                "The request body is not valid JSON: {error}"
            )));
        }
    };
    let value = body
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_parameter("Secret value is required."))?;
    let content_type = body
        .get("contentType")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let tags = body
        .get("tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let enabled = body
        .get("attributes")
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    with_vault(state, request, |vault| {
        if vault.deleted.contains_key(&key(name)) {
            return Err(ArmError::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; \
                     in this state, the secret can only be recovered or purged."
                ),
            ));
        }
        let secret_key = vault.set_secret(
            name,
            value.to_owned(),
            content_type,
            tags,
            enabled,
            SystemTime::now(),
        );
        let secret = vault
            .secrets
            .get(&secret_key)
            .ok_or_else(|| secret_not_found(name))?;
        let current = secret
            .versions
            .last()
            .ok_or_else(|| secret_not_found(name))?;
        Ok(Reply::json(
            StatusCode::OK,
            bundle(&request.vault_url, secret, current, true),
        ))
    })
}

/// `DELETE /secrets/{name}`: soft delete, recoverable for 90 days.
fn delete_secret(
    state: &SimState,
    request: &VaultRequest<'_>,
    name: &str,
) -> Result<Reply, ArmError> {
    with_vault(state, request, |vault| {
        let secret = vault
            .secrets
            .remove(&key(name))
            .ok_or_else(|| secret_not_found(name))?;
        let deleted = DeletedSecret {
            secret,
            deleted: unix_seconds(SystemTime::now()),
        };
        let body =
            deleted_bundle(&request.vault_url, &deleted).ok_or_else(|| secret_not_found(name))?;
        vault.deleted.insert(key(name), deleted);
        Ok(Reply::json(StatusCode::OK, body))
    })
}

/// `GET /deletedsecrets`.
fn list_deleted(
    state: &SimState,
    request: &VaultRequest<'_>,
    _: &[&str],
) -> Result<Reply, ArmError> {
    with_vault(state, request, |vault| {
        let items: Vec<Value> = vault
            .deleted
            .values()
            .filter_map(|deleted| {
                let mut item = deleted_bundle(&request.vault_url, deleted)?;
                item["id"] = json!(format!(
                    "{}/secrets/{}",
                    request.vault_url, deleted.secret.name
                ));
                Some(item)
            })
            .collect();
        Ok(one_page(&items))
    })
}

/// `GET /deletedsecrets/{name}`, or `DELETE` to purge it.
fn deleted_secret(
    state: &SimState,
    request: &VaultRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let name = name_capture(captures);
    let not_found = || {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            format!("Deleted Secret not found: {name}"),
        )
    };
    with_vault(state, request, |vault| {
        if *request.method == Method::DELETE {
            vault.deleted.remove(&key(name)).ok_or_else(not_found)?;
            return Ok(Reply::empty(StatusCode::NO_CONTENT));
        }
        let deleted = vault.deleted.get(&key(name)).ok_or_else(not_found)?;
        Ok(Reply::json(
            StatusCode::OK,
            deleted_bundle(&request.vault_url, deleted).ok_or_else(not_found)?,
        ))
    })
}

/// `POST /deletedsecrets/{name}/recover`.
fn recover(
    state: &SimState,
    request: &VaultRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    let name = name_capture(captures);
    with_vault(state, request, |vault| {
        let deleted = vault.deleted.remove(&key(name)).ok_or_else(|| {
            ArmError::new(
                StatusCode::NOT_FOUND,
                "SecretNotFound",
                format!("Deleted Secret not found: {name}"),
            )
        })?;
        let body = deleted
            .secret
            .versions
            .last()
            .map(|v| bundle(&request.vault_url, &deleted.secret, v, false));
        vault.secrets.insert(key(name), deleted.secret);
        Ok(Reply::json(
            StatusCode::OK,
            body.unwrap_or_else(|| json!({})),
        ))
    })
}

/// A list answer on one page, as Key Vault sends it (`nextLink` null).
fn one_page(items: &[Value]) -> Reply {
    Reply::json(StatusCode::OK, json!({ "value": items, "nextLink": null }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_hosts() {
        assert_eq!(
            vault_from_host("demo-vault.vault.localhost:8080").as_deref(),
            Some("demo-vault")
        );
        assert_eq!(
            vault_from_host("Demo-Vault.VAULT.azure.net").as_deref(),
            Some("demo-vault")
        );
        assert_eq!(vault_from_host("management.azure.com"), None);
        assert_eq!(vault_from_host("127.0.0.1:443"), None);
        assert_eq!(vault_from_host(".vault.localhost"), None);
        assert_eq!(vault_from_host("a.b.vault.localhost"), None);
        assert_eq!(vault_from_host("demo-vault.localhost:1"), None);
    }

    #[test]
    fn api_versions() {
        for ok in [
            "7.4",
            "7.5",
            "7.6-preview.2",
            "2016-10-01",
            "7.0",
            "2025-07-01",
            "2026-04-01",
        ] {
            assert!(supported_api_version(ok), "{ok}");
        }
        for bad in [
            "8.0",
            "7.",
            "7.x",
            "2021-04-01",
            "latest",
            "2026-13-01",
            "2026-4-01",
        ] {
            assert!(!supported_api_version(bad), "{bad}");
        }
    }
}
