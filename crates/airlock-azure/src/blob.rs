//! Blob service data plane (`{account}.blob.core.windows.net`) -> Storage
//! RBAC operations.
//!
//! Names follow the Storage "permissions for calling data operations" table:
//!
//! | request | operation |
//! |---|---|
//! | `GET /?comp=list` (list containers) | `blobServices/containers/read` |
//! | `GET`, `PUT /?restype=service&comp=properties`; `GET /?comp=stats`, `/?restype=account&comp=properties` | `blobServices/read`, `blobServices/write` |
//! | `POST /?restype=service&comp=userdelegationkey` | `blobServices/generateUserDelegationKey/action` |
//! | `PUT`, `DELETE /{c}?restype=container` | `containers/write`, `containers/delete` |
//! | `GET /{c}?restype=container[&comp=metadata\|acl]`; `PUT …&comp=metadata\|acl`; `PUT …&comp=lease` | `containers/read`; `containers/write`; `containers/lease/action` |
//! | `GET /{c}?restype=container&comp=list` (list blobs) | `containers/blobs/read` |
//! | `GET`, `HEAD /{c}/{blob}[?comp=metadata\|blocklist\|pagelist\|…]` | `containers/blobs/read` |
//! | `PUT /{c}/{blob}[?comp=block\|blocklist\|page\|appendblock\|metadata\|properties\|tier\|snapshot\|lease\|undelete]` | `containers/blobs/write` |
//! | `GET`, `PUT /{c}/{blob}?comp=tags` | `containers/blobs/tags/read`, `…/tags/write` |
//! | `DELETE /{c}/{blob}` (`?versionid=…`; `?deletetype=permanent`) | `containers/blobs/delete` (`…/deleteBlobVersion/action`; `…/permanentDelete/action`) |
//!
//! (each under `Microsoft.Storage/storageAccounts/`). Every one is a data
//! operation here, container ones included: policy names them in
//! `data_actions` (ARM's `…/blobServices/default/containers/{c}` requests are
//! management actions of the same names). Anything else is unknown, and so
//! denied unless a rule names it exactly: blob batches (`comp=batch`, which
//! carry other requests), copies whose source Azure would fetch
//! (`x-ms-copy-source`), queries by tag.
//!
//! # Scopes
//!
//! As for Key Vault, a host names the account but not its subscription, so
//! scopes are tenant-rooted: `/providers/Microsoft.Storage/storageAccounts/{account}/blobServices/default`
//! for the service, `…/containers/{c}` and `…/containers/{c}/blobs/{blob}` below it.

use std::borrow::Cow;

use airlock_core::{Operation, Plane, ResourceScope};
use http::{HeaderMap, Method};

use crate::ClassifyError;
use crate::arm_path::is;
use crate::hygiene::{Segment, unique_param};

const PREFIX: &str = "Microsoft.Storage/storageAccounts/";

