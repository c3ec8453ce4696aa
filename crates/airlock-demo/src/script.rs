//! The scripted agent: a few ARM and Key Vault calls through the gateway,
//! each checked, printed in readable form.

use std::fmt;
use std::time::Duration;

use airlock_approval::JUSTIFICATION_HEADER;

use airlock_core::{REQUEST_ID_HEADER, REVEAL_HEADER, REVEALED_HEADER};
use airlock_sim::{RESOURCE_GROUP, STORAGE_ACCOUNT, SUBSCRIPTION_ID, TokenSpec, VAULT};
use bytes::Bytes;
use http::{Method, StatusCode};

use super::{AgentClient, AgentResponse, DemoEnvironment};

/// What the script did and whether each step behaved.
#[derive(Debug, Default)]
pub(super) struct Report {
    header: String,
    steps: Vec<Step>,
    /// Printed after the steps (the recorded session's timeline).
    appendix: String,
}

#[derive(Debug)]
struct Step {
    what: String,
    outcome: String,
    passed: bool,
}

impl Report {
    /// Whether every step behaved as expected.
    pub(super) fn all_passed(&self) -> bool {
        self.steps.iter().all(|s| s.passed)
    }
    fn step(&mut self, what: impl Into<String>, outcome: impl Into<String>, passed: bool) {
        self.steps.push(Step {
            what: what.into(),
            outcome: outcome.into(),
            passed,
        });
    }
    fn check(
        &mut self,
        what: impl Into<String>,
        response: &AgentResponse,
        expected: StatusCode,
        detail: impl Into<String>,
    ) -> bool {
        let passed = response.status == expected;
        let mut outcome = format!("{} {}", response.status.as_u16(), detail.into());
        if !passed {
            outcome = format!(
                "{outcome}  (expected {expected}; body: {})",
                String::from_utf8_lossy(&response.body)
            );
        }
        self.step(what, outcome, passed);
        passed
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.header)?;
        for (i, step) in self.steps.iter().enumerate() {
            let mark = if step.passed { "ok  " } else { "FAIL" };
            writeln!(
                f,
                " {mark} {:>2}. {}\n           -> {}",
                i + 1,
                step.what,
                step.outcome
            )?;
        }
        if !self.appendix.is_empty() {
            writeln!(f, "\nThe agent's session, as recorded:\n{}", self.appendix)?;
        }
        let failed = self.steps.iter().filter(|s| !s.passed).count();
        if failed == 0 {
            writeln!(f, "\nAll {} steps behaved as expected.", self.steps.len())
        } else {
            writeln!(
                f,
                "\n{failed} of {} steps did NOT behave as expected.",
                self.steps.len()
            )
        }
    }
}

const ARM_API: &str = "api-version=2023-05-01";

