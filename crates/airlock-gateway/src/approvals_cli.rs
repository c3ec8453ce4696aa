//! `airlock approvals list|show|approve|deny`: the approvers' client for the
//! gateway's approvals API (`/api/approvals…` on the admin listener).
//!
//! The client speaks HTTPS with the gateway's own stack (hyper-util over
//! rustls, the system roots plus an optional `--ca-file`) and sends the
//! approver's Entra token as a bearer token; the token is never printed or
//! logged. Output is a table or a detail view, or the API's JSON with `--json`.
//!
//! Exit codes: 0 done; 2 refused (the API answered 4xx, or the command line
//! is unusable); 1 the gateway could not be reached or failed (5xx).
//!
//! ```no_run
//! # async fn run() -> Result<(), airlock_gateway::approvals_cli::CliError> {
//! use airlock_gateway::approvals_cli::{ApprovalsClient, ListState, render_list};
//!
//! let client = ApprovalsClient::new("https://localhost:8444", "eyJ0…", None)?;
//! let listed = client.list(ListState::Pending).await?;
//! print!("{}", render_list(&listed, ListState::Pending, std::time::SystemTime::now()).unwrap_or_default());
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_core::collect_limited;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::Full;
use humantime_serde::re::humantime;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use serde::Deserialize;
use serde_json::Value;

use crate::upstream::LocalhostResolver;

/// Where the admin listener is, unless `--admin-url`/`AIRLOCK_ADMIN_URL` says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "https://localhost:8444";

/// The API's path under the admin URL.
const API_PATH: &str = "/api/approvals";
/// The largest answer read (a long list of approvals).
const MAX_RESPONSE_BYTES: u64 = 16 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The widest scope shown in the list table; longer ones keep their tail.
const SCOPE_COLUMN: usize = 60;

/// `airlock approvals …`: options and subcommand.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    /// Where the gateway is and who is asking.
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

/// Options every `approvals` subcommand takes.
#[derive(Debug, clap::Args)]
pub struct ConnectionArgs {
    /// The gateway's admin listener.
    #[arg(
        long,
        env = "AIRLOCK_ADMIN_URL",
        default_value = DEFAULT_ADMIN_URL,
        global = true
    )]
    pub admin_url: String,
    /// Your Entra access token for the gateway (prefer the environment
    /// variable: a command line is visible to other local users).
    #[arg(long, env = "AIRLOCK_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<Token>,
    /// A PEM file of CA certificates to trust besides the system's (the
    /// demo's self-signed CA, for instance).
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The `approvals` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals you are an approver of.
    List {
        /// Which approvals.
        #[arg(long, value_enum, default_value_t = ListState::Pending)]
        state: ListState,
    },
    /// Show one approval: what was asked, why, and who decided what.
    Show {
        /// The approval id (a UUID, as `list` shows it).
        id: String,
    },
    /// Approve an approval.
    Approve {
        /// The approval id.
        id: String,
        /// A comment recorded with your decision.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Deny an approval.
    Deny {
        /// The approval id.
        id: String,
        /// Why (the requester sees it).
        #[arg(long)]
        comment: Option<String>,
    },
}

/// Which approvals `list` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListState {
    /// Waiting for approvers.
    Pending,
    /// Approved, grant not used yet.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Nobody decided in time.
    Expired,
    /// The client went away before a decision.
    Abandoned,
    /// Approved and used.
    Consumed,
    /// Every state.
    All,
}

impl ListState {
    /// The API's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ListState::Pending => "pending",
            ListState::Approved => "approved",
            ListState::Denied => "denied",
            ListState::Expired => "expired",
            ListState::Abandoned => "abandoned",
            ListState::Consumed => "consumed",
            ListState::All => "all",
        }
    }
}

/// An access token; its `Debug` never shows it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim().to_owned()))
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line cannot work as given.
    #[error("{0}")]
    Usage(String),
    /// The API answered with an error.
    #[error("{code} ({status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The ARM error code (`AirlockSelfApproval`, …).
        code: String,
        /// The API's message.
        message: String,
    },
    /// The gateway could not be reached, or its answer not read.
    #[error("cannot reach {url}: {detail}\nhint: {hint}")]
    Transport {
        /// The URL called.
        url: String,
        /// What went wrong.
        detail: String,
        /// How to fix it.
        hint: String,
    },
}