/// The operation of a Blob service request to `account`.
pub(crate) fn operation(
    method: &Method,
    account: &str,
    segments: &[Segment<'_>],
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Operation, ClassifyError> {
    let comp = unique_param(query, "comp")?;
    let restype = unique_param(query, "restype")?;
    let deletetype = unique_param(query, "deletetype")?;
    // Deleting a version erases history that backs the blob up: an action
    // of its own in Azure's RBAC.
    let version = unique_param(query, "versionid")?.is_some();
    let service = format!("/providers/{PREFIX}{account}/blobServices/default");
    let copies = headers.contains_key("x-ms-copy-source");
    let named = if copies {
        None
    } else {
        action(
            method,
            segments,
            comp.as_deref(),
            restype.as_deref(),
            deletetype.as_deref(),
            version,
        )
    };
    let scope = match segments {
        [] => service,
        [container] => format!("{service}/containers/{container}"),
        [container, blob @ ..] => {
            let blob: Vec<&str> = blob.iter().map(Cow::as_ref).collect();
            format!("{service}/containers/{container}/blobs/{}", blob.join("/"))
        }
    };
    let operation = match named {
        Some(action) => Operation::new(
            format!("{PREFIX}{action}"),
            Plane::Data,
            ResourceScope::new(scope),
        ),
        None => {
            let path: Vec<&str> = segments.iter().map(Cow::as_ref).collect();
            let comp = comp.map(|c| format!("?comp={c}")).unwrap_or_default();
            let copy = if copies { " (x-ms-copy-source)" } else { "" };
            Operation::unknown(
                format!("{method} /{}{comp}{copy}", path.join("/")),
                Plane::Data,
                ResourceScope::new(scope),
            )
        }
    };
    Ok(
        match headers.get("x-ms-version").and_then(|v| v.to_str().ok()) {
            Some(version) => operation.with_api_version(version),
            None => operation,
        },
    )
}

fn action(
    method: &Method,
    segments: &[Segment<'_>],
    comp: Option<&str>,
    restype: Option<&str>,
    deletetype: Option<&str>,
    version: bool,
) -> Option<&'static str> {
    let read = *method == Method::GET || *method == Method::HEAD;
    let put = *method == Method::PUT;
    let comp_is = |name: &str| comp.is_some_and(|c| is(c, name));
    let restype_is = |name: &str| restype.is_some_and(|r| is(r, name));
    match segments {
        [] => match () {
            () if read && comp_is("list") && restype.is_none() => {
                Some("blobServices/containers/read")
            }
            () if read
                && ((restype_is("service") && comp_is("properties"))
                    || (restype.is_none() && comp_is("stats"))
                    || (restype_is("account") && comp_is("properties"))) =>
            {
                Some("blobServices/read")
            }
            () if put && restype_is("service") && comp_is("properties") => {
                Some("blobServices/write")
            }
            () if *method == Method::POST
                && restype_is("service")
                && comp_is("userdelegationkey") =>
            {
                Some("blobServices/generateUserDelegationKey/action")
            }
            () => None,
        },
        [_container] if restype_is("container") => match comp {
            None if put => Some("blobServices/containers/write"),
            None if *method == Method::DELETE => Some("blobServices/containers/delete"),
            None if read => Some("blobServices/containers/read"),
            Some(_) if read && (comp_is("metadata") || comp_is("acl")) => {
                Some("blobServices/containers/read")
            }
            Some(_) if put && (comp_is("metadata") || comp_is("acl")) => {
                Some("blobServices/containers/write")
            }
            Some(_) if put && comp_is("lease") => Some("blobServices/containers/lease/action"),
            Some(_) if read && comp_is("list") => Some("blobServices/containers/blobs/read"),
            _ => None,
        },
        [_container, _blob, ..] if restype.is_none() => {
            const READS: [&str; 4] = ["metadata", "blocklist", "pagelist", "properties"];
            const WRITES: [&str; 10] = [
                "block",
                "blocklist",
                "page",
                "appendblock",
                "metadata",
                "properties",
                "tier",
                "snapshot",
                "lease",
                "undelete",
            ];
            match comp {
                Some(_) if comp_is("tags") && read => {
                    Some("blobServices/containers/blobs/tags/read")
                }
                Some(_) if comp_is("tags") && put => {
                    Some("blobServices/containers/blobs/tags/write")
                }
                None if read => Some("blobServices/containers/blobs/read"),
                Some(c) if read && READS.iter().any(|r| is(c, r)) => {
                    Some("blobServices/containers/blobs/read")
                }
                None if put => Some("blobServices/containers/blobs/write"),
                Some(c) if put && WRITES.iter().any(|w| is(c, w)) => {
                    Some("blobServices/containers/blobs/write")
                }
                None if *method == Method::DELETE => match deletetype {
                    None if version => {
                        Some("blobServices/containers/blobs/deleteBlobVersion/action")
                    }
                    None => Some("blobServices/containers/blobs/delete"),
                    Some(d) if is(d, "permanent") => {
                        Some("blobServices/containers/blobs/permanentDelete/action")
                    }
                    Some(_) => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hygiene::path_segments;

    fn op(method: &Method, path: &str, query: Option<&str>) -> Operation {
        op_with(method, path, query, &HeaderMap::new()).unwrap()
    }

    fn op_with(
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Operation, ClassifyError> {
        let segments = path_segments(path).unwrap();
        operation(method, "demostore", &segments, query, headers)
    }

    const SERVICE: &str =
        "/providers/Microsoft.Storage/storageAccounts/demostore/blobServices/default";

    #[test]
    fn requests_name_the_storage_data_operations() {
        for (method, path, query, name, scope) in [
            (
                Method::GET,
                "/",
                Some("comp=list"),
                "blobServices/containers/read",
                "",
            ),
            (
                Method::POST,
                "/",
                Some("restype=service&comp=userdelegationkey"),
                "blobServices/generateUserDelegationKey/action",
                "",
            ),
            (
                Method::PUT,
                "/logs",
                Some("restype=container"),
                "blobServices/containers/write",
                "/containers/logs",
            ),
            (
                Method::DELETE,
                "/logs",
                Some("restype=container"),
                "blobServices/containers/delete",
                "/containers/logs",
            ),
            (
                Method::GET,
                "/logs",
                Some("restype=container&comp=list&prefix=a"),
                "blobServices/containers/blobs/read",
                "/containers/logs",
            ),
            (
                Method::GET,
                "/logs/2026/a.txt",
                None,
                "blobServices/containers/blobs/read",
                "/containers/logs/blobs/2026/a.txt",
            ),
            (
                Method::HEAD,
                "/logs/a.txt",
                None,
                "blobServices/containers/blobs/read",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::PUT,
                "/logs/a.txt",
                None,
                "blobServices/containers/blobs/write",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::PUT,
                "/logs/a.txt",
                Some("comp=block&blockid=AAAA"),
                "blobServices/containers/blobs/write",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::PUT,
                "/logs/a.txt",
                Some("COMP=Tags"),
                "blobServices/containers/blobs/tags/write",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::DELETE,
                "/logs/a.txt",
                None,
                "blobServices/containers/blobs/delete",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::DELETE,
                "/logs/a.txt",
                Some("versionid=2026-01-01T00%3A00%3A00.0000000Z"),
                "blobServices/containers/blobs/deleteBlobVersion/action",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::DELETE,
                "/logs/a.txt",
                Some("VersionId=2026-01-01T00:00:00.0000000Z&deletetype=permanent"),
                "blobServices/containers/blobs/permanentDelete/action",
                "/containers/logs/blobs/a.txt",
            ),
            (
                Method::DELETE,
                "/logs/a.txt",
                Some("deletetype=permanent"),
                "blobServices/containers/blobs/permanentDelete/action",
                "/containers/logs/blobs/a.txt",
            ),
        ] {
            let operation = op(&method, path, query);
            assert_eq!(
                operation.name(),
                format!("Microsoft.Storage/storageAccounts/{name}"),
                "{method} {path}?{query:?}"
            );
            assert_eq!(operation.scope().as_str(), format!("{SERVICE}{scope}"));
            assert_eq!(operation.plane(), Plane::Data);
        }
    }

    /// Requests that carry or fetch something else are not named, so only a
    /// rule naming them exactly allows them.
    #[test]
    fn batches_copies_and_unknown_components_are_unknown() {
        assert!(op(&Method::POST, "/", Some("comp=batch")).is_unknown());
        assert!(op(&Method::POST, "/logs", Some("restype=container&comp=batch")).is_unknown());
        assert!(op(&Method::GET, "/", Some("comp=blobs&where=x")).is_unknown());
        assert!(op(&Method::PUT, "/logs/a.txt", Some("comp=frobnicate")).is_unknown());
        assert!(op(&Method::DELETE, "/logs/a.txt", Some("deletetype=other")).is_unknown());
        let mut copy = HeaderMap::new();
        copy.insert(
            "x-ms-copy-source",
            "https://evil.example/x".parse().unwrap(),
        );
        let copied = op_with(&Method::PUT, "/logs/a.txt", None, &copy).unwrap();
        assert!(copied.is_unknown());
        assert!(
            copied.name().contains("x-ms-copy-source"),
            "{}",
            copied.name()
        );
    }

    #[test]
    fn a_repeated_comp_is_refused() {
        let error = op_with(
            &Method::GET,
            "/logs",
            Some("restype=container&comp=list&comp=acl"),
            &HeaderMap::new(),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            ClassifyError::DuplicateParameter { name: "comp" }
        ));
    }

    #[test]
    fn the_version_header_is_the_api_version() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-version", "2023-11-03".parse().unwrap());
        let operation = op_with(&Method::GET, "/logs/a", None, &headers).unwrap();
        assert_eq!(operation.api_version(), Some("2023-11-03"));
    }
}