/// Runs the script against a started environment.
pub(super) async fn run(env: &DemoEnvironment) -> anyhow::Result<Report> {
    let agent = env.agent()?;
    let mut report = Report {
        header: format!(
            "Airlock demo\n  agent  --TLS-->  gateway {}  -->  simulated Azure {}\n",
            env.gateway.url(),
            env.sim.arm_url()
        ),
        ..Report::default()
    };
    identity_steps(env, &mut report).await?;
    let rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}");
    let storage = format!("{rg}/providers/Microsoft.Storage/storageAccounts");

    let groups = agent
        .get(&format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2021-04-01"
        ))
        .await?;
    let names: Vec<String> = groups.json()["value"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|g| g["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    report.check(
        "GET  resource groups",
        &groups,
        StatusCode::OK,
        format!(
            "{names:?} over {:?}, request id {}",
            groups.version,
            groups.header(REQUEST_ID_HEADER).unwrap_or("missing")
        ),
    );

    let account = agent
        .get(&format!("{storage}/{STORAGE_ACCOUNT}?{ARM_API}"))
        .await?;
    report.check(
        format!("GET  storage account {STORAGE_ACCOUNT}"),
        &account,
        StatusCode::OK,
        format!(
            "provisioningState {}",
            account.json()["properties"]["provisioningState"]
        ),
    );

    list_all_pages(&agent, &storage, &mut report).await?;
    policy_steps(env, &agent, &rg, &storage, &mut report).await?;

    let vault = format!(
        "https://{VAULT}.localhost:{}",
        env.gateway.local_addr().port()
    );
    let secret = agent
        .get(&format!("{vault}/secrets/db-password?api-version=7.4"))
        .await?;
    masked_step(
        &mut report,
        &format!("GET  Key Vault secret db-password at {vault}"),
        &secret,
        &secret.json()["value"],
    );
    let keys = agent
        .send(
            Method::POST,
            &format!("{storage}/{STORAGE_ACCOUNT}/listKeys?{ARM_API}"),
            &[],
            None,
        )
        .await?;
    masked_step(
        &mut report,
        &format!("POST storage account {STORAGE_ACCOUNT} listKeys"),
        &keys,
        &keys.json()["keys"][0]["value"],
    );

    let other = agent
        .get(&format!(
            "https://not-allowed.localhost:{}/secrets/x?api-version=7.4",
            env.gateway.local_addr().port()
        ))
        .await?;
    report.check(
        "GET  a vault that is not configured (not-allowed)",
        &other,
        StatusCode::FORBIDDEN,
        format!("{} — no open proxy", other.json()["error"]["code"]),
    );

    forward_proxy_steps(env, &mut report).await?;
    credential_step(env, &agent, &mut report).await?;
    audit_step(env, &mut report).await?;
    agent_for_person_steps(env, &mut report).await?;
    what_leaves_steps(env, &agent, &vault, &mut report).await?;
    least_privilege_step(env, &mut report).await?;
    Ok(report)
}

/// Least privilege from the trail: the role the build agent needs, drafted
/// from what it just did (`airlock roles suggest`), and what a stricter
/// policy, one that refuses secret reads, would have changed (`airlock
/// policy replay`).
async fn least_privilege_step(env: &DemoEnvironment, report: &mut Report) -> anyhow::Result<()> {
    use airlock_policy::replay::{Replay, Verdict};
    use airlock_policy::suggest::Evidence;

    let store = airlock_store::SqliteStore::open(env.dir.path().join("airlock.db")).await?;
    let stricter = airlock_policy::Policy::parse(
        &format!("{NO_SECRET_READS}\n{}", crate::DEMO_POLICY),
        "stricter.toml",
    )?;
    let agent = TokenSpec::agent();
    let mut evidence = Evidence::default();
    let mut replay = Replay::new(&stricter);
    let mut pages = store.events_since(std::time::UNIX_EPOCH);
    while let Some(page) = pages.next_page().await? {
        for chained in page {
            let event = &chained.event;
            if event.principal.as_ref().map(|p| p.id.as_str()) != Some(agent.object_id.as_str()) {
                continue;
            }
            let (Some(decision), Some((principal, operation))) = (
                event.decision.as_deref().and_then(Verdict::parse),
                event.decided_request(),
            ) else {
                continue;
            };
            if decision == Verdict::Allow {
                evidence.allowed(&operation, event.time, &event.session_id);
            } else {
                evidence.not_allowed();
            }
            replay.add(&principal, &operation, decision, String::new);
        }
    }
    let replayed = replay.finish();
    let suggested = evidence.suggest("build-agent least privilege", &[]);
    let (role, ok) = match &suggested {
        Some(s) => (
            format!(
                "{} actions, {} data actions, assignable at {}",
                s.role.actions.len(),
                s.role.data_actions.len(),
                s.role.assignable_scopes.join(", ")
            ),
            !s.role.actions.is_empty(),
        ),
        None => ("nothing used".to_owned(), false),
    };
    report.step(
        "Least privilege from the trail (airlock roles suggest, policy replay)",
        format!(
            "build-agent's {} allowed requests need a custom role of {role}; a policy refusing secret reads would change {} of {} requests",
            evidence.requests,
            replayed.changed(),
            replayed.replayed
        ),
        ok && replayed.changed() > 0,
    );
    Ok(())
}

