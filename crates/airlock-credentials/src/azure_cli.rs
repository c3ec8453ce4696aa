//! [`AzureCli`]: the developer's own `az login`, for running the gateway
//! on a workstation.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use airlock_core::{AccessToken, BoxFuture};
use serde::Deserialize;

use crate::{FetchedToken, SourceError, TokenSource};

/// How long `az` may take (it may refresh its own token first).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Tokens from `az account get-access-token --resource {audience}`, run as
/// a subprocess with a timeout (and killed when it runs out). For local
/// development: the gateway then acts as whoever ran `az login`.
pub struct AzureCli {
    program: PathBuf,
    tenant_id: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for AzureCli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCli")
            .field("program", &self.program)
            .field("tenant_id", &self.tenant_id)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for AzureCli {
    fn default() -> Self {
        Self::new("az")
    }
}

impl AzureCli {
    /// Runs `program` (`az`, found on `PATH`, or a full path).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            tenant_id: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Asks for tokens of this tenant (`--tenant`).
    #[must_use]
    pub fn tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant_id.into());
        self
    }

    /// How long `az` may take (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What `az account get-access-token` prints.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    access_token: String,
    /// Epoch seconds (az 2.54 and later).
    #[serde(rename = "expires_on")]
    expires_on: Option<u64>,
}

impl TokenSource for AzureCli {
    fn identity(&self) -> &str {
        "the Azure CLI's signed-in account (az login)"
    }

    fn fetch<'a>(&'a self, audience: &'a str) -> BoxFuture<'a, Result<FetchedToken, SourceError>> {
        Box::pin(async move {
            let mut command = tokio::process::Command::new(&self.program);
            command
                .args([
                    "account",
                    "get-access-token",
                    "--output",
                    "json",
                    "--resource",
                ])
                .arg(audience.trim_end_matches('/'))
                .kill_on_drop(true)
                .stdin(std::process::Stdio::null());
            if let Some(tenant) = &self.tenant_id {
                command.args(["--tenant", tenant]);
            }
            let program = self.program.display();
            let output = match tokio::time::timeout(self.timeout, command.output()).await {
                Err(_) => {
                    return Err(SourceError::transient(format!(
                        "`{program} account get-access-token` did not finish within {:?}",
                        self.timeout
                    )));
                }
                Ok(Err(error)) => {
                    return Err(SourceError::permanent(format!(
                        "cannot run `{program}`: {error}; install the Azure CLI or use another credential kind"
                    )));
                }
                Ok(Ok(output)) => output,
            };
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let reason = stderr
                    .lines()
                    .map(str::trim)
                    .find(|line| !line.is_empty())
                    .unwrap_or("no message");
                return Err(SourceError::permanent(format!(
                    "`{program} account get-access-token` failed ({}): {reason}",
                    output.status
                )));
            }
            let answer: Answer = serde_json::from_slice(&output.stdout).map_err(|e| {
                SourceError::permanent(format!(
                    "`{program} account get-access-token` printed no token: {e}"
                ))
            })?;
            let expires_at = answer
                .expires_on
                .and_then(|on| UNIX_EPOCH.checked_add(Duration::from_secs(on)));
            Ok(FetchedToken::new(AccessToken::new(
                answer.access_token,
                expires_at,
            )))
        })
    }
}