impl CliError {
    /// 2 for refusals (4xx) and unusable command lines, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Api { status, .. } if (400..500).contains(status) => 2,
            CliError::Api { .. } | CliError::Transport { .. } => 1,
        }
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector<LocalhostResolver>>, Full<Bytes>>;

/// A client for the approvals API of one gateway.
#[derive(Clone)]
pub struct ApprovalsClient {
    client: HttpsClient,
    base: String,
    token: Token,
}

impl fmt::Debug for ApprovalsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApprovalsClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApprovalsClient {
    /// A client for the admin listener at `admin_url`, sending `token`,
    /// trusting the system roots and the certificates in `ca_file`.
    ///
    /// Plain `http://` is accepted only for loopback addresses: the token
    /// must not cross a network in clear text.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] when the URL, the token or the CA file is unusable.
    pub fn new(admin_url: &str, token: &str, ca_file: Option<&Path>) -> Result<Self, CliError> {
        let base = check_admin_url(admin_url)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(CliError::Usage(
                "no token: set AIRLOCK_TOKEN (or pass --token) to your Entra access token for the gateway, e.g. from `az account get-access-token --resource <the gateway's audience> --query accessToken -o tsv`".into(),
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Usage(format!("TLS cannot be set up: {e}")))?
        .with_root_certificates(trust_roots(ca_file)?)
        .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(LocalhostResolver::default());
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base,
            token: Token::new(token),
        })
    }

    /// `GET /api/approvals[?state=…]`: the API's `{"value": [...]}`.
    ///
    /// # Errors
    ///
    /// [`CliError::Api`] when the API refuses, [`CliError::Transport`] when it cannot be reached.
    pub async fn list(&self, state: ListState) -> Result<Value, CliError> {
        let path = match state {
            ListState::All => API_PATH.to_owned(),
            state => format!("{API_PATH}?state={}", state.as_str()),
        };
        self.send(Method::GET, &path, None).await
    }

    /// `GET /api/approvals/{id}`.
    ///
    /// # Errors
    ///
    /// [`CliError::Usage`] for an id that is not a UUID; else as [`list`](Self::list).
    pub async fn show(&self, id: &str) -> Result<Value, CliError> {
        let id = approval_id(id)?;
        self.send(Method::GET, &format!("{API_PATH}/{id}"), None)
            .await
    }

    /// `POST /api/approvals/{id}/approve` or `…/deny`, with the comment if any:
    /// the approval as it now stands.
    ///
    /// # Errors
    ///
    /// As [`show`](Self::show).
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        comment: Option<&str>,
    ) -> Result<Value, CliError> {
        let id = approval_id(id)?;
        let action = if approve { "approve" } else { "deny" };
        let body = serde_json::json!({ "comment": comment }).to_string();
        self.send(
            Method::POST,
            &format!("{API_PATH}/{id}/{action}"),
            Some(Bytes::from(body)),
        )
        .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let transport = |detail: String, hint: &str| CliError::Transport {
            url: url.clone(),
            detail,
            hint: hint.to_owned(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("airlock-cli/", env!("CARGO_PKG_VERSION")),
            )
            .header(AUTHORIZATION, format!("Bearer {}", self.token.0));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| {
                CliError::Usage(format!(
                    "cannot build a request to {url}: check --admin-url, and that the token is one line of text"
                ))
            })?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport_error(&url, &e))?;
            let (parts, body) = response.into_parts();
            let body = collect_limited(body, &parts.headers, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| {
                    transport(
                        format!("reading the answer failed: {e}"),
                        "retry; if it persists, check the gateway's logs",
                    )
                })?;
            Ok::<_, CliError>((parts.status, body))
        };
        let (status, body) = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                transport(
                    format!("no answer within {EXCHANGE_TIMEOUT:?}"),
                    "check that --admin-url names the gateway's admin listener and that it is healthy",
                )
            })??;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            return json.ok_or_else(|| {
                transport(
                    "the answer is not JSON".into(),
                    "check that --admin-url names the gateway's admin listener, not another service",
                )
            });
        }
        Err(api_error(status.as_u16(), json.as_ref(), &body, &url))
    }
}

