//! Long-running operations: their state, their polling URLs, and the two ways
//! clients poll them.
//!
//! An operation reports `InProgress` for the configured number of polls (of
//! either URL) and then completes: its effect is applied to the inventory and
//! it reports `Succeeded` from then on.
//!
//! - `Azure-AsyncOperation` (`…/asyncoperations/{id}`, `…/operations/{id}`):
//!   200 `{"status":"InProgress"|"Succeeded",…}`.
//! - `Location` (`…/operationResults/{id}`): 202 while in progress, then the
//!   operation's final answer (the resource for a create, an empty 200 for a delete).

use std::time::SystemTime;

use http::StatusCode;
use serde_json::json;

use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::inventory::{Inventory, ProvisioningState, key};
use crate::reply::Reply;
use crate::state::{SimConfig, SimState};
use crate::timestamp::rfc3339;
use crate::{SUBSCRIPTION_ID, storage};

/// The provider namespaces whose operations the simulator tracks.
pub(crate) const STORAGE: &str = "Microsoft.Storage";
/// See [`STORAGE`].
pub(crate) const COMPUTE: &str = "Microsoft.Compute";
/// See [`STORAGE`]; resource group deletion.
pub(crate) const RESOURCES: &str = "Microsoft.Resources";

/// What an operation does to the inventory when it completes.
#[derive(Clone, Debug)]
pub(crate) enum Completion {
    /// The storage account (key) becomes `Succeeded`.
    CreateStorageAccount { account: String },
    /// The virtual machine (group key, name key) disappears.
    DeleteVirtualMachine { group: String, machine: String },
    /// The resource group and everything in it disappear.
    DeleteResourceGroup { group: String },
}

/// One long-running operation.
#[derive(Debug)]
pub(crate) struct LongRunningOperation {
    id: String,
    namespace: &'static str,
    location: String,
    api_version: String,
    polls_left: u32,
    started: SystemTime,
    finished: Option<SystemTime>,
    completion: Completion,
}

/// The URLs a client polls, absolute on the simulator's base.
#[derive(Debug)]
pub(crate) struct OperationUrls {
    /// `Azure-AsyncOperation`, where the provider offers one.
    pub(crate) status: Option<String>,
    /// `Location`.
    pub(crate) result: String,
}

impl LongRunningOperation {
    /// The operation's polling URLs.
    pub(crate) fn urls(&self, config: &SimConfig) -> OperationUrls {
        let base = format!("{}/subscriptions/{SUBSCRIPTION_ID}", config.arm_url);
        let (id, location, api) = (&self.id, &self.location, &self.api_version);
        match self.namespace {
            RESOURCES => OperationUrls {
                status: None,
                result: format!("{base}/operationresults/{id}?api-version={api}"),
            },
            namespace => {
                let status_kind = if namespace == STORAGE {
                    "asyncoperations"
                } else {
                    "operations"
                };
                let provider = format!("{base}/providers/{namespace}/locations/{location}");
                OperationUrls {
                    status: Some(format!("{provider}/{status_kind}/{id}?api-version={api}")),
                    result: format!("{provider}/operationResults/{id}?api-version={api}"),
                }
            }
        }
    }

    /// Adds `Location`, `Azure-AsyncOperation` (if any) and `Retry-After: 0` to `reply`.
    pub(crate) fn polling_headers(&self, config: &SimConfig, reply: Reply) -> Reply {
        let urls = self.urls(config);
        reply.polling(&urls.result, urls.status.as_deref())
    }
}

impl Inventory {
    /// Starts an operation; returns it for its URLs.
    pub(crate) fn start_operation(
        &mut self,
        config: &SimConfig,
        namespace: &'static str,
        location: &str,
        api_version: &str,
        completion: Completion,
    ) -> &LongRunningOperation {
        let id = uuid::Uuid::new_v4().to_string();
        let operation = LongRunningOperation {
            id: id.clone(),
            namespace,
            location: location.to_ascii_lowercase(),
            api_version: api_version.to_owned(),
            polls_left: config.lro_polls,
            started: SystemTime::now(),
            finished: None,
            completion,
        };
        self.operations.entry(id).or_insert(operation)
    }

