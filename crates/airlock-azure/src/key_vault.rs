//! Key Vault data plane (`{vault}.vault.azure.net`) -> data actions.
//!
//! Names follow Azure's Key Vault data actions (`Microsoft.KeyVault/vaults/…`):
//!
//! | request | data action |
//! |---|---|
//! | `GET /secrets/{n}[/{v}]` | `secrets/getSecret/action` |
//! | `GET /secrets`, `/secrets/{n}/versions`, `/deletedsecrets[/{n}]` | `secrets/readMetadata/action` |
//! | `PUT /secrets/{n}`; `PATCH /secrets/{n}[/{v}]` | `secrets/setSecret/action`; `secrets/update/action` |
//! | `DELETE /secrets/{n}`; `DELETE /deletedsecrets/{n}` | `secrets/delete`; `secrets/purge/action` |
//! | `POST /secrets/{n}/backup`, `/secrets/restore`, `/deletedsecrets/{n}/recover` | `secrets/{backup,restore,recover}/action` |
//! | `GET /keys[/{n}[/{v}]]`, `/keys/{n}/versions`, `/deletedkeys[/{n}]` | `keys/read` |
//! | `POST /keys/{n}/create`; `PUT /keys/{n}`; `PATCH /keys/{n}[/{v}]` | `keys/create/action`; `keys/import/action`; `keys/update/action` |
//! | `POST /keys/{n}[/{v}]/{encrypt,decrypt,wrapkey,unwrapkey,sign,verify,release}` | `keys/{encrypt,decrypt,wrap,unwrap,sign,verify,release}/action` |
//! | `POST /keys/{n}/rotate`; `GET`/`PUT /keys/{n}/rotationpolicy` | `keys/rotate/action`; `keyrotationpolicies/{read,write}` |
//! | `GET /certificates[/{n}[/{v}]]`, `…/policy`, `…/pending` | `certificates/read` |
//! | `POST /certificates/{n}/{create,import}`, `…/pending/merge` | `certificates/{create,import,create}/action` |
//! | `/certificates/issuers[/{n}]`; `/certificates/contacts` | `certificatecas/{read,write,delete}`; `certificatecontacts/write` |
//!
//! (`keys`, `certificates`: `delete`, `backup`, `restore`, `recover`, `purge`
//! as for secrets.)
//!
//! # Scopes
//!
//! A vault's host names the vault but not its subscription or resource
//! group, so the scope is a synthetic, tenant-rooted id:
//! `/providers/Microsoft.KeyVault/vaults/{vault}` for the vault (lists,
//! restores), and `…/vaults/{vault}/secrets/{name}` (or `keys/{name}`,
//! `certificates/{name}`, `certificatecas/{issuer}`) for one object. Policy
//! scopes for vault data are written in that form.

use airlock_core::{Operation, Plane, ResourceScope};
use http::Method;

use crate::arm_path::is;
use crate::hygiene::Segment;

/// The objects a vault holds, in the scope and the data-action names.
#[derive(Clone, Copy)]
enum Object {
    Secrets,
    Keys,
    Certificates,
}

impl Object {
    fn as_str(self) -> &'static str {
        match self {
            Object::Secrets => "secrets",
            Object::Keys => "keys",
            Object::Certificates => "certificates",
        }
    }
    /// The data action to read one (`getSecret` reveals the value; listing is metadata).
    fn read_metadata(self) -> &'static str {
        match self {
            Object::Secrets => "secrets/readMetadata/action",
            Object::Keys => "keys/read",
            Object::Certificates => "certificates/read",
        }
    }
}