/// Checks the admin URL: absolute, https (or http to loopback), no query.
fn check_admin_url(admin_url: &str) -> Result<String, CliError> {
    let usage = |why: &str| {
        CliError::Usage(format!(
            "--admin-url '{admin_url}' {why}; give the gateway's admin listener, e.g. {DEFAULT_ADMIN_URL}"
        ))
    };
    let uri: Uri = admin_url
        .trim()
        .parse()
        .map_err(|_| usage("is not a URL"))?;
    let Some(host) = uri.host() else {
        return Err(usage("has no host"));
    };
    if uri.query().is_some() {
        return Err(usage("must not have a query"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(usage(
                    "is plain http to another machine, which would send your token in clear text; use https://",
                ));
            }
        }
        _ => return Err(usage("must start with https://")),
    }
    Ok(admin_url.trim().trim_end_matches('/').to_owned())
}

/// The system roots plus the certificates in `ca_file` (the upstream client's).
fn trust_roots(ca_file: Option<&Path>) -> Result<RootCertStore, CliError> {
    crate::upstream::trust_roots(ca_file).map_err(|error| match error {
        crate::upstream::ClientError::NoRoots => CliError::Usage(
            "no trusted root certificates: the system store is empty; pass --ca-file".into(),
        ),
        crate::upstream::ClientError::CaFile { path, reason } => CliError::Usage(format!(
            "--ca-file {path}: {reason}; give a PEM file of CA certificates"
        )),
    })
}

/// The id as a UUID, so that it cannot change the path it is put in.
fn approval_id(id: &str) -> Result<uuid::Uuid, CliError> {
    uuid::Uuid::parse_str(id.trim()).map_err(|_| {
        CliError::Usage(format!(
            "'{}' is not an approval id; an approval id is a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e, as `airlock approvals list` shows it",
            clean(id)
        ))
    })
}

/// A transport failure, with a hint for the usual causes.
fn transport_error(url: &str, error: &hyper_util::client::legacy::Error) -> CliError {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = detail.to_ascii_lowercase();
    let hint = if lower.contains("certificate") || lower.contains("unknownissuer") {
        "the gateway's TLS certificate is not trusted: pass --ca-file with the CA that signed it (the demo writes its ca.pem)"
    } else if lower.contains("connection refused") {
        "nothing listens there: is the gateway running with its admin listener? Set --admin-url or AIRLOCK_ADMIN_URL to its address"
    } else if lower.contains("dns") || lower.contains("lookup") {
        "the host name does not resolve: check --admin-url or AIRLOCK_ADMIN_URL"
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "no connection within the timeout: check --admin-url and that no firewall is in the way"
    } else {
        "check --admin-url (or AIRLOCK_ADMIN_URL) and that the gateway's admin listener is up"
    };
    CliError::Transport {
        url: url.to_owned(),
        detail,
        hint: hint.to_owned(),
    }
}

/// The ARM error in an answer, or what is known without one.
fn api_error(status: u16, json: Option<&Value>, body: &[u8], url: &str) -> CliError {
    let error = json.and_then(|j| j.get("error"));
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .map(clean);
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(clean);
    match (code, message) {
        (Some(code), Some(message)) => CliError::Api {
            status,
            code,
            message,
        },
        (code, _) => {
            let text: String = clean(&String::from_utf8_lossy(body))
                .chars()
                .take(200)
                .collect();
            CliError::Api {
                status,
                code: code.unwrap_or_else(|| format!("HTTP{status}")),
                message: format!(
                    "{url} answered without an Airlock error{}; check that --admin-url names the gateway's admin listener",
                    if text.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", text.trim())
                    }
                ),
            }
        }
    }
}

