//! The Blob service of the seeded storage accounts, served for hosts
//! `{account}.blob.localhost[:port]` and `{account}.blob.core.windows.net`:
//! containers and block blobs in memory, answered in Storage's XML.
//!
//! It authenticates as Storage does: an Entra bearer token for
//! `https://storage.azure.com`, or a Shared Key signature checked against
//! the account's key1 or key2 (the keys `listKeys` returns). The signature
//! check is written here from the Storage REST docs, apart from the
//! gateway's signer, so that one is tested against a second reading of the
//! spec. Refusals are Storage's: 401 `NoAuthenticationInformation` /
//! `InvalidAuthenticationInfo`, 403 `AuthenticationFailed`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_lc_rs::hmac;
use axum::body::Body;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use crate::inventory::key;
use crate::routing::{PathSegments, query_pairs, query_value};
use crate::state::SimState;
use crate::storage::account_key;

/// The audience of Entra tokens for Storage.
pub const STORAGE_AUDIENCE: &str = "https://storage.azure.com";

/// A blob's content.
#[derive(Clone, Debug)]
pub(crate) struct Blob {
    data: Bytes,
    content_type: String,
}

/// Containers by (account, container), each with its blobs by name.
pub(crate) type Containers = BTreeMap<(String, String), BTreeMap<String, Blob>>;

/// The account a host names, if it is a Blob service host.
pub(crate) fn account_from_host(host: &str) -> Option<String> {
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let host = host.to_ascii_lowercase();
    let account = host
        .strip_suffix(".blob.localhost")
        .or_else(|| host.strip_suffix(".blob.core.windows.net"))?;
    (!account.is_empty() && !account.contains('.')).then(|| account.to_owned())
}

/// A Storage error: status, code and message, in XML.
struct StorageError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> StorageError {
    StorageError {
        status,
        code,
        message: message.into(),
    }
}

/// Answers one Blob service request to `account`.
pub(crate) fn handle(state: &SimState, account: &str, head: &Parts, body: &Bytes) -> Response {
    let exists = state
        .inventory()
        .storage_accounts
        .contains_key(&key(account));
    let answer = if exists {
        authenticate(state, account, head, body.len())
            .and_then(|()| serve(state, account, head, body))
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        ))
    };
    answer.unwrap_or_else(|e| {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}\nRequestId:{}</Message></Error>",
            e.code,
            e.message,
            uuid::Uuid::new_v4()
        );
        let mut response = xml_response(e.status, xml);
        response
            .headers_mut()
            .insert("x-ms-error-code", HeaderValue::from_static(e.code));
        if e.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer authorization_uri=https://login.microsoftonline.com/22222222-2222-2222-2222-222222222222/oauth2/authorize resource_id=https://storage.azure.com",
                ),
            );
        }
        response
    })
}

fn authenticate(
    state: &SimState,
    account: &str,
    head: &Parts,
    length: usize,
) -> Result<(), StorageError> {
    let failed = |message: &str| {
        error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            format!("Server failed to authenticate the request. {message}"),
        )
    };
    let Some(value) = head
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        ));
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return state
            .config
            .accepts(token.trim(), STORAGE_AUDIENCE)
            .map_err(|_| {
                error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationInfo",
                    "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
                )
            })
            .map(drop);
    }
    let Some((named, signature)) = value
        .strip_prefix("SharedKey ")
        .and_then(|rest| rest.split_once(':'))
    else {
        return Err(failed(
            "Make sure the value of Authorization header is formed correctly including the signature.",
        ));
    };
    if named != account {
        return Err(failed(
            "The account in the Authorization header is not this account.",
        ));
    }
    check_date(&head.headers).map_err(|m| failed(&m))?;
    let to_sign = canonical_request(account, head, length);
    let valid = ["key1", "key2"].iter().any(|key_name| {
        STANDARD
            .decode(account_key(account, key_name))
            .ok()
            .and_then(|key| {
                let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
                let expected = STANDARD.decode(signature).ok()?;
                hmac::verify(&key, to_sign.as_bytes(), &expected).ok()
            })
            .is_some()
    });
    if valid {
        Ok(())
    } else {
        Err(failed(&format!(
            "Make sure the value of Authorization header is formed correctly including the signature.\nThe MAC signature found in the HTTP request is not the same as any computed signature. Server used following string to sign: '{to_sign}'."
        )))
    }
}