    /// Counts one poll of `id` in `namespace`; completes the operation when its polls are used up.
    fn poll_operation(
        &mut self,
        namespace: &str,
        id: &str,
    ) -> Result<&LongRunningOperation, ArmError> {
        let not_found = || {
            ArmError::new(
                StatusCode::NOT_FOUND,
                "OperationNotFound",
                format!("The operation '{id}' could not be found."),
            )
        };
        let operation = self.operations.get_mut(&key(id)).ok_or_else(not_found)?;
        if !operation.namespace.eq_ignore_ascii_case(namespace) {
            return Err(not_found());
        }
        let completed = if operation.finished.is_some() {
            None
        } else if operation.polls_left > 0 {
            operation.polls_left -= 1;
            None
        } else {
            operation.finished = Some(SystemTime::now());
            Some(operation.completion.clone())
        };
        if let Some(completion) = completed {
            self.complete(&completion);
        }
        self.operations.get(&key(id)).ok_or_else(not_found)
    }

    fn complete(&mut self, completion: &Completion) {
        match completion {
            Completion::CreateStorageAccount { account } => {
                if let Some(account) = self.storage_accounts.get_mut(account) {
                    account.provisioning = ProvisioningState::Succeeded;
                }
            }
            Completion::DeleteVirtualMachine { group, machine } => {
                self.virtual_machines
                    .remove(&(group.clone(), machine.clone()));
            }
            Completion::DeleteResourceGroup { group } => self.remove_group(group),
        }
    }
}

/// `GET …/Microsoft.Storage/locations/{l}/asyncoperations/{id}`.
pub(crate) fn storage_status(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    status(state, STORAGE, captures)
}

/// `GET …/Microsoft.Compute/locations/{l}/operations/{id}`.
pub(crate) fn compute_status(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    status(state, COMPUTE, captures)
}

/// `GET …/Microsoft.Storage/locations/{l}/operationResults/{id}`.
pub(crate) fn storage_result(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    result(state, STORAGE, captures)
}

/// `GET …/Microsoft.Compute/locations/{l}/operationResults/{id}`.
pub(crate) fn compute_result(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    result(state, COMPUTE, captures)
}

/// `GET /subscriptions/{s}/operationresults/{id}` (resource group deletion).
pub(crate) fn group_result(
    state: &SimState,
    _: &ArmRequest<'_>,
    captures: &[&str],
) -> Result<Reply, ArmError> {
    result(state, RESOURCES, captures)
}

/// The operation id is the last capture.
fn operation_id<'a>(captures: &[&'a str]) -> &'a str {
    captures.last().copied().unwrap_or_default()
}

fn status(state: &SimState, namespace: &str, captures: &[&str]) -> Result<Reply, ArmError> {
    let mut inventory = state.inventory();
    let operation = inventory.poll_operation(namespace, operation_id(captures))?;
    let status_url = operation.urls(&state.config).status.unwrap_or_default();
    let path = status_url
        .strip_prefix(&state.config.arm_url)
        .unwrap_or(&status_url);
    let mut body = json!({
        "id": path.split('?').next().unwrap_or_default(),
        "name": operation.id,
        "status": if operation.finished.is_some() { "Succeeded" } else { "InProgress" },
        "startTime": rfc3339(operation.started),
    });
    if let Some(finished) = operation.finished {
        body["endTime"] = json!(rfc3339(finished));
        return Ok(Reply::json(StatusCode::OK, body));
    }
    Ok(Reply::json(StatusCode::OK, body).header(http::header::RETRY_AFTER, "0"))
}

fn result(state: &SimState, namespace: &str, captures: &[&str]) -> Result<Reply, ArmError> {
    let mut inventory = state.inventory();
    let operation = inventory.poll_operation(namespace, operation_id(captures))?;
    if operation.finished.is_none() {
        return Ok(operation.polling_headers(&state.config, Reply::empty(StatusCode::ACCEPTED)));
    }
    let completion = operation.completion.clone();
    match completion {
        Completion::CreateStorageAccount { account } => {
            Ok(match inventory.storage_accounts.get(&account) {
                Some(account) => Reply::json(StatusCode::OK, storage::account_json(account)),
                None => Reply::empty(StatusCode::OK),
            })
        }
        Completion::DeleteVirtualMachine { .. } | Completion::DeleteResourceGroup { .. } => {
            Ok(Reply::empty(StatusCode::OK))
        }
    }
}
