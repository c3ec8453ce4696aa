//! Starting, inspecting and stopping the simulated Azure.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::arm_error::ArmError;
use crate::recorded::{RecordedRequest, request_host};
use crate::state::{SimConfig, SimState};
use crate::{arm, blob, key_vault};

/// The largest request body the simulator reads.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The simulated Azure; start one with [`SimAzure::builder`].
#[derive(Debug)]
pub struct SimAzure;

impl SimAzure {
    /// A builder with the defaults: any bearer token, pages of 2, one
    /// `InProgress` poll per long-running operation, `127.0.0.1:0`.
    pub fn builder() -> SimBuilder {
        SimBuilder {
            expected_token: None,
            trusted_issuer: None,
            page_size: 2,
            lro_polls: 1,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            record_requests: true,
        }
    }
}

/// Settings for a simulated Azure; see [`SimAzure::builder`].
pub struct SimBuilder {
    expected_token: Option<String>,
    trusted_issuer: Option<crate::issuer::TokenVerifier>,
    page_size: usize,
    lro_polls: u32,
    listen: SocketAddr,
    record_requests: bool,
}

impl fmt::Debug for SimBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimBuilder")
            .field(
                "expected_token",
                &self.expected_token.as_ref().map(|_| "<redacted>"),
            )
            .field("page_size", &self.page_size)
            .field("lro_polls", &self.lro_polls)
            .field("listen", &self.listen)
            .field("record_requests", &self.record_requests)
            .finish()
    }
}

impl SimBuilder {
    /// Accept only `Authorization: Bearer <token>` (ARM and Key Vault); by
    /// default any non-empty bearer token is accepted.
    #[must_use]
    pub fn expected_token(mut self, token: impl Into<String>) -> Self {
        self.expected_token = Some(token.into());
        self
    }

    /// Also accept the tokens `issuer` mints (its
    /// [`verifier`](crate::IssuerHandle::verifier)), checked as Azure checks
    /// them: signature, audience (`https://management.azure.com` for ARM,
    /// `https://vault.azure.net` for Key Vault) and expiry, with Azure's
    /// 401s (`ExpiredAuthenticationToken`, …) for the rest.
    #[must_use]
    pub fn trust_issuer(mut self, issuer: crate::issuer::TokenVerifier) -> Self {
        self.trusted_issuer = Some(issuer);
        self
    }

    /// Items per page of paged lists (storage accounts); default 2, at least 1.
    #[must_use]
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// How many polls report `InProgress` before a long-running operation
    /// completes; default 1, 0 completes on the first poll.
    #[must_use]
    pub fn lro_polls(mut self, polls: u32) -> Self {
        self.lro_polls = polls;
        self
    }

    /// The address to listen on; default `127.0.0.1:0` (a free port).
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Whether to record requests for [`SimHandle::requests`]; default on.
    /// Turn it off for long-running load, where the record would only grow.
    #[must_use]
    pub fn record_requests(mut self, record: bool) -> Self {
        self.record_requests = record;
        self
    }

    /// Binds the listener and serves in a background task.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound.
    pub async fn start(self) -> io::Result<SimHandle> {
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let config = SimConfig {
            expected_token: self.expected_token,
            trusted_issuer: self.trusted_issuer,
            page_size: self.page_size.max(1),
            lro_polls: self.lro_polls,
            record_requests: self.record_requests,
            arm_url: format!("http://{}", reachable(addr)),
            port: addr.port(),
        };
        let (stop, stopping) = watch::channel(false);
        let state = Arc::new(SimState::new(config, stopping.clone()));
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let mut stopping = stopping;
            let signal = async move {
                // Also ends when the handle is dropped (the sender goes away).
                let _ = stopping.wait_for(|stop| *stop).await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await
            {
                tracing::warn!(%error, "the simulated Azure stopped serving");
            }
        });
        tracing::info!(%addr, "simulated Azure listening");
        Ok(SimHandle {
            addr,
            state,
            stop,
            task,
        })
    }
}

/// The address clients connect to: loopback in place of an unspecified address.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// The simulator's router: one fallback handler that records each request,
/// then answers it as Key Vault (by host) or ARM.
fn router(state: Arc<SimState>) -> Router {
    Router::new().fallback(serve_request).with_state(state)
}

async fn serve_request(State(state): State<Arc<SimState>>, request: Request) -> Response {
    let (head, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await;
    state.record(RecordedRequest::new(
        &head,
        body.as_ref().map_or_else(|_| Bytes::new(), Bytes::clone),
    ));
    state.wait_response_delay().await;
    let Ok(body) = body else {
        let error = ArmError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestContentTooLarge",
            format!(
                "The request body could not be read: it is over {MAX_BODY_BYTES} bytes or was cut off."
            ),
        );
        return arm::respond(error.into_reply(), &head.headers);
    };
    let host = request_host(&head);
    if let Some(account) = host.as_deref().and_then(blob::account_from_host) {
        return blob::handle(&state, &account, &head, &body);
    }
    match host.as_deref().and_then(key_vault::vault_from_host) {
        Some(vault) => key_vault::handle(&state, &vault, &head, &body),
        None => arm::handle(&state, &head, &body),
    }
}

/// A running simulated Azure. Dropping it stops the server too; prefer
/// [`SimHandle::shutdown`], which waits for it.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("arm_url", &self.arm_url())
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the ARM endpoint, and the base of every
    /// absolute ARM URL the simulator returns.
    pub fn arm_url(&self) -> String {
        self.state.config.arm_url.clone()
    }

    /// `http://{vault}.vault.localhost:PORT`, with a literal `{vault}` placeholder.
    pub fn key_vault_endpoint(&self) -> String {
        self.state.config.vault_url("{vault}")
    }

    /// `http://{account}.blob.localhost:PORT`, with a literal `{account}` placeholder.
    pub fn blob_endpoint(&self) -> String {
        format!("http://{{account}}.blob.localhost:{}", self.addr.port())
    }

    /// The account key `listKeys` returns as `key1` for `account`.
    pub fn storage_account_key(&self, account: &str) -> String {
        crate::storage::account_key(account, "key1")
    }

    /// `http://{vault}.vault.localhost:PORT` for one vault.
    pub fn vault_url(&self, vault: &str) -> String {
        self.state.config.vault_url(vault)
    }

    /// Every request received (ARM and Key Vault), in order, including refused ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Assigns `role` to the principal with object id `principal` at
    /// `scope` (and below) on ARM, for tokens of the trusted issuer. From
    /// then on that principal may do only what its assignments allow, and
    /// gets ARM's 403 `AuthorizationFailed` for the rest; principals without
    /// assignments stay unrestricted.
    pub fn assign_role(&self, principal: &str, role: crate::Role, scope: &str) {
        self.state.assign_role(crate::rbac::RoleAssignment {
            principal: principal.to_owned(),
            role,
            scope: scope.to_owned(),
        });
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    /// Delays every answer by `delay` (after recording the request); zero by default.
    /// A shutdown cuts the delay short.
    pub fn set_response_delay(&self, delay: Duration) {
        self.state.set_response_delay(delay);
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the simulated Azure's task failed");
        }
    }
}