/// `x-ms-date` (else `Date`) within 15 minutes of now, as Storage requires.
fn check_date(headers: &HeaderMap) -> Result<(), String> {
    let date = headers
        .get("x-ms-date")
        .or_else(|| headers.get(http::header::DATE))
        .and_then(|v| v.to_str().ok())
        .ok_or("The x-ms-date or Date header is required.")?;
    let when = httpdate::parse_http_date(date)
        .map_err(|_| "The x-ms-date header is not an RFC 1123 date.")?;
    let now = SystemTime::now();
    let skew = now
        .duration_since(when)
        .or_else(|_| when.duration_since(now))
        .unwrap_or_default();
    if skew > Duration::from_secs(15 * 60) {
        return Err("Request date header too old or too far in the future.".into());
    }
    Ok(())
}

/// The Shared Key string-to-sign of a request, per the Storage REST docs.
fn canonical_request(account: &str, head: &Parts, length: usize) -> String {
    let get = |name: &str| {
        head.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut lines = vec![head.method.as_str().to_owned()];
    for name in ["content-encoding", "content-language"] {
        lines.push(get(name));
    }
    lines.push(if length == 0 {
        String::new()
    } else {
        length.to_string()
    });
    for name in [
        "content-md5",
        "content-type",
        "date",
        "if-modified-since",
        "if-match",
        "if-none-match",
        "if-unmodified-since",
        "range",
    ] {
        lines.push(get(name));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let mut ms_headers: Vec<(String, String)> = head
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-"))
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or_default();
            (
                name.as_str().to_owned(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    ms_headers.sort();
    for (name, value) in ms_headers {
        text.push_str(&format!("{name}:{value}\n"));
    }
    text.push_str(&format!("/{account}{}", head.uri.path()));
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in query_pairs(head.uri.query()) {
        params.entry(name.to_lowercase()).or_default().push(value);
    }
    for (name, mut values) in params {
        values.sort();
        text.push_str(&format!("\n{name}:{}", values.join(",")));
    }
    text
}

fn xml_response(status: StatusCode, xml: String) -> Response {
    let mut response = Response::new(Body::from(xml));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    stamp(response)
}

fn stamp(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-ms-request-id", id);
    }
    response
        .headers_mut()
        .insert("x-ms-version", HeaderValue::from_static("2023-11-03"));
    response
}

fn status_only(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    stamp(response)
}

fn serve(
    state: &SimState,
    account: &str,
    head: &Parts,
    body: &Bytes,
) -> Result<Response, StorageError> {
    let path = PathSegments::parse(head.uri.path());
    let query = query_pairs(head.uri.query());
    let comp = query_value(&query, "comp");
    let restype = query_value(&query, "restype");
    let method = &head.method;
    let mut inventory = state.inventory();
    let containers = &mut inventory.blob_containers;
    let account = key(account);
    let no_container = |name: &str| {
        error(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            format!("The specified container does not exist. ({name})"),
        )
    };
    match (path.as_slice(), method, restype, comp) {
        ([], &Method::GET, None, Some("list")) => {
            let names: String = containers
                .keys()
                .filter(|(a, _)| *a == account)
                .map(|(_, c)| format!("<Container><Name>{c}</Name><Properties /></Container>"))
                .collect();
            Ok(xml_response(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"https://{account}.blob.core.windows.net/\"><Containers>{names}</Containers><NextMarker /></EnumerationResults>"
                ),
            ))
        }
        ([], &Method::POST, Some("service"), Some("userdelegationkey")) => Ok(xml_response(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><UserDelegationKey><SignedOid>00000000-0000-0000-0000-000000000000</SignedOid><SignedTid>{}</SignedTid><SignedService>b</SignedService><SignedVersion>2023-11-03</SignedVersion><Value>{}</Value></UserDelegationKey>",
                crate::TENANT_ID,
                // 32 bytes, as Storage's: shorter than an account key, so
                // no shape detector would catch it; the masking rule must.
                STANDARD.encode(<sha2::Sha256 as sha2::Digest>::digest(format!(
                    "airlock-sim/{account}/delegation"
                )))
            ),
        )),
        ([container], &Method::PUT, Some("container"), None) => {
            let entry = (account, container.to_ascii_lowercase());
            if containers.contains_key(&entry) {
                return Err(error(
                    StatusCode::CONFLICT,
                    "ContainerAlreadyExists",
                    "The specified container already exists.",
                ));
            }
            containers.insert(entry, BTreeMap::new());
            Ok(status_only(StatusCode::CREATED))
        }
        ([container], &Method::DELETE, Some("container"), None) => containers
            .remove(&(account, container.to_ascii_lowercase()))
            .map(|_| status_only(StatusCode::ACCEPTED))
            .ok_or_else(|| no_container(container)),
        ([container], &Method::GET, Some("container"), Some("list")) => {
            let blobs = containers
                .get(&(account, container.to_ascii_lowercase()))
                .ok_or_else(|| no_container(container))?;
            let items: String = blobs
                .iter()
                .map(|(name, blob)| {
                    format!(
                        "<Blob><Name>{name}</Name><Properties><Content-Length>{}</Content-Length><Content-Type>{}</Content-Type><BlobType>BlockBlob</BlobType></Properties></Blob>",
                        blob.data.len(),
                        blob.content_type
                    )
                })
                .collect();
            Ok(xml_response(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ContainerName=\"{container}\"><Blobs>{items}</Blobs><NextMarker /></EnumerationResults>"
                ),
            ))
        }
        ([container, blob @ ..], method, None, None) if !blob.is_empty() => {
            let name = blob.join("/");
            let blobs = containers
                .get_mut(&(account, container.to_ascii_lowercase()))
                .ok_or_else(|| no_container(container))?;
            let not_found = || {
                error(
                    StatusCode::NOT_FOUND,
                    "BlobNotFound",
                    "The specified blob does not exist.",
                )
            };
            match *method {
                Method::PUT => {
                    if head
                        .headers
                        .get("x-ms-blob-type")
                        .is_none_or(|t| t != "BlockBlob")
                    {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            "MissingRequiredHeader",
                            "An HTTP header that's mandatory for this request is not specified. (x-ms-blob-type)",
                        ));
                    }
                    let content_type = head
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    blobs.insert(
                        name,
                        Blob {
                            data: body.clone(),
                            content_type,
                        },
                    );
                    Ok(status_only(StatusCode::CREATED))
                }
                Method::GET | Method::HEAD => {
                    let blob = blobs.get(&name).ok_or_else(not_found)?;
                    let mut response = if *method == Method::GET {
                        Response::new(Body::from(blob.data.clone()))
                    } else {
                        Response::new(Body::empty())
                    };
                    let headers = response.headers_mut();
                    if let Ok(value) = HeaderValue::from_str(&blob.content_type) {
                        headers.insert(CONTENT_TYPE, value);
                    }
                    headers.insert(
                        http::header::CONTENT_LENGTH,
                        HeaderValue::from(blob.data.len()),
                    );
                    headers.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
                    Ok(stamp(response))
                }
                Method::DELETE => blobs
                    .remove(&name)
                    .map(|_| status_only(StatusCode::ACCEPTED))
                    .ok_or_else(not_found),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

fn unsupported() -> StorageError {
    error(
        StatusCode::BAD_REQUEST,
        "UnsupportedHttpVerb",
        "The resource doesn't support the specified HTTP verb or query (the simulator serves containers and block blobs).",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_hosts_name_their_account() {
        assert_eq!(
            account_from_host("demostore.blob.localhost:8080").as_deref(),
            Some("demostore")
        );
        assert_eq!(
            account_from_host("DemoStore.blob.core.windows.net").as_deref(),
            Some("demostore")
        );
        assert_eq!(account_from_host("demo-vault.vault.localhost"), None);
        assert_eq!(account_from_host("a.b.blob.localhost"), None);
    }
}