/// What leaves the gateway: one secret revealed by approval (and masked
/// again after), and a bulk read held until an approver releases it.
async fn what_leaves_steps(
    env: &DemoEnvironment,
    agent: &AgentClient,
    vault: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let alice = env.approver()?;
    let secret_url = format!("{vault}/secrets/db-password?api-version=7.4");
    let asking = {
        let (agent, url) = (agent.clone(), secret_url.clone());
        tokio::spawn(async move {
            agent
                .send(
                    Method::GET,
                    &url,
                    &[(REVEAL_HEADER, "rotate the demo database password (DEMO-7)")],
                    None,
                )
                .await
        })
    };
    let approval = wait_for_pending(&alice).await?;
    let id = approval["id"].as_str().unwrap_or_default().to_owned();
    alice
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(Bytes::from_static(br#"{"comment":"once, for DEMO-7"}"#)),
        )
        .await?;
    let revealed = asking.await??;
    let clear = revealed.json()["value"] == airlock_sim::SECRET_VALUE;
    report.step(
        "GET  db-password with x-airlock-reveal; Alice approves that one answer",
        format!(
            "{}: approval {id} (reveal: {}), the value came back in clear: {}, x-airlock-revealed: {}",
            revealed.status,
            approval["reveal"],
            if clear { "yes" } else { "NO" },
            revealed.header(REVEALED_HEADER).unwrap_or("none")
        ),
        revealed.status == StatusCode::OK && clear && approval["reveal"] == true,
    );
    let again = agent.get(&secret_url).await?;
    masked_step(
        report,
        "GET  db-password again, without asking",
        &again,
        &again.json()["value"],
    );

    let list_url = format!("{vault}/secrets?api-version=7.4");
    let held = agent.get(&list_url).await?;
    let id = held.json()["error"]["airlock"]["approvalId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let approval = wait_for_pending(&alice).await?;
    report.step(
        "GET  the vault's secret list: the exfiltration guard holds the answer",
        format!(
            "{} {}: Alice sees a list of {} item(s) ({}), never its contents",
            held.status,
            held.json()["error"]["code"],
            approval["answer"]["items"],
            approval["answer"]["names"]
        ),
        held.status == StatusCode::CONFLICT && approval["id"] == id.as_str(),
    );
    alice
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(Bytes::from_static(
                br#"{"comment":"inventory for the audit"}"#,
            )),
        )
        .await?;
    let released = agent.get(&list_url).await?;
    let listed = released.json()["value"].as_array().map_or(0, Vec::len);
    let asked = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.method == Method::GET && r.uri.path() == "/secrets")
        .count();
    report.step(
        "Alice releases it; the agent sends the same request again",
        format!(
            "{} {listed} secret(s) listed, from the held answer (Azure asked {})",
            released.status.as_u16(),
            if asked == 1 {
                "once".to_owned()
            } else {
                format!("{asked} times")
            }
        ),
        released.status == StatusCode::OK && listed > 0 && asked == 1,
    );
    Ok(())
}

/// The stricter policy the demo replays: no secret reads for anyone.
const NO_SECRET_READS: &str = r#"[[rule]]
name = "no-secret-reads"
effect = "deny"
data_actions = ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
"#;

