//! Azure RBAC, as far as the simulated ARM enforces it: role assignments per
//! principal (`oid` of the token), at a scope and everything under it. A
//! principal with an assignment may do what its roles allow there and
//! nothing elsewhere, and gets ARM's own 403 `AuthorizationFailed`; a
//! principal with none is unrestricted (the gateway's own identity, which
//! stands for an Owner in the simulator).

use http::{Method, StatusCode};

use crate::arm_error::ArmError;

/// A built-in role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `*/read`.
    Reader,
    /// Everything.
    Contributor,
}

/// One role assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RoleAssignment {
    pub(crate) principal: String,
    pub(crate) role: Role,
    pub(crate) scope: String,
}

impl RoleAssignment {
    fn covers(&self, path: &str) -> bool {
        let scope = self.scope.trim_end_matches('/').to_ascii_lowercase();
        let path = path.to_ascii_lowercase();
        path.strip_prefix(&scope)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The RBAC action a request performs, as ARM names it in its 403.
fn action(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Types are every other segment after the namespace; a POST's last
    // segment (`listKeys`) is the action's name, in the same place.
    let resource_type = match segments
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
    {
        Some(at) if segments.len() > at + 2 => {
            let types: Vec<&str> = segments[at + 2..].iter().step_by(2).copied().collect();
            format!("{}/{}", segments[at + 1], types.join("/"))
        }
        _ if segments.len() >= 3 => "Microsoft.Resources/subscriptions/resourceGroups".to_owned(),
        _ => "Microsoft.Resources/subscriptions".to_owned(),
    };
    let verb = match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        Method::POST => "action",
        _ => "write",
    };
    format!("{resource_type}/{verb}")
}

/// Whether `principal`'s assignments (if it has any) allow `method` on `path`.
pub(crate) fn authorize(
    assignments: &[RoleAssignment],
    principal: &str,
    method: &Method,
    path: &str,
) -> Result<(), ArmError> {
    let mine: Vec<&RoleAssignment> = assignments
        .iter()
        .filter(|a| a.principal.eq_ignore_ascii_case(principal))
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    let read = matches!(*method, Method::GET | Method::HEAD);
    let allowed = mine
        .iter()
        .filter(|a| a.covers(path))
        .any(|a| a.role == Role::Contributor || read);
    if allowed {
        return Ok(());
    }
    let scope = path.trim_end_matches('/');
    Err(ArmError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{principal}' with object id '{principal}' does not have authorization to perform action '{}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            action(method, path)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RG: &str = "/subscriptions/s1/resourceGroups/demo-rg";

    #[test]
    fn a_reader_reads_under_its_scope_and_writes_nowhere() {
        let assignments = [RoleAssignment {
            principal: "reader".into(),
            role: Role::Reader,
            scope: RG.into(),
        }];
        let vm = format!("{RG}/providers/Microsoft.Compute/virtualMachines/vm1");
        assert!(authorize(&assignments, "READER", &Method::GET, &vm).is_ok());
        assert!(
            authorize(
                &assignments,
                "reader",
                &Method::GET,
                "/subscriptions/s1/resourceGroups/demo-rg2"
            )
            .is_err()
        );
        let denied = authorize(&assignments, "reader", &Method::DELETE, &vm).unwrap_err();
        assert_eq!(
            (denied.status(), denied.code()),
            (StatusCode::FORBIDDEN, "AuthorizationFailed")
        );
        assert!(
            denied
                .message()
                .contains("'Microsoft.Compute/virtualMachines/delete'"),
            "{}",
            denied.message()
        );
        let keys = authorize(
            &assignments,
            "reader",
            &Method::POST,
            &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa/listKeys"),
        )
        .unwrap_err();
        assert!(
            keys.message()
                .contains("'Microsoft.Storage/storageAccounts/listKeys/action'"),
            "{}",
            keys.message()
        );
        assert!(authorize(&assignments, "someone-else", &Method::DELETE, &vm).is_ok());
    }
}