/// The data action of a request to `vault`, or an unknown operation.
pub(crate) fn operation(method: &Method, vault: &str, segments: &[Segment<'_>]) -> Operation {
    let vault_id = format!("/providers/Microsoft.KeyVault/vaults/{vault}");
    match data_action(method, segments) {
        Some((action, target)) => {
            let scope = match target {
                Target::Vault => vault_id,
                Target::Object(kind, name) => format!("{vault_id}/{kind}/{name}"),
            };
            Operation::new(
                format!("Microsoft.KeyVault/vaults/{action}"),
                Plane::Data,
                ResourceScope::new(scope),
            )
        }
        None => {
            let path = crate::arm_path::resource_id(segments);
            let scope = if segments.is_empty() {
                vault_id
            } else {
                format!("{vault_id}{path}")
            };
            Operation::unknown(
                format!("{method} {path}"),
                Plane::Data,
                ResourceScope::new(scope),
            )
        }
    }
}

/// What a data action acts on.
enum Target<'s> {
    /// The whole vault (lists, restores of a backup blob).
    Vault,
    /// One object: its kind's scope segment and its name.
    Object(&'static str, &'s str),
}

fn data_action<'s>(method: &Method, segments: &'s [Segment<'_>]) -> Option<(String, Target<'s>)> {
    const COLLECTIONS: [(&str, Object, bool); 6] = [
        ("secrets", Object::Secrets, false),
        ("keys", Object::Keys, false),
        ("certificates", Object::Certificates, false),
        ("deletedsecrets", Object::Secrets, true),
        ("deletedkeys", Object::Keys, true),
        ("deletedcertificates", Object::Certificates, true),
    ];
    let (collection, rest) = segments.split_first()?;
    let (object, deleted) = COLLECTIONS
        .iter()
        .find(|(name, _, _)| is(collection, name))
        .map(|&(_, object, deleted)| (object, deleted))?;
    let kind = object.as_str();
    let read = *method == Method::GET || *method == Method::HEAD;
    let post = *method == Method::POST;
    let on = |action: &str, name: &'s str| Some((action.to_owned(), Target::Object(kind, name)));
    let own = |verb: &str, name: &'s str| on(&format!("{kind}/{verb}"), name);

    if deleted {
        return match rest {
            [] if read => Some((object.read_metadata().to_owned(), Target::Vault)),
            [name] if read => on(object.read_metadata(), name),
            [name] if *method == Method::DELETE => own("purge/action", name),
            [name, recover] if post && is(recover, "recover") => own("recover/action", name),
            _ => None,
        };
    }

    if let Object::Certificates = object
        && let Some(found) = certificate_settings(method, rest)
    {
        return found;
    }

    match rest {
        [] if read => Some((object.read_metadata().to_owned(), Target::Vault)),
        [restore] if post && is(restore, "restore") => {
            Some((format!("{kind}/restore/action"), Target::Vault))
        }
        [name] => match *method {
            Method::GET | Method::HEAD => match object {
                Object::Secrets => own("getSecret/action", name),
                _ => on(object.read_metadata(), name),
            },
            Method::PUT => match object {
                Object::Secrets => own("setSecret/action", name),
                Object::Keys => own("import/action", name),
                Object::Certificates => None,
            },
            Method::PATCH => own("update/action", name),
            Method::DELETE => own("delete", name),
            _ => None,
        },
        [name, versions] if read && is(versions, "versions") => on(object.read_metadata(), name),
        [name, action] if post => match object {
            _ if is(action, "backup") => own("backup/action", name),
            Object::Keys | Object::Certificates if is(action, "create") => {
                own("create/action", name)
            }
            Object::Certificates if is(action, "import") => own("import/action", name),
            Object::Keys if is(action, "rotate") => own("rotate/action", name),
            // Without a version the latest one is used.
            Object::Keys => key_crypto(action).and_then(|a| own(a, name)),
            _ => None,
        },
        [name, policy] if is(policy, "rotationpolicy") && matches!(object, Object::Keys) => {
            match *method {
                Method::GET => on("keyrotationpolicies/read", name),
                Method::PUT | Method::PATCH => on("keyrotationpolicies/write", name),
                _ => None,
            }
        }
        [name, _version] => match *method {
            Method::GET | Method::HEAD => match object {
                Object::Secrets => own("getSecret/action", name),
                _ => on(object.read_metadata(), name),
            },
            Method::PATCH => own("update/action", name),
            _ => None,
        },
        [name, _version, crypto] if post && matches!(object, Object::Keys) => {
            key_crypto(crypto).and_then(|a| own(a, name))
        }
        _ => None,
    }
}