/// The release bot, an Entra Agent ID agent acting for Alice, whose own
/// Azure role is Reader on the demo group: it reads as Alice (her own token,
/// traded on her behalf); its storage write waits for Alice to confirm it
/// and then runs once, elevated; its next write Azure itself refuses.
async fn agent_for_person_steps(env: &DemoEnvironment, report: &mut Report) -> anyhow::Result<()> {
    let bot = env.release_bot_for_alice()?;
    let rg = format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}");
    let verifier = env.issuer.verifier();
    // Whose token Azure got (`oid`, `azp`) with each request whose path
    // ends in `path_part`.
    let seen = |method: Method, path_part: &str| -> Vec<(String, String)> {
        env.sim
            .requests()
            .iter()
            .filter(|r| {
                r.method == method
                    && r.uri
                        .path()
                        .to_ascii_lowercase()
                        .ends_with(&path_part.to_ascii_lowercase())
            })
            .filter_map(|r| {
                let token = r.headers.get("authorization")?.to_str().ok()?;
                let claims = verifier
                    .verify(
                        token.strip_prefix("Bearer ")?,
                        "https://management.azure.com",
                    )
                    .ok()?;
                Some((
                    claims["oid"].as_str()?.to_owned(),
                    claims["azp"].as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    let alice_id = TokenSpec::approver().object_id;

    let read = bot.get(&format!("{rg}?api-version=2021-04-01")).await?;
    let as_alice = seen(Method::GET, &format!("/resourceGroups/{RESOURCE_GROUP}"))
        == [(alice_id.clone(), crate::RELEASE_BOT_APP.to_owned())];
    report.step(
        "release-bot (an Entra agent) acting for Alice: GET resource group demo-rg",
        format!(
            "{} — Azure got Alice's own token (traded on her behalf), the bot as its actor{}",
            read.status.as_u16(),
            if as_alice { "" } else { " — NOT as Alice" }
        ),
        read.status == StatusCode::OK && as_alice,
    );

    let path = format!("{rg}/providers/Microsoft.Storage/storageAccounts/alicelogs?{ARM_API}");
    let sdk = bot.clone();
    let create = tokio::spawn(async move {
        sdk.long_running(
            Method::PUT,
            &path,
            &[],
            Some(Bytes::from_static(
                br#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#,
            )),
            Duration::from_secs(60),
        )
        .await
    });
    let alice = env.approver()?;
    let approval = wait_for_pending(&alice).await?;
    let id = approval["id"].as_str().unwrap_or_default().to_owned();
    let requester = &approval["requester"];
    report.step(
        "release-bot for Alice: PUT storage account alicelogs",
        format!(
            "202: waits for approval {id} (rule '{}'), which Alice herself may confirm; the approver sees agent {} (blueprint {}) acting for {}",
            approval["rule"].as_str().unwrap_or("?"),
            requester["agent"]["appId"].as_str().unwrap_or("?"),
            requester["agent"]["blueprint"].as_str().unwrap_or("?"),
            requester["displayName"].as_str().unwrap_or("?"),
        ),
        approval["approvers"]["actingUser"] == true
            && requester["kind"] == "agent_for_user"
            && approval["elevateTo"] == "contributor",
    );
    let confirmed = alice
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(Bytes::from_static(
                br#"{"comment":"yes, my release needs it"}"#,
            )),
        )
        .await?;
    let confirmed_json = confirmed.json();
    report.step(
        "Alice confirms what her agent asked for",
        format!(
            "{} state {}, recorded as her confirmation (not an approval)",
            confirmed.status.as_u16(),
            confirmed_json["state"]
        ),
        confirmed.status == StatusCode::OK
            && confirmed_json["decisions"][0]["confirmation"] == true,
    );
    let created = create.await??;
    let elevated = seen(Method::PUT, "/alicelogs")
        .iter()
        .map(|(_, azp)| azp.as_str())
        .collect::<Vec<_>>()
        == [crate::CONTRIBUTOR_CLIENT_ID];
    report.step(
        "the bot's write runs once, elevated",
        format!(
            "{}; Azure got the PUT once, as '{}'{}",
            created.status,
            crate::CONTRIBUTOR_CLIENT_ID,
            if elevated { "" } else { " — NOT as expected" }
        ),
        created.succeeded() && elevated,
    );

    let again = bot
        .send(
            Method::PUT,
            &format!("{rg}?api-version=2021-04-01"),
            &[],
            Some(Bytes::from_static(
                br#"{"location":"westeurope","tags":{"release":"4.2"}}"#,
            )),
        )
        .await?;
    report.check(
        "release-bot for Alice: PUT resource group demo-rg (tags; Airlock's policy allows it)",
        &again,
        StatusCode::FORBIDDEN,
        format!(
            "{} from Azure itself: Alice's own role is Reader",
            again.json()["error"]["code"]
        ),
    );
    Ok(())
}

/// The same gateway as a forward proxy (`HTTPS_PROXY`): the agent calls
/// Azure's real host names, its token on the `CONNECT` only; the gateway
/// mints their certificates and runs every request through the same stack.
/// Anything but Azure's hosts is refused before a byte is tunnelled.
async fn forward_proxy_steps(env: &DemoEnvironment, report: &mut Report) -> anyhow::Result<()> {
    let arm = env.agent_through_proxy("https://management.azure.com")?;
    let groups = arm
        .get(&format!(
            "/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2021-04-01"
        ))
        .await?;
    report.check(
        "HTTPS_PROXY: GET resource groups at https://management.azure.com",
        &groups,
        StatusCode::OK,
        format!(
            "{} over {:?} in a CONNECT tunnel; the agent identified at the CONNECT",
            groups.json()["value"][0]["name"],
            groups.version
        ),
    );
    let vault = format!("https://{VAULT}.vault.azure.net");
    let secret = env
        .agent_through_proxy(&vault)?
        .get("/secrets/db-password?api-version=7.4")
        .await?;
    masked_step(
        report,
        &format!("HTTPS_PROXY: GET Key Vault secret db-password at {vault}"),
        &secret,
        &secret.json()["value"],
    );
    let before = env.sim.requests().len();
    let elsewhere = env
        .agent_through_proxy("https://example.com")?
        .get("/")
        .await;
    let reached = env.sim.requests().len() - before;
    report.step(
        "HTTPS_PROXY: GET https://example.com",
        match &elsewhere {
            Ok(response) => format!("{} — it went through", response.status),
            Err(error) => format!(
                "the CONNECT was refused ({}); {reached} requests reached Azure",
                error.root_cause()
            ),
        },
        elsewhere.is_err() && reached == 0,
    );
    Ok(())
}

/// What reached the simulated Azure: only the gateway's own tokens, signed
/// in with its client secret, refreshed ahead of expiry while the agent's
/// requests keep flowing (the demo's tokens live 8 s).
async fn credential_step(
    env: &DemoEnvironment,
    agent: &AgentClient,
    report: &mut Report,
) -> anyhow::Result<()> {
    let groups = format!("/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2021-04-01");
    let verifier = env.issuer.verifier();
    let arm_tokens = || {
        let mut seen: Vec<String> = Vec::new();
        for request in env.sim.requests() {
            let token = request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if let Some(token) = token
                && verifier
                    .verify(token, "https://management.azure.com")
                    .is_ok()
                && !seen.iter().any(|t| t == token)
            {
                seen.push(token.to_owned());
            }
        }
        seen
    };
    // Keep working until the gateway has moved to a fresh token.
    let deadline =
        tokio::time::Instant::now() + crate::GATEWAY_TOKEN_LIFETIME + Duration::from_secs(4);
    let mut failed = 0;
    while arm_tokens().len() < 2 && tokio::time::Instant::now() < deadline {
        if agent.get(&groups).await?.status != StatusCode::OK {
            failed += 1;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let received = env.sim.requests();
    let own = |request: &airlock_sim::RecordedRequest| {
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| {
                let audience = if request
                    .host
                    .as_deref()
                    .is_some_and(|h| h.contains(".vault."))
                {
                    "https://vault.azure.net"
                } else {
                    "https://management.azure.com"
                };
                verifier.verify(token, audience).ok()
            })
            .and_then(|claims| claims["azp"].as_str().map(str::to_owned))
    };
    // Everything as the gateway's everyday identity but the one approved,
    // elevated create and the polls of Azure's operation it started (which
    // belongs to the identity that started it): those as the contributor.
    let everyday = received
        .iter()
        .filter(|r| own(r).as_deref() == Some(crate::GATEWAY_CLIENT_ID))
        .count();
    let contributor: Vec<&airlock_sim::RecordedRequest> = received
        .iter()
        .filter(|r| own(r).as_deref() == Some(crate::CONTRIBUTOR_CLIENT_ID))
        .collect();
    let operation_polls = contributor
        .iter()
        .filter(|r| {
            let path = r.uri.path().to_ascii_lowercase();
            r.method == http::Method::GET
                && (path.contains("/asyncoperations/") || path.contains("/operationresults/"))
        })
        .count();
    let elevated: Vec<String> = contributor
        .iter()
        .filter(|r| r.method != http::Method::GET)
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.uri.path().rsplit('/').next().unwrap_or("?")
            )
        })
        .collect();
    let only_the_approved =
        elevated == ["PUT demonew"] && elevated.len() + operation_polls == contributor.len();
    let all_own = everyday + contributor.len() == received.len();
    let refreshed = arm_tokens().len();
    report.step(
        "What reached the simulated Azure",
        format!(
            "{} requests, each with a token the simulated Entra issued to one of the gateway's app registrations (client secret) for that service, none with the agent's{}: {everyday} as its everyday identity {}, and only the approved {} (and {operation_polls} poll(s) of the Azure operation it started) as '{}' (elevated); {refreshed} ARM tokens in turn, each refreshed ahead of its expiry ({}s lifetime) while {} requests waited on none",
            received.len(),
            if all_own { "" } else { " — VIOLATED" },
            crate::GATEWAY_CLIENT_ID,
            elevated.join(", "),
            crate::CONTRIBUTOR_CLIENT_ID,
            crate::GATEWAY_TOKEN_LIFETIME.as_secs(),
            if failed == 0 { "the agent's" } else { "SOME of the agent's" },
        ),
        all_own
            && only_the_approved
            && !received.is_empty()
            && refreshed >= 2
            && failed == 0,
    );
    Ok(())
}

/// What the recorder kept: one event per request, in one hash chain, the
/// agent's session replayable. Read from the database file while the
/// gateway runs (a finished response's event is already stored).
async fn audit_step(env: &DemoEnvironment, report: &mut Report) -> anyhow::Result<()> {
    let database = env.dir.path().join("airlock.db");
    let store = airlock_store::SqliteStore::open(&database).await?;
    let verification = store.verify().await?;
    let sessions = store.sessions(100).await?;
    let agent = sessions
        .iter()
        .filter(|s| s.principal_name.as_deref() == Some("build-agent"))
        .max_by_key(|s| s.events);
    let timeline = match agent {
        Some(session) => {
            let events = store.session_events(&session.session_id).await?;
            airlock_store::audit::text::render_timeline_compact(&session.session_id, &events)
        }
        None => String::new(),
    };
    report.step(
        "The audit trail (airlock sessions list / audit verify)",
        format!(
            "{} events in {} sessions; {}",
            verification.events_checked,
            sessions.len(),
            airlock_store::audit::text::render_verification(&database, &verification).trim_end()
        ),
        verification.is_ok() && agent.is_some(),
    );
    report.appendix = timeline;
    Ok(())
}

/// A secret-bearing answer: 200, and the secret replaced by a masked token.
fn masked_step(
    report: &mut Report,
    what: &str,
    response: &AgentResponse,
    value: &serde_json::Value,
) {
    let value = value.as_str().unwrap_or_default();
    let masked = airlock_masking::is_masked_token(value);
    let count = response
        .header(airlock_masking::MASKED_HEADER)
        .unwrap_or("none");
    if report.check(
        what,
        response,
        StatusCode::OK,
        format!("the agent sees {value:?} ({count} value(s) masked)"),
    ) && !masked
    {
        report.step(
            format!("{what}: masked"),
            format!("the secret came back unmasked ({} characters)", value.len()),
            false,
        );
    }
}

/// Who may come in: the agent is identified; a token from another tenant and
/// a request with no token (Key Vault's first probe) are refused with 401.
async fn identity_steps(env: &DemoEnvironment, report: &mut Report) -> anyhow::Result<()> {
    let groups_path =
        format!("/subscriptions/{SUBSCRIPTION_ID}/resourcegroups?api-version=2021-04-01");
    let agent = env.agent()?;
    let who = agent.get(&groups_path).await?;
    let spec = TokenSpec::agent();
    report.check(
        format!("Identify the agent ({}, a managed identity)", spec.name),
        &who,
        StatusCode::OK,
        format!(
            "token verified against the issuer's keys (oid {})",
            spec.object_id
        ),
    );

    let intruder_token = env.issuer.mint(
        &TokenSpec::application(
            "intruder",
            "00000000-0000-0000-0000-00000000dead",
            "00000000-0000-0000-0000-00000000beef",
        )
        .tenant_id(INTRUDER_TENANT),
    );
    let intruder =
        AgentClient::new(env.gateway.url(), Some(&env.ca_pem))?.with_token(intruder_token);
    let refused = intruder.get(&groups_path).await?;
    report.check(
        "GET  resource groups as 'intruder', a principal of another tenant",
        &refused,
        StatusCode::UNAUTHORIZED,
        format!(
            "{}: {}",
            refused.json()["error"]["code"],
            refused.json()["error"]["message"]
        ),
    );

    let anonymous = AgentClient::new(env.gateway.url(), Some(&env.ca_pem))?;
    let vault = format!(
        "https://{VAULT}.localhost:{}",
        env.gateway.local_addr().port()
    );
    let probe = anonymous
        .get(&format!("{vault}/secrets/db-password?api-version=7.4"))
        .await?;
    report.check(
        "GET  a secret with no token (the Key Vault SDK's first probe)",
        &probe,
        StatusCode::UNAUTHORIZED,
        format!(
            "WWW-Authenticate: {}",
            probe.header("www-authenticate").unwrap_or("missing")
        ),
    );
    Ok(())
}

/// A tenant the demo gateway does not allow.
const INTRUDER_TENANT: &str = "99999999-9999-9999-9999-999999999999";

/// What policy decides: a storage account create waits for a human's
/// approval (as a long-running operation the agent's SDK polls) and the
/// agent cannot approve it itself; a VM delete is blocked, naming the rule.
async fn policy_steps(
    env: &DemoEnvironment,
    agent: &AgentClient,
    rg: &str,
    storage: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let body = Bytes::from_static(
        br#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#,
    );
    let path = format!("{storage}/demonew?{ARM_API}");
    justification_step(agent, &path, body.clone(), report).await?;
    approval_steps(env, agent, path, body, report).await?;
    blocked_delete_step(agent, rg, report).await
}

/// A write the rule wants a reason for is refused (428) without one.
async fn justification_step(
    agent: &AgentClient,
    path: &str,
    body: Bytes,
    report: &mut Report,
) -> anyhow::Result<()> {
    let unjustified = agent.send(Method::PUT, path, &[], Some(body)).await?;
    report.check(
        "PUT  storage account demonew, without a justification",
        &unjustified,
        StatusCode::PRECONDITION_REQUIRED,
        format!(
            "{}: the rule asks the agent to say why",
            unjustified.json()["error"]["code"]
        ),
    );
    Ok(())
}

/// The justified write waits as an operation; the agent cannot approve it
/// itself; Alice approves it; the agent's SDK sees it finish.
async fn approval_steps(
    env: &DemoEnvironment,
    agent: &AgentClient,
    path: String,
    body: Bytes,
    report: &mut Report,
) -> anyhow::Result<()> {
    // The agent's SDK sends the create and follows the operation it gets.
    let sdk = agent.clone();
    let create = tokio::spawn(async move {
        sdk.long_running(
            Method::PUT,
            &path,
            &[(
                JUSTIFICATION_HEADER,
                "ticket DEMO-1: storage for build logs",
            )],
            Some(body),
            Duration::from_secs(60),
        )
        .await
    });
    let alice = env.approver()?;
    let approval = wait_for_pending(&alice).await?;
    let id = approval["id"].as_str().unwrap_or_default().to_owned();
    report.step(
        "PUT  storage account demonew, with x-airlock-justification",
        format!(
            "202 Accepted: held for approval {id} (rule '{}'), to run elevated as '{}'; the agent's SDK polls it as an Azure operation",
            approval["rule"].as_str().unwrap_or("?"),
            approval["elevateTo"].as_str().unwrap_or("nobody: NOT elevated"),
        ),
        approval["state"] == "pending" && approval["elevateTo"] == "contributor",
    );

    let own = env
        .admin(Some(&env.issuer.mint(&TokenSpec::agent())))?
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            None,
        )
        .await?;
    report.check(
        "the agent tries to approve its own request",
        &own,
        StatusCode::FORBIDDEN,
        format!(
            "{}: {}",
            own.json()["error"]["code"],
            own.json()["error"]["message"]
        ),
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let approved = alice
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(Bytes::from_static(br#"{"comment":"fine for build logs"}"#)),
        )
        .await?;
    report.check(
        "Alice (approvers group) approves it on the approval API",
        &approved,
        StatusCode::OK,
        format!("state {}", approved.json()["state"]),
    );

    let created = create.await??;
    let result = created.result.as_ref();
    report.step(
        "the agent's SDK sees its operation finish",
        format!(
            "{} after {} polls (InProgress while waiting){}; final GET: {} provisioningState {}",
            created.status,
            created.polls.len(),
            created
                .error
                .as_ref()
                .map(|(code, message)| format!(": {code}: {message}"))
                .unwrap_or_default(),
            result.map_or(0, |r| r.status.as_u16()),
            result.map_or(serde_json::Value::Null, |r| {
                r.json()["properties"]["provisioningState"].clone()
            }),
        ),
        created.succeeded()
            && result.is_some_and(|r| r.json()["properties"]["provisioningState"] == "Succeeded"),
    );
    Ok(())
}

/// A VM delete is blocked, naming the rule.
async fn blocked_delete_step(
    agent: &AgentClient,
    rg: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let vm = airlock_sim::VIRTUAL_MACHINES[0];
    let deleted = agent
        .send(
            Method::DELETE,
            &format!(
                "{rg}/providers/Microsoft.Compute/virtualMachines/{vm}?api-version=2024-07-01"
            ),
            &[],
            None,
        )
        .await?;
    report.check(
        format!("DELETE virtual machine {vm}"),
        &deleted,
        StatusCode::FORBIDDEN,
        format!(
            "{}: {}",
            deleted.json()["error"]["code"],
            deleted.json()["error"]["message"]
        ),
    );
    Ok(())
}

/// Waits (up to 30 s) until the approver sees a pending approval.
async fn wait_for_pending(approver: &AgentClient) -> anyhow::Result<serde_json::Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = approver.get("/api/approvals?state=pending").await?;
        if let Some(first) = listed.json()["value"].as_array().and_then(|a| a.first()) {
            return Ok(first.clone());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "no approval appeared: {}",
                String::from_utf8_lossy(&listed.body)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Follows `nextLink` until the last page; every link must lead back through the gateway.
async fn list_all_pages(
    agent: &AgentClient,
    storage: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut next = Some(format!("{storage}?{ARM_API}"));
    let (mut pages, mut accounts, mut all_through_gateway) = (0, 0, true);
    while let Some(url) = next.take() {
        let page = agent.get(&url).await?;
        if page.status != StatusCode::OK {
            report.check(
                "GET  storage accounts, page by page",
                &page,
                StatusCode::OK,
                "",
            );
            return Ok(());
        }
        let json = page.json();
        pages += 1;
        accounts += json["value"].as_array().map_or(0, Vec::len);
        next = json["nextLink"].as_str().map(str::to_owned);
        if let Some(link) = &next {
            all_through_gateway &= link.starts_with(agent.base());
            if pages > 50 || !all_through_gateway {
                break;
            }
        }
    }
    report.step(
        "GET  storage accounts, following nextLink",
        format!("{accounts} accounts in {pages} pages, every nextLink through the gateway: {all_through_gateway}"),
        all_through_gateway && pages > 1,
    );
    Ok(())
}