/// Runs one `airlock approvals …` command: prints the result to stdout, or
/// the error to stderr, and says how to exit.
pub async fn run(args: ApprovalsArgs) -> ExitCode {
    match execute(args).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs one command and returns what it prints.
///
/// # Errors
///
/// See [`CliError`].
pub async fn execute(args: ApprovalsArgs) -> Result<String, CliError> {
    let ApprovalsArgs {
        connection,
        command,
    } = args;
    let token = connection.token.map(|t| t.0).unwrap_or_default();
    let client =
        ApprovalsClient::new(&connection.admin_url, &token, connection.ca_file.as_deref())?;
    let now = SystemTime::now();
    let (value, text) = match command {
        ApprovalsCommand::List { state } => {
            let value = client.list(state).await?;
            let text = render_list(&value, state, now);
            (value, text)
        }
        ApprovalsCommand::Show { id } => {
            let value = client.show(&id).await?;
            let text = render_details(&value, now);
            (value, text)
        }
        ApprovalsCommand::Approve { id, comment } => {
            let value = client.decide(&id, true, comment.as_deref()).await?;
            let text = render_decided(&value);
            (value, text)
        }
        ApprovalsCommand::Deny { id, comment } => {
            let value = client.decide(&id, false, comment.as_deref()).await?;
            let text = render_decided(&value);
            (value, text)
        }
    };
    if connection.json {
        let mut json = serde_json::to_string_pretty(&value).unwrap_or_default();
        json.push('\n');
        return Ok(json);
    }
    text.map_err(|detail| CliError::Transport {
        url: connection.admin_url,
        detail: format!("the answer is not an approval as expected ({detail})"),
        hint: "check that --admin-url names an Airlock gateway of the same version; --json prints the raw answer".into(),
    })
}

/// One approval as the API shows it (unknown fields ignored, missing ones empty).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApprovalView {
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub state: String,
    /// Who asked.
    pub requester: RequesterView,
    /// What for.
    pub operation: OperationView,
    /// The rule that asked for approval.
    pub rule: String,
    /// How many distinct approvers must approve.
    pub min_approvals: u32,
    /// Whether the rule asks for a justification.
    pub justification_required: bool,
    /// The requester's justification.
    pub justification: Option<String>,
    /// `hold` or `async`.
    pub wait: Option<String>,
    /// When it was asked (RFC 3339).
    pub created_at: Option<String>,
    /// When it can no longer be decided.
    pub expires_at: Option<String>,
    /// Until when the grant may be used.
    pub grant_expires_at: Option<String>,
    /// The approvers' answers, in order.
    pub decisions: Vec<DecisionView>,
    /// What Azure answered, once an approved async request was sent.
    pub execution: Option<ExecutionView>,
    /// Whether the caller can approve or deny it now.
    pub can_decide: bool,
}

/// Who asked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequesterView {
    /// Object id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Display name.
    pub display_name: Option<String>,
}

/// What was asked for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OperationView {
    /// The RBAC operation name.
    pub name: String,
    /// The resource scope.
    pub scope: String,
    /// The operations it carries.
    pub children: Vec<String>,
}

/// One approver's answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DecisionView {
    /// Object id.
    pub approver: String,
    /// Display name.
    pub approver_name: Option<String>,
    /// Approved (`true`) or denied.
    pub approve: bool,
    /// The comment.
    pub comment: Option<String>,
    /// When (RFC 3339).
    pub at: Option<String>,
}

/// What Azure answered to the approved request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionView {
    /// Azure's status (0: no answer).
    pub status: u16,
    /// The error code, if it failed.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
}

impl ApprovalView {
    /// Reads one approval from the API's JSON.
    ///
    /// # Errors
    ///
    /// When the JSON is not shaped like an approval.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let view = Self::deserialize(value).map_err(|e| e.to_string())?;
        if view.id.is_empty() {
            return Err("an approval without an id".into());
        }
        Ok(view)
    }

    /// How many distinct approvers approved.
    pub fn approvals(&self) -> usize {
        let mut seen: Vec<String> = Vec::new();
        for decision in self.decisions.iter().filter(|d| d.approve) {
            let id = decision.approver.to_ascii_lowercase();
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        seen.len()
    }

    fn requester_label(&self) -> String {
        match &self.requester.display_name {
            Some(name) if !name.is_empty() => clean(name),
            _ => clean(&self.requester.id),
        }
    }
}

