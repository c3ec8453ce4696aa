//! Allow, deny, or ask: policy over classified Azure operations.
//!
//! [`PolicyLayer`] asks a [`PolicyEngine`] about each request's
//! [`Principal`](airlock_core::Principal) and [`Operation`](airlock_core::Operation)
//! and puts the [`Decision`](airlock_core::Decision) in its extensions; a
//! denial is answered right there with a 403 that names the operation and
//! the rule, so an agent can tell its user what was blocked and why.
//!
//! The built-in engine, [`Policy`], reads rules in the vocabulary of Azure
//! role definitions:
//!
//! ```toml
//! [[rule]]
//! name = "read-everything"
//! effect = "allow"                     # allow | deny | approve
//! actions = ["*/read"]                 # Azure wildcards: '*' spans '/', case-insensitive
//! data_actions = ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"]
//! scopes = ["/subscriptions/*/resourceGroups/prod-*"]   # resource-id prefixes; '*' within a segment
//! [rule.principals]                    # omit: everyone. Fields AND, values OR.
//! groups = ["00000000-0000-0000-0000-0000000000c1"]
//! kinds = ["managed_identity"]         # also ids, app_ids, roles
//!
//! [[rule]]
//! name = "storage-needs-approval"
//! effect = "approve"
//! actions = ["Microsoft.Storage/storageAccounts/write"]
//! [rule.approval]
//! groups = ["00000000-0000-0000-0000-0000000000c2"]
//! min_approvals = 1
//! justification = true
//! hold = "90s"                         # how long a held request waits
//! ttl = "1h"                           # how long an approval stays valid
//! wait = "async"                       # hold | async; default: async for PUT/PATCH/DELETE
//!
//! [[rule]]
//! name = "no-vm-delete"
//! effect = "deny"
//! actions = ["Microsoft.Compute/virtualMachines/delete"]
//! reason = "deleting virtual machines is not delegated to agents"
//! ```
//!
//! Deny beats approve beats allow; an operation no rule allows is denied
//! (`no-matching-rule`). A request that carries other operations (`/batch`,
//! deployments, moves, resource-group deletes) is allowed only if every one
//! is. Operations that stand for many (`*/delete`: everything inside a
//! deleted resource group) are denied by any deny rule they *overlap*, in
//! name and scope, and allowed only by rules that *cover* them entirely.
//! Requests the classifier did not understand are allowed only by a rule
//! that names them exactly.
//!
//! ```
//! use airlock_core::{Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
//! use airlock_policy::{Policy, PolicyEngine};
//!
//! let policy = Policy::parse(r#"
//!     [[rule]]
//!     name = "reads"
//!     effect = "allow"
//!     actions = ["*/read"]
//!
//!     [[rule]]
//!     name = "no-vm-delete"
//!     effect = "deny"
//!     actions = ["Microsoft.Compute/virtualMachines/delete"]
//! "#, "policy.toml").unwrap();
//!
//! let agent = Principal::builder("agent-1", PrincipalKind::ManagedIdentity).build();
//! let vm = ResourceScope::new("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1");
//! let read = Operation::new("Microsoft.Compute/virtualMachines/read", Plane::Management, vm.clone());
//! let delete = Operation::new("Microsoft.Compute/virtualMachines/delete", Plane::Management, vm);
//!
//! assert_eq!(policy.decide(&agent, &read), Decision::Allow { rule: "reads".into() });
//! assert_eq!(policy.decide(&agent, &delete).rule(), "no-vm-delete");
//! ```

mod answer_rule;
mod engine;
mod error;
mod future;
mod layer;
mod policy;
mod quota;
mod quota_layer;
mod quota_metrics;
mod quota_store;
mod reload;
pub mod replay;
mod rule;
mod service;
pub mod suggest;

pub use answer_rule::{AnswerFacts, AnswerRule};
pub use engine::PolicyEngine;
pub use error::PolicyError;
pub use future::ResponseFuture;
pub use layer::PolicyLayer;
pub use policy::{Explanation, Facet, NO_MATCHING_RULE, OBSERVE_MODE, Policy, RuleTrace};
pub use quota::{Limit, Per, Quota};
pub use quota_layer::{QuotaLayer, QuotaService};
pub use quota_metrics::QuotaMetrics;
pub use quota_store::{
    MemoryQuotaStore, QuotaError, QuotaKey, QuotaStore, Take, Taken, Usage, granted,
};
pub use reload::PolicyFile;
pub use rule::{Effect, Skip};
pub use service::PolicyService;
