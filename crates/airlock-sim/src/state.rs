//! The simulator's shared state: configuration, inventory, recorded requests.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::inventory::Inventory;
use crate::recorded::RecordedRequest;

/// Settings fixed when the simulator starts.
use crate::issuer::TokenRejection;

#[derive(Debug)]
pub(crate) struct SimConfig {
    /// The only bearer token accepted, if set (with `trusted_issuer`: one
    /// more accepted token).
    pub(crate) expected_token: Option<String>,
    /// Tokens from this issuer are accepted when valid for the audience.
    pub(crate) trusted_issuer: Option<crate::issuer::TokenVerifier>,
    /// Items per page of a paged list.
    pub(crate) page_size: usize,
    /// Polls answered `InProgress` before a long-running operation completes.
    pub(crate) lro_polls: u32,
    /// Whether requests are recorded.
    pub(crate) record_requests: bool,
    /// `http://127.0.0.1:PORT`: the base of every absolute ARM URL the simulator writes.
    pub(crate) arm_url: String,
    /// The listening port.
    pub(crate) port: u16,
}

impl SimConfig {
    /// Whether `token` is accepted for `audience`, and why not; the
    /// caller's object id when the token is one of the trusted issuer's.
    pub(crate) fn accepts(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<Option<String>, TokenRejection> {
        if self.expected_token.as_deref() == Some(token) {
            return Ok(None);
        }
        match (&self.trusted_issuer, &self.expected_token) {
            (Some(issuer), _) => issuer
                .verify(token, audience)
                .map(|claims| claims["oid"].as_str().map(str::to_owned)),
            (None, None) => Ok(None),
            (None, Some(_)) => Err(TokenRejection::Invalid),
        }
    }

    /// `http://{vault}.vault.localhost:PORT`.
    pub(crate) fn vault_url(&self, vault: &str) -> String {
        format!("http://{vault}.vault.localhost:{}", self.port)
    }
}

/// Shared by every request.
#[derive(Debug)]
pub(crate) struct SimState {
    pub(crate) config: SimConfig,
    inventory: Mutex<Inventory>,
    requests: Mutex<Vec<RecordedRequest>>,
    response_delay: Mutex<Duration>,
    stopping: watch::Receiver<bool>,
    /// Role assignments ARM enforces.
    role_assignments: Mutex<Vec<crate::rbac::RoleAssignment>>,
    /// Custom role definitions created, by lower-cased id.
    role_definitions: Mutex<std::collections::HashMap<String, serde_json::Value>>,
}

/// Locks, carrying on after a panic elsewhere: the data stays usable for a simulator.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SimState {
    /// Seeded state; `stopping` turns true when the server shuts down.
    pub(crate) fn new(config: SimConfig, stopping: watch::Receiver<bool>) -> Self {
        Self {
            config,
            inventory: Mutex::new(Inventory::seeded(SystemTime::now())),
            requests: Mutex::new(Vec::new()),
            response_delay: Mutex::new(Duration::ZERO),
            stopping,
            role_assignments: Mutex::default(),
            role_definitions: Mutex::default(),
        }
    }

    /// A custom role definition created earlier.
    pub(crate) fn role_definition(&self, id: &str) -> Option<serde_json::Value> {
        lock(&self.role_definitions)
            .get(&id.to_ascii_lowercase())
            .cloned()
    }

    /// Creates or replaces a custom role definition.
    pub(crate) fn store_role_definition(&self, id: &str, definition: serde_json::Value) {
        lock(&self.role_definitions).insert(id.to_ascii_lowercase(), definition);
    }

    /// The role assignments, as they stand.
    pub(crate) fn role_assignments(&self) -> Vec<crate::rbac::RoleAssignment> {
        lock(&self.role_assignments).clone()
    }

    /// Adds a role assignment.
    pub(crate) fn assign_role(&self, assignment: crate::rbac::RoleAssignment) {
        lock(&self.role_assignments).push(assignment);
    }

    /// The inventory, locked. Never hold it across an `.await`.
    pub(crate) fn inventory(&self) -> MutexGuard<'_, Inventory> {
        lock(&self.inventory)
    }

    /// Records a request, when recording is on.
    pub(crate) fn record(&self, request: RecordedRequest) {
        if self.config.record_requests {
            lock(&self.requests).push(request);
        }
    }

    /// Every recorded request, in order.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// Forgets the recorded requests.
    pub(crate) fn clear_requests(&self) {
        lock(&self.requests).clear();
    }

    /// Sets the delay before answering.
    pub(crate) fn set_response_delay(&self, delay: Duration) {
        *lock(&self.response_delay) = delay;
    }

    /// Waits for the configured delay, or less if the server is shutting down.
    pub(crate) async fn wait_response_delay(&self) {
        let delay = *lock(&self.response_delay);
        if delay.is_zero() {
            return;
        }
        let mut stopping = self.stopping.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }
}