/// The `list` table: id, state, requester, operation, scope, rule, age,
/// approvals (n/min) and whether you can decide it.
///
/// # Errors
///
/// When the JSON is not the API's list.
pub fn render_list(value: &Value, state: ListState, now: SystemTime) -> Result<String, String> {
    let items = value
        .get("value")
        .and_then(Value::as_array)
        .ok_or("no `value` list")?;
    let approvals = items
        .iter()
        .map(ApprovalView::from_json)
        .collect::<Result<Vec<_>, _>>()?;
    if approvals.is_empty() {
        return Ok(match state {
            ListState::All => "no approvals you are an approver of\n".to_owned(),
            state => format!("no {} approvals you are an approver of\n", state.as_str()),
        });
    }
    let header = [
        "ID",
        "STATE",
        "REQUESTER",
        "OPERATION",
        "SCOPE",
        "RULE",
        "AGE",
        "APPROVALS",
        "CAN DECIDE",
    ];
    let rows: Vec<[String; 9]> = approvals
        .iter()
        .map(|a| {
            [
                clean(&a.id),
                clean(&a.state),
                a.requester_label(),
                clean(&a.operation.name),
                keep_tail(&clean(&a.operation.scope), SCOPE_COLUMN),
                clean(&a.rule),
                a.created_at
                    .as_deref()
                    .and_then(parse_time)
                    .map_or_else(|| "?".to_owned(), |t| age(now, t)),
                format!("{}/{}", a.approvals(), a.min_approvals.max(1)),
                if a.can_decide { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    Ok(out)
}

/// The `show` view: everything an approver needs to decide.
///
/// # Errors
///
/// When the JSON is not an approval.
pub fn render_details(value: &Value, now: SystemTime) -> Result<String, String> {
    let a = ApprovalView::from_json(value)?;
    let mut out = String::new();
    let mut field = |name: &str, text: String| {
        out.push_str(&format!("{name:<14}{text}\n"));
    };
    field("Approval", clean(&a.id));
    let decide = if a.can_decide {
        " (you can approve or deny it)"
    } else {
        ""
    };
    field("State", format!("{}{decide}", clean(&a.state)));
    let requester = match &a.requester.display_name {
        Some(name) if !name.is_empty() => format!(
            "{} ({}, tenant {})",
            clean(name),
            clean(&a.requester.id),
            clean(&a.requester.tenant_id)
        ),
        _ => format!(
            "{} (tenant {})",
            clean(&a.requester.id),
            clean(&a.requester.tenant_id)
        ),
    };
    field("Requester", requester);
    field("Operation", clean(&a.operation.name));
    for child in &a.operation.children {
        field("", format!("+ {}", clean(child)));
    }
    field("Scope", clean(&a.operation.scope));
    field("Rule", clean(&a.rule));
    if let Some(wait) = &a.wait {
        field("Wait", clean(wait));
    }
    field(
        "Approvals",
        format!("{} of {}", a.approvals(), a.min_approvals.max(1)),
    );
    field("Created", when(a.created_at.as_deref(), now));
    field("Expires", when(a.expires_at.as_deref(), now));
    if a.grant_expires_at.is_some() {
        field("Grant until", when(a.grant_expires_at.as_deref(), now));
    }
    let justification = match (&a.justification, a.justification_required) {
        (Some(text), _) => clean_multiline(text),
        (None, true) => "(required, none given)".to_owned(),
        (None, false) => "(none)".to_owned(),
    };
    field("Justification", justification);
    if a.decisions.is_empty() {
        field("Decisions", "(none yet)".to_owned());
    }
    for (i, d) in a.decisions.iter().enumerate() {
        let who = match &d.approver_name {
            Some(name) if !name.is_empty() => {
                format!("{} ({})", clean(name), clean(&d.approver))
            }
            _ => clean(&d.approver),
        };
        let verb = if d.approve { "approved" } else { "denied" };
        let at =
            d.at.as_deref()
                .map(|t| format!("{}  ", clean(t)))
                .unwrap_or_default();
        let comment = d
            .comment
            .as_deref()
            .map(|c| format!(": {}", clean_multiline(c)))
            .unwrap_or_default();
        field(
            if i == 0 { "Decisions" } else { "" },
            format!("{at}{who} {verb}{comment}"),
        );
    }
    if let Some(execution) = &a.execution {
        let mut text = if execution.status == 0 {
            "sent, no answer from Azure".to_owned()
        } else {
            format!("Azure answered {}", execution.status)
        };
        if let Some(code) = &execution.error_code {
            text.push_str(&format!(" {}", clean(code)));
        }
        if let Some(message) = &execution.error_message {
            text.push_str(&format!(": {}", clean(message)));
        }
        field("Execution", text);
    }
    Ok(out)
}

/// What `approve` and `deny` print: the approval's new state.
///
/// # Errors
///
/// When the JSON is not an approval.
pub fn render_decided(value: &Value) -> Result<String, String> {
    let a = ApprovalView::from_json(value)?;
    let (approvals, min) = (a.approvals(), a.min_approvals.max(1) as usize);
    let detail = match a.state.as_str() {
        "pending" => format!(
            " ({approvals} of {min} approvals; {} more needed)",
            min.saturating_sub(approvals).max(1)
        ),
        "approved" => format!(" ({approvals} of {min} approvals)"),
        _ => String::new(),
    };
    Ok(format!(
        "approval {} is now {}{detail}\n",
        clean(&a.id),
        clean(&a.state)
    ))
}

fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// `2026-05-01T10:00:00.000Z (5m ago)`, or `in 5m` for the future.
fn when(text: Option<&str>, now: SystemTime) -> String {
    let Some(text) = text else {
        return "?".to_owned();
    };
    match parse_time(text) {
        Some(t) if t <= now => format!("{} ({} ago)", clean(text), age(now, t)),
        Some(t) => format!(
            "{} (in {})",
            clean(text),
            short_duration(t.duration_since(now).unwrap_or_default())
        ),
        None => clean(text),
    }
}

fn age(now: SystemTime, then: SystemTime) -> String {
    short_duration(now.duration_since(then).unwrap_or_default())
}

/// `45s`, `12m`, `3h`, `2d`: the largest whole unit.
fn short_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The last `max` characters, marked with `…` when cut.
fn keep_tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(count - max + 1).collect();
    format!("…{tail}")
}

/// Text from the API, safe for a terminal: control characters (escape
/// sequences included) become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// As [`clean`], but line breaks are kept, indented under the field.
fn clean_multiline(text: &str) -> String {
    text.lines()
        .map(clean)
        .collect::<Vec<_>>()
        .join(&format!("\n{:14}", ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const SCOPE: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/demosa";

    fn now() -> SystemTime {
        humantime::parse_rfc3339("2026-05-01T12:00:00Z").unwrap()
    }

    fn approval(state: &str, can_decide: bool, decisions: &Value) -> Value {
        serde_json::json!({
            "id": ID,
            "requester": {"id": "agent-oid", "tenantId": "tenant-1", "displayName": "build-agent", "groups": []},
            "operation": {"name": "Microsoft.Storage/storageAccounts/write", "scope": SCOPE, "children": []},
            "rule": "storage-needs-approval",
            "approvers": {"groups": ["ops"], "ids": []},
            "minApprovals": 2,
            "justificationRequired": true,
            "justification": "release 4.2\nneeds a new account",
            "fingerprint": "ab",
            "wait": "hold",
            "createdAt": "2026-05-01T11:48:00.000Z",
            "expiresAt": "2026-05-01T12:10:00.000Z",
            "grantTtlMs": 600000,
            "grantExpiresAt": null,
            "decisions": decisions,
            "state": state,
            "execution": null,
            "canDecide": can_decide,
            "someFutureField": 1
        })
    }

    #[test]
    fn the_list_is_a_table_with_every_column() {
        let value = serde_json::json!({"value": [
            approval("pending", true, &serde_json::json!([
                {"approver": "carol", "approverName": "Carol", "approve": true, "comment": null, "at": "2026-05-01T11:50:00.000Z"},
                {"approver": "CAROL", "approverName": "Carol", "approve": true, "comment": null, "at": "2026-05-01T11:51:00.000Z"}
            ])),
        ]});
        let table = render_list(&value, ListState::Pending, now()).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        for column in [
            "ID",
            "STATE",
            "REQUESTER",
            "OPERATION",
            "SCOPE",
            "RULE",
            "AGE",
            "APPROVALS",
            "CAN DECIDE",
        ] {
            assert!(lines[0].contains(column), "{table}");
        }
        let row = lines[1];
        assert!(row.starts_with(ID), "{row}");
        for cell in [
            "pending",
            "build-agent",
            "Microsoft.Storage/storageAccounts/write",
            "storage-needs-approval",
            "12m",
            // The same approver twice counts once.
            "1/2",
        ] {
            assert!(row.contains(cell), "{cell} missing: {row}");
        }
        assert!(row.ends_with("yes"), "{row}");
        // The long scope keeps its informative tail.
        assert!(
            row.contains("…") && row.contains("storageAccounts/demosa"),
            "{row}"
        );
        // Columns line up: each header starts where its cells start.
        let at = lines[0].find("STATE").unwrap();
        assert_eq!(&row[at..at + "pending".len()], "pending");
    }

    #[test]
    fn an_empty_list_says_so() {
        let value = serde_json::json!({"value": []});
        assert_eq!(
            render_list(&value, ListState::Pending, now()).unwrap(),
            "no pending approvals you are an approver of\n"
        );
        assert_eq!(
            render_list(&value, ListState::All, now()).unwrap(),
            "no approvals you are an approver of\n"
        );
        assert!(render_list(&serde_json::json!({"error": {}}), ListState::All, now()).is_err());
    }

    #[test]
    fn details_show_the_justification_and_the_decisions() {
        let value = approval(
            "denied",
            false,
            &serde_json::json!([
                {"approver": "dave", "approverName": "Dave", "approve": true, "comment": "ok", "at": "2026-05-01T11:50:00.000Z"},
                {"approver": "carol", "approverName": null, "approve": false, "comment": "not during the freeze", "at": "2026-05-01T11:55:00.000Z"}
            ]),
        );
        let text = render_details(&value, now()).unwrap();
        for expected in [
            &format!("Approval      {ID}"),
            "State         denied\n",
            "Requester     build-agent (agent-oid, tenant tenant-1)",
            "Operation     Microsoft.Storage/storageAccounts/write",
            &format!("Scope         {SCOPE}"),
            "Rule          storage-needs-approval",
            "Approvals     1 of 2",
            "Created       2026-05-01T11:48:00.000Z (12m ago)",
            "Expires       2026-05-01T12:10:00.000Z (in 10m)",
            // A multi-line justification stays under its field.
            "Justification release 4.2\n              needs a new account",
            "Decisions     2026-05-01T11:50:00.000Z  Dave (dave) approved: ok",
            "              2026-05-01T11:55:00.000Z  carol denied: not during the freeze",
        ] {
            assert!(text.contains(expected), "{expected:?} missing:\n{text}");
        }
        let pending =
            render_details(&approval("pending", true, &serde_json::json!([])), now()).unwrap();
        assert!(
            pending.contains("State         pending (you can approve or deny it)")
                && pending.contains("Decisions     (none yet)"),
            "{pending}"
        );
    }

    #[test]
    fn text_from_the_api_cannot_drive_the_terminal() {
        let mut value = approval("pending", true, &serde_json::json!([]));
        value["justification"] = "ok\u{1b}]0;pwned\u{7}\u{1b}[2J".into();
        value["rule"] = "r\u{1b}[31m".into();
        let text = render_details(&value, now()).unwrap();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        let table = render_list(
            &serde_json::json!({"value": [value]}),
            ListState::All,
            now(),
        )
        .unwrap();
        assert!(!table.contains('\u{1b}'), "{table:?}");
    }

    #[test]
    fn a_decision_prints_the_new_state() {
        let one = serde_json::json!([
            {"approver": "dave", "approve": true, "at": "2026-05-01T11:50:00.000Z"}
        ]);
        assert_eq!(
            render_decided(&approval("pending", true, &one)).unwrap(),
            format!("approval {ID} is now pending (1 of 2 approvals; 1 more needed)\n")
        );
        let two = serde_json::json!([
            {"approver": "dave", "approve": true},
            {"approver": "carol", "approve": true}
        ]);
        assert_eq!(
            render_decided(&approval("approved", false, &two)).unwrap(),
            format!("approval {ID} is now approved (2 of 2 approvals)\n")
        );
        let denied = serde_json::json!([{"approver": "carol", "approve": false}]);
        assert_eq!(
            render_decided(&approval("denied", false, &denied)).unwrap(),
            format!("approval {ID} is now denied\n")
        );
    }

    #[test]
    fn api_errors_carry_the_arm_code_and_exit_2_for_refusals() {
        let body = serde_json::json!({"error": {"code": "AirlockSelfApproval", "message": "the requester can never approve"}});
        let error = api_error(403, Some(&body), b"", "https://gw/api/approvals/x/approve");
        assert_eq!(
            error.to_string(),
            "AirlockSelfApproval (403): the requester can never approve"
        );
        assert_eq!(error.exit_code(), 2);
        let error = api_error(500, None, b"<html>oops</html>", "https://gw/api/approvals");
        assert_eq!(error.exit_code(), 1);
        let text = error.to_string();
        assert!(
            text.starts_with("HTTP500 (500): https://gw/api/approvals answered without an Airlock error (<html>oops</html>)"),
            "{text}"
        );
    }

    #[test]
    fn unusable_command_lines_are_refused_before_sending_anything() {
        let usage = |result: Result<ApprovalsClient, CliError>| match result {
            Err(CliError::Usage(message)) => message,
            other => panic!("expected a usage error, got {other:?}"),
        };
        let message = usage(ApprovalsClient::new(
            "http://gateway.example:8444",
            "t",
            None,
        ));
        assert!(
            message.contains("clear text") && message.contains("https://"),
            "{message}"
        );
        let message = usage(ApprovalsClient::new("localhost:8444", "t", None));
        assert!(message.contains(DEFAULT_ADMIN_URL), "{message}");
        let message = usage(ApprovalsClient::new(DEFAULT_ADMIN_URL, " ", None));
        assert!(message.contains("AIRLOCK_TOKEN"), "{message}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "").unwrap();
        let message = usage(ApprovalsClient::new(DEFAULT_ADMIN_URL, "t", Some(&empty)));
        assert!(
            message.contains("--ca-file") && message.contains("no PEM"),
            "{message}"
        );

        assert!(ApprovalsClient::new("http://127.0.0.1:8444/", "t", None).is_ok());
        let client =
            ApprovalsClient::new("https://gw.example/admin/", "secret-token", None).unwrap();
        assert_eq!(client.base, "https://gw.example/admin");
        assert!(!format!("{client:?}").contains("secret-token"));
        assert_eq!(format!("{:?}", Token::new("secret-token")), "Token(***)");

        let message = match approval_id("../../policy") {
            Err(CliError::Usage(message)) => message,
            other => panic!("{other:?}"),
        };
        assert!(message.contains("is not an approval id"), "{message}");
        assert!(approval_id(ID).is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_a_transport_error_naming_the_url_and_the_fix() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("https://127.0.0.1:{port}");
        let client = ApprovalsClient::new(&url, "t", None).unwrap();
        let error = client.list(ListState::Pending).await.unwrap_err();
        assert_eq!(error.exit_code(), 1);
        let text = error.to_string();
        assert!(
            text.contains(&format!("cannot reach {url}/api/approvals?state=pending"))
                && text.contains("hint:")
                && text.contains("--admin-url"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_untrusted_certificate_suggests_ca_file() {
        use tokio::io::AsyncWriteExt;

        let dir = tempfile::tempdir().unwrap();
        let certs = crate::tls::DevCertificates::generate(&["localhost"]).unwrap();
        certs.write_to(dir.path()).unwrap();
        let mut config =
            crate::tls::server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem"))
                .unwrap()
                .as_ref()
                .clone();
        // The hand-written answer below is HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            // Two connections: without, then with the CA.
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let body = r#"{"value":[]}"#;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let mut request = [0u8; 4096];
                    let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut request).await;
                    tls.write_all(response.as_bytes()).await.unwrap();
                    tls.shutdown().await.unwrap();
                }
            }
        });
        let url = format!("https://localhost:{port}");
        let error = ApprovalsClient::new(&url, "t", None)
            .unwrap()
            .list(ListState::All)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("--ca-file"), "{text}");
        let trusted = ApprovalsClient::new(&url, "t", Some(&dir.path().join("ca.pem"))).unwrap();
        let value = trusted.list(ListState::All).await.unwrap();
        assert_eq!(value, serde_json::json!({"value": []}));
        server.await.unwrap();
    }
}
