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
//! # async fn run() -> Result<(), airlock_cli::approvals::CliError> {
//! use airlock_cli::approvals::{ApprovalsClient, ListState, render_list};
//!
//! let client = ApprovalsClient::new("https://localhost:8444", "eyJ0…", None)?;
//! let listed = client.list(ListState::Pending).await?;
//! print!("{}", render_list(&listed, ListState::Pending, std::time::SystemTime::now()).unwrap_or_default());
//! # Ok(()) }
//! ```

mod client;
mod render;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

pub use client::ApprovalsClient;
pub use render::{
    ApprovalView, DecisionView, ExecutionView, MalformedAnswer, OperationView, RequesterView,
    render_decided, render_details, render_list,
};

/// Where the admin listener is, unless `--admin-url`/`AIRLOCK_ADMIN_URL` says otherwise.
pub const DEFAULT_ADMIN_URL: &str = "https://localhost:8444";

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
    /// Print an approval's whole request body, masked (`show` has its first 8 KiB).
    Body {
        /// The approval id.
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
        ApprovalsCommand::Body { id } => {
            // The requester wrote it: no control character reaches the terminal.
            let mut text = render::clean_body(&client.body(&id).await?);
            text.push('\n');
            return Ok(text);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_shows_in_debug() {
        assert_eq!(format!("{:?}", Token::new("secret-token")), "Token(***)");
    }
}