/// Key operations: the path's verb (any case) -> the data action's.
fn key_crypto(verb: &str) -> Option<&'static str> {
    const CRYPTO: [(&str, &str); 7] = [
        ("encrypt", "encrypt/action"),
        ("decrypt", "decrypt/action"),
        ("wrapkey", "wrap/action"),
        ("unwrapkey", "unwrap/action"),
        ("sign", "sign/action"),
        ("verify", "verify/action"),
        ("release", "release/action"),
    ];
    CRYPTO
        .iter()
        .find(|(path, _)| verb.eq_ignore_ascii_case(path))
        .map(|&(_, action)| action)
}

/// Certificate issuers, contacts, policy and pending operations: the vault
/// reserves these names under `/certificates`.
fn certificate_settings<'s>(
    method: &Method,
    rest: &'s [Segment<'_>],
) -> Option<Option<(String, Target<'s>)>> {
    let read = *method == Method::GET || *method == Method::HEAD;
    let write = *method == Method::PUT || *method == Method::PATCH;
    let certificate = |action: &str, name: &'s str| {
        Some((
            format!("certificates/{action}"),
            Target::Object("certificates", name),
        ))
    };
    Some(match rest {
        [contacts] if is(contacts, "contacts") => {
            // Key Vault has one permission for contacts, reading included.
            match *method {
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE => {
                    Some(("certificatecontacts/write".to_owned(), Target::Vault))
                }
                _ => None,
            }
        }
        [issuers] if is(issuers, "issuers") => {
            read.then(|| ("certificatecas/read".to_owned(), Target::Vault))
        }
        [issuers, name] if is(issuers, "issuers") => {
            let verb = match *method {
                _ if read => "read",
                _ if write => "write",
                Method::DELETE => "delete",
                _ => return Some(None),
            };
            Some((
                format!("certificatecas/{verb}"),
                Target::Object("certificatecas", name),
            ))
        }
        [name, policy] if is(policy, "policy") => match *method {
            _ if read => certificate("read", name),
            Method::PATCH => certificate("update/action", name),
            _ => None,
        },
        [name, pending] if is(pending, "pending") => match *method {
            _ if read => certificate("read", name),
            Method::PATCH => certificate("update/action", name),
            Method::DELETE => certificate("delete", name),
            _ => None,
        },
        // Merging a signed certificate into a pending request needs the right to create.
        [name, pending, merge] if is(pending, "pending") && is(merge, "merge") => {
            if *method == Method::POST {
                certificate("create/action", name)
            } else {
                None
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(method: &Method, path: &str) -> Operation {
        let segments = crate::hygiene::path_segments(path).unwrap();
        operation(method, "kv1", &segments)
    }

    #[test]
    fn secret_values_and_metadata_are_different_actions() {
        let get = classify(&Method::GET, "/secrets/db-password");
        assert_eq!(
            get.name(),
            "Microsoft.KeyVault/vaults/secrets/getSecret/action"
        );
        assert_eq!(get.plane(), Plane::Data);
        assert_eq!(
            get.scope().as_str(),
            "/providers/Microsoft.KeyVault/vaults/kv1/secrets/db-password"
        );
        let list = classify(&Method::GET, "/secrets");
        assert_eq!(
            list.name(),
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
        );
        assert_eq!(
            list.scope().as_str(),
            "/providers/Microsoft.KeyVault/vaults/kv1"
        );
    }

    #[test]
    fn unknown_paths_stay_on_the_data_plane() {
        let op = classify(&Method::POST, "/rng");
        assert!(op.is_unknown());
        assert_eq!(op.plane(), Plane::Data);
        assert_eq!(op.name(), "POST /rng");
        assert_eq!(
            op.scope().as_str(),
            "/providers/Microsoft.KeyVault/vaults/kv1/rng"
        );
    }
}
