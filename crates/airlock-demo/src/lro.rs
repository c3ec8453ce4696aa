//! How an Azure SDK follows a long-running operation (azure-core's ARM
//! polling), for the demo's agent and the end-to-end tests: the client knows
//! nothing about Airlock, so an approval that waits as an operation must look
//! exactly like Azure's own.
//!
//! - `Azure-AsyncOperation` on the first answer: poll it until its `status`
//!   is `Succeeded`, `Failed` or `Canceled`; then, for PUT and PATCH, `GET`
//!   the resource; for POST, `GET` the `Location` if there was one.
//! - Else `Location`: poll it while it answers 202; its last answer is the result.
//! - Else the first answer is the result.
//!
//! Every wait honours `Retry-After` (seconds), as the SDKs do.

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use http::{Method, StatusCode};

use super::{AgentClient, AgentResponse};

/// The SDKs' wait when an answer has no `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How a long-running operation ended, with every answer along the way.
#[derive(Clone, Debug)]
pub struct LongRunning {
    /// The answer to the request itself.
    pub initial: AgentResponse,
    /// Every poll answer, in order.
    pub polls: Vec<AgentResponse>,
    /// `Succeeded`, `Failed` or `Canceled` (or `Failed` for an error answer).
    pub status: String,
    /// The error's code and message when it did not succeed.
    pub error: Option<(String, String)>,
    /// The final `GET`, where the SDK makes one.
    pub result: Option<AgentResponse>,
}

impl LongRunning {
    /// Whether it succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == "Succeeded"
    }
}

fn retry_after(response: &AgentResponse) -> Duration {
    response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

fn error_of(response: &AgentResponse) -> (String, String) {
    let json = response.json();
    let error = &json["error"];
    (
        error["code"].as_str().unwrap_or("").to_owned(),
        error["message"].as_str().unwrap_or("").to_owned(),
    )
}

impl AgentClient {
    /// Sends a request and follows the operation it starts, as an Azure SDK
    /// would, for at most `deadline`.
    pub async fn long_running(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        deadline: Duration,
    ) -> anyhow::Result<LongRunning> {
        let until = Instant::now() + deadline;
        let initial = self.send(method.clone(), path, headers, body).await?;
        let mut run = LongRunning {
            initial: initial.clone(),
            polls: Vec::new(),
            status: "Succeeded".into(),
            error: None,
            result: None,
        };
        if !matches!(initial.status.as_u16(), 200 | 201 | 202 | 204) {
            run.status = "Failed".into();
            run.error = Some(error_of(&initial));
            return Ok(run);
        }
        let location = initial.header("location").map(str::to_owned);
        let mut wait = retry_after(&initial);
        if let Some(status_url) = initial.header("azure-asyncoperation").map(str::to_owned) {
            loop {
                sleep_until_next(wait, until).await?;
                let poll = self.get(&status_url).await?;
                wait = retry_after(&poll);
                run.polls.push(poll.clone());
                if poll.status != StatusCode::OK {
                    run.status = "Failed".into();
                    run.error = Some(error_of(&poll));
                    return Ok(run);
                }
                let status = poll.json()["status"].as_str().unwrap_or("").to_owned();
                if ["succeeded", "failed", "canceled"]
                    .contains(&status.to_ascii_lowercase().as_str())
                {
                    if !status.eq_ignore_ascii_case("succeeded") {
                        run.error = Some(error_of(&poll));
                    }
                    run.status = status;
                    break;
                }
            }
            if run.succeeded() {
                let final_url = match method {
                    Method::PUT | Method::PATCH => Some(path.to_owned()),
                    Method::POST => location,
                    _ => None,
                };
                if let Some(url) = final_url {
                    run.result = Some(self.get(&url).await?);
                }
            }
        } else if let (Some(url), StatusCode::ACCEPTED) = (location, initial.status) {
            loop {
                sleep_until_next(wait, until).await?;
                let poll = self.get(&url).await?;
                wait = retry_after(&poll);
                run.polls.push(poll.clone());
                if poll.status != StatusCode::ACCEPTED {
                    if !poll.status.is_success() {
                        run.status = "Failed".into();
                        run.error = Some(error_of(&poll));
                    }
                    run.result = Some(poll);
                    break;
                }
            }
        } else {
            run.result = Some(initial);
        }
        Ok(run)
    }
}

async fn sleep_until_next(wait: Duration, until: Instant) -> anyhow::Result<()> {
    if Instant::now() + wait > until {
        bail!("the operation did not finish in time (next poll due in {wait:?})");
    }
    tokio::time::sleep(wait).await;
    Ok(())
}
