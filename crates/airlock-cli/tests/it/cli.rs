//! The `airlock` binary, run as a user runs it.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use crate::support::Launch;

fn airlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env_remove("AIRLOCK_UPSTREAM_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs `airlock check-config` on `text`, where `POLICY` stands for the path
/// of a valid policy file.
fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n",
    )
    .unwrap();
    let path = dir.path().join("airlock.toml");
    std::fs::write(&path, text.replace("POLICY", policy.to_str().unwrap())).unwrap();
    let output = airlock(&["check-config", "--config", path.to_str().unwrap()]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout),
    )
}

#[test]
fn the_demo_runs_every_step_successfully() {
    demo_runs_every_step_successfully(Launch::Plain);
}

/// On one CPU the binary runs the current-thread runtime: every step of the
/// demo (TLS, HTTP/2, approvals held and polled, the forward proxy's
/// tunnels, reveals) runs on its one thread.
#[test]
fn on_one_cpu_the_demo_runs_every_step_successfully() {
    demo_runs_every_step_successfully(Launch::OneCpu);
}

fn demo_runs_every_step_successfully(launch: Launch) {
    let output = launch
        .command()
        .arg("demo")
        .env_remove("AIRLOCK_UPSTREAM_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "agent  --TLS-->  gateway https://localhost:",
        "over HTTP/2",
        "tenant '99999999-9999-9999-9999-999999999999' is not allowed",
        "WWW-Authenticate: Bearer authorization=\"https://login.windows.net/",
        "every nextLink through the gateway: true",
        "\"AirlockJustificationRequired\"",
        "202 Accepted: held for approval",
        "(rule 'storage-account-writes-need-approval')",
        "the agent tries to approve its own request\n           -> 403 \"AirlockNotAnApprover\"",
        "state \"approved\"",
        "Succeeded after",
        "final GET: 200 provisioningState \"Succeeded\"",
        "\"AirlockPolicyDenied\": \"Microsoft.Compute/virtualMachines/delete on",
        "is denied by rule 'no-vm-delete'",
        "the agent sees \"***MASKED:",
        "AirlockHostNotAllowed",
        "none with the agent's",
        "HTTPS_PROXY: GET resource groups at https://management.azure.com\n           -> 200 \"demo-rg\"",
        "HTTPS_PROXY: GET Key Vault secret db-password at https://demo-vault.vault.azure.net\n           -> 200 the agent sees \"***MASKED:",
        "CONNECT example.com:443 -> 403 - AirlockHostNotAllowed",
        "The audit trail (airlock sessions list / audit verify)",
        "events checked (from genesis)",
        "The agent's session, as recorded:",
        "-> 403 deny (no-vm-delete) AirlockPolicyDenied",
        "GET  db-password with x-airlock-reveal; Alice approves that one answer\n           -> 200 OK: approval",
        "(reveal: true), the value came back in clear: yes, x-airlock-revealed: 1",
        "GET  db-password again, without asking\n           -> 200 the agent sees \"***MASKED:",
        "the exfiltration guard holds the answer\n           -> 409 Conflict \"AirlockAnswerHeld\": Alice sees a list of 1 item(s) ([\"db-password\"])",
        "1 secret(s) listed, from the held answer (Azure asked once)",
        "steps behaved as expected",
    ] {
        assert!(
            stdout.contains(expected),
            "demo output lacks {expected:?}:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn a_good_config_checks_ok() {
    let (ok, out) = check_config(
        "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"POLICY\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
    );
    assert!(ok, "{out}");
    assert!(out.contains(": ok"), "{out}");
}

#[test]
fn bad_configs_are_refused_with_the_key_and_the_fix() {
    let cases = [
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\nport = 1\n",
            "unknown field `port`",
        ),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n",
            "missing field `identity`",
        ),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = []\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"POLICY\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
            "identity.tenants",
        ),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\nalgorithms = [\"HS256\"]\n[policy]\nfile = \"POLICY\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
            "identity.algorithms",
        ),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"POLICY\"\n[upstream.credential]\nkind = \"static\"\n",
            "upstream.credential.token",
        ),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"POLICY\"\n[upstream.credential]\nkind = \"password\"\n",
            "unknown variant `password`",
        ),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"POLICY\"\n[upstream]\narm_url = \"http://127.0.0.1:1\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
            "allow_insecure_http",
        ),
        ("[listen\n", "airlock.toml"),
        (
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"POLICY\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n[[masking.reveal]]\nname = \"everyone\"\noperations = [\"*\"]\n",
            "reveal rule 'everyone' selects no principals, so it would reveal to everyone",
        ),
    ];
    for (text, expected) in cases {
        let (ok, out) = check_config(text);
        assert!(!ok, "accepted:\n{text}");
        assert!(
            out.contains(expected),
            "for:\n{text}\nexpected {expected:?} in:\n{out}"
        );
        assert!(out.starts_with("error: "), "{out}");
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let output = airlock(&["serve", "--config", "/nonexistent/airlock.toml"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read config file /nonexistent/airlock.toml"),
        "{stderr}"
    );
    // The cause is said once, not again after the message that holds it.
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn policy_check_reports_rules_and_the_line_of_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, airlock_demo::DEMO_POLICY).unwrap();
    let output = airlock(&["policy", "check", good.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .ends_with(": ok, 8 rules, 0 quotas, 1 answer rules\n")
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nname = \"a\"\neffect = \"approve\"\nactions = [\"*\"]\n",
    )
    .unwrap();
    let output = airlock(&["policy", "check", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml:1: rule 'a': an approve rule needs [rule.approval]"),
        "{stderr}"
    );
}

#[test]
fn policy_explain_shows_operation_decision_and_every_rule() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "{}\n[[quota]]\nname = \"vm-reads\"\noperations = [\"Microsoft.Compute/virtualMachines/read\"]\nmax_requests = 3\nwindow = \"1h\"\n\n[[answer]]\nname = \"big-vm-answers\"\noperations = [\"Microsoft.Compute/virtualMachines/read\"]\nmin_bytes = 1000000\napproval = {{ groups = [\"ops\"] }}\n",
            airlock_demo::DEMO_POLICY
        ),
    )
    .unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"{}\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
            policy.display()
        ),
    )
    .unwrap();
    let vm = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/vm1";
    let explain = |request: &str| {
        let output = airlock(&[
            "policy",
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--principal",
            "id=00000000-0000-0000-0000-0000000000a1,kind=managed_identity,groups=00000000-0000-0000-0000-0000000000c1",
            "--request",
            request,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let denied = explain(&format!("DELETE {vm}?api-version=2024-07-01"));
    assert!(
        denied.contains(&format!(
            "operation  Microsoft.Compute/virtualMachines/delete on {vm}"
        )),
        "{denied}"
    );
    assert!(
        denied.contains("decision   DENY by rule 'no-vm-delete'"),
        "{denied}"
    );
    assert!(
        denied.contains("no-vm-delete") && denied.contains("APPLIES"),
        "{denied}"
    );
    assert!(
        denied.contains("skipped: the operation is not among its actions"),
        "{denied}"
    );

    let read = explain(&format!("GET {vm}?api-version=2024-07-01"));
    assert!(
        read.contains("decision   ALLOW by rule 'agents-read'"),
        "{read}"
    );
    assert!(
        read.contains("quota      quota 'vm-reads' (3 operations per 1h per principal) counts 1 operation(s) of this request"),
        "{read}"
    );
    assert!(
        read.contains("answer     rule 'big-vm-answers' looks at the answer"),
        "{read}"
    );
    assert!(
        !denied.contains("quota ") && !denied.contains("answer  "),
        "{denied}"
    );

    let output = airlock(&[
        "policy",
        "explain",
        "--config",
        config.to_str().unwrap(),
        "--principal",
        "id=x",
        "--request",
        &format!("DELETE {vm}"),
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("400"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An agent acting for a user is explained facet by facet: the agent's
/// rules, then the user's, and which of the two decided.
#[test]
fn policy_explain_decides_an_agent_acting_for_a_user_as_both() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
name = "bot-reads"
effect = "allow"
actions = ["*/read"]
[rule.principals]
agents = ["bot-app"]

[[rule]]
name = "alice-compute"
effect = "allow"
actions = ["Microsoft.Compute/*"]
[rule.principals]
ids = ["alice"]
"#,
    )
    .unwrap();
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"{}\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n",
            policy.display()
        ),
    )
    .unwrap();
    let vm = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/vm1";
    let explain = |principal: &str, request: &str| {
        let output = airlock(&[
            "policy",
            "explain",
            "--config",
            config.to_str().unwrap(),
            "--principal",
            principal,
            "--request",
            request,
        ]);
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let bot_for_alice = "id=alice,kind=agent_for_user,name=Alice,agent=bot-app,blueprint=bp";

    let (ok, read, err) = explain(bot_for_alice, &format!("GET {vm}?api-version=2024-07-01"));
    assert!(ok, "{err}");
    assert!(
        read.contains("acting for Alice") && read.contains("blueprint bp"),
        "{read}"
    );
    assert!(
        read.contains("decision   ALLOW by rule 'bot-reads + alice-compute'"),
        "{read}"
    );
    assert!(
        read.contains("(as the agent)") && read.contains("(as the user the agent acts for)"),
        "{read}"
    );

    // Alice may delete; her agent may not, so the agent's rules decide.
    let (_, delete, err) = explain(
        bot_for_alice,
        &format!("DELETE {vm}?api-version=2024-07-01"),
    );
    assert!(delete.contains("decision   DENY"), "{delete}{err}");
    assert!(delete.contains("decided by the agent"), "{delete}");

    let (ok, _, err) = explain("id=alice,kind=agent_for_user", &format!("GET {vm}"));
    assert!(!ok && err.contains("needs the agent's app id"), "{err}");
}

/// `airlock approvals …` against a running gateway (the demo environment:
/// TLS with its own CA, the simulated Azure, the development issuer).
#[tokio::test(flavor = "multi_thread")]
async fn the_approvals_cli_lists_shows_and_decides_through_the_admin_api() {
    use airlock_demo::DemoEnvironment;
    use airlock_sim::TokenSpec;

    let env = DemoEnvironment::start().await.unwrap();
    let agent = env.agent().unwrap();
    let rg = format!(
        "/subscriptions/{}/resourceGroups/{}",
        airlock_sim::SUBSCRIPTION_ID,
        airlock_sim::RESOURCE_GROUP
    );
    let started = agent
        .send(
            http::Method::PUT,
            &format!(
                "{rg}/providers/Microsoft.Storage/storageAccounts/clitest?api-version=2023-05-01"
            ),
            &[("x-airlock-justification", "CLI test")],
            Some(bytes::Bytes::from_static(br#"{"location":"westeurope"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(started.status, 202, "{:?}", started.body);
    let id = started.header("x-airlock-approval-id").unwrap().to_owned();
    let ca = env.dir.path().join("ca.pem");
    let admin = env.gateway.admin_url().to_owned();
    let approver = env.issuer.mint(&TokenSpec::approver());
    let agent_token = env.issuer.mint(&TokenSpec::agent());
    let run = move |token: String, args: Vec<String>| {
        let ca = ca.clone();
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_airlock"))
                .arg("approvals")
                .args(&args)
                .args(["--ca-file", ca.to_str().unwrap()])
                .env("AIRLOCK_ADMIN_URL", &admin)
                .env("AIRLOCK_TOKEN", &token)
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
    };
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let listed = run(approver.clone(), vec!["list".into()]).await.unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains(&id), "{}", text(&listed));
    assert!(text(&listed).contains("Microsoft.Storage/storageAccounts/write"));

    let shown = run(approver.clone(), vec!["show".into(), id.clone()])
        .await
        .unwrap();
    assert!(shown.status.success(), "{}", text(&shown));
    assert!(text(&shown).contains("CLI test"), "{}", text(&shown));

    let body = run(approver.clone(), vec!["body".into(), id.clone()])
        .await
        .unwrap();
    assert!(body.status.success(), "{}", text(&body));
    assert_eq!(
        String::from_utf8_lossy(&body.stdout),
        "{\"location\":\"westeurope\"}\n"
    );

    let refused = run(agent_token, vec!["approve".into(), id.clone()])
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("AirlockNotAnApprover"),
        "{}",
        text(&refused)
    );
    assert!(
        !text(&refused).contains("eyJ"),
        "the token is never printed"
    );

    let approved = run(
        approver.clone(),
        vec![
            "approve".into(),
            id.clone(),
            "--comment".into(),
            "ok from the CLI".into(),
        ],
    )
    .await
    .unwrap();
    assert!(approved.status.success(), "{}", text(&approved));
    assert!(text(&approved).contains("approved"), "{}", text(&approved));
    let again = run(approver, vec!["deny".into(), id.clone()])
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("AirlockApprovalNotPending"),
        "{}",
        text(&again)
    );
    env.shutdown().await;
}

/// `airlock sessions …` and `airlock audit …` on a database the store
/// filled, then tampered with behind its back.
#[test]
fn the_audit_and_sessions_commands_read_export_verify_and_catch_tampering() {
    use airlock_recorder::chain::EXAMPLE_EVENT;
    use airlock_recorder::{AuditEvent, AuditSink, ChainHead, EventPrincipal};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("airlock.db");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = airlock_store::SqliteStore::open(&db).await.unwrap();
        let mut head = store.head().await.unwrap().unwrap_or_default();
        assert_eq!(head, ChainHead::default());
        let events: Vec<_> = (1..=6)
            .map(|n| {
                let mut event: AuditEvent = serde_json::from_str(EXAMPLE_EVENT).unwrap();
                event.time = std::time::SystemTime::now();
                event.session_id = if n <= 4 { "sess-a" } else { "sess-b" }.into();
                event.path = format!("/subscriptions/s/resourceGroups/rg-{n}");
                event.principal = Some(EventPrincipal {
                    id: "oid-1".into(),
                    tenant_id: "t1".into(),
                    kind: "managed_identity".into(),
                    display_name: Some("deploy-agent".into()),
                    app_id: None,
                    agent: None,
                    groups: Vec::new(),
                    roles: Vec::new(),
                });
                if n == 2 {
                    event.method = "DELETE".into();
                    event.operations =
                        vec!["Microsoft.Resources/subscriptions/resourceGroups/delete".into()];
                    event.decision = Some("deny".into());
                    event.rule = Some("no-rg-delete".into());
                    event.status = 403;
                    event.error_code = Some("AirlockPolicyDenied".into());
                }
                if n == 3 {
                    event.masked_count = 2;
                    event.masked_paths = vec!["$.keys[0].value".into(), "$.keys[1].value".into()];
                    event.response_body =
                        Some(r#"{"keys":[{"value":"***MASKED:0badf00d***"}]}"#.into());
                }
                head.link(event)
            })
            .collect();
        store.append(&events[..3]).await.unwrap();
        store.append(&events[3..]).await.unwrap();
    });
    let database = ["--database", db.to_str().unwrap()];
    let run = |args: &[&str]| {
        let output = airlock(&[args, &database[..]].concat());
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stdout, stderr)
    };

    let (code, list, err) = run(&["sessions", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("SESSION"), "{list}");
    assert!(
        lines[1].starts_with("sess-b") && lines[2].starts_with("sess-a"),
        "{list}"
    );
    assert!(lines[2].contains("deploy-agent"), "{list}");

    let (code, shown, err) = run(&["sessions", "show", "sess-a"]);
    assert_eq!(code, Some(0), "{err}");
    for expected in [
        "session sess-a: deploy-agent (oid-1), 4 requests",
        "#2  deploy-agent",
        "DELETE /subscriptions/s/resourceGroups/rg-2 -> 403",
        "operation  Microsoft.Resources/subscriptions/resourceGroups/delete",
        "decision   deny by rule 'no-rg-delete' (AirlockPolicyDenied)",
        "masked     2 values ($.keys[0].value, $.keys[1].value)",
    ] {
        assert!(shown.contains(expected), "lacks {expected:?}:\n{shown}");
    }
    let (code, _, err) = run(&["sessions", "show", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no session \"nope\""), "{err}");

    let (code, har, err) = run(&["sessions", "export", "sess-a", "--har"]);
    assert_eq!(code, Some(0), "{err}");
    let har: serde_json::Value = serde_json::from_str(&har).unwrap();
    assert_eq!(har["log"]["version"], "1.2");
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 4);
    assert_eq!(har["log"]["entries"][1]["_airlock"]["rule"], "no-rg-delete");

    let (code, jsonl, err) = run(&["audit", "export", "--since", "1h", "--format", "jsonl"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(jsonl.lines().count(), 6);
    let first: airlock_recorder::ChainedEvent =
        serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first.seq, 1);

    let (code, verified, err) = run(&["audit", "verify"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        verified.contains(": ok: 6 events checked (from genesis), head event 6"),
        "{verified}"
    );

    // A signed checkpoint; the key file is created, private.
    let key = dir.path().join("audit.key");
    let (code, signed, err) = run(&[
        "audit",
        "checkpoint",
        "--signing-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(signed.contains("checkpoint  event 6 hash "), "{signed}");
    assert!(signed.contains("created signing key"), "{signed}");
    let public = dir.path().join("audit.key.pub");
    let (code, verified, err) = run(&["audit", "verify", "--public-key", public.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        verified.contains("checkpoints: 1 on the chain"),
        "{verified}"
    );

    // Nothing is old enough to prune.
    let (code, pruned, err) = run(&["audit", "prune", "--max-age", "90d"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(pruned, "nothing to prune\n");

    // The database from the gateway's configuration.
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!("[store]\ndatabase = {:?}\n", db.to_str().unwrap()),
    )
    .unwrap();
    let output = airlock(&["audit", "verify", "--config", config.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Someone turns the denial into an allow: the edited document appended
    // to its file, the row pointed at it.
    let connection = rusqlite::Connection::open(&db).unwrap();
    let (file, at, bytes): (u64, usize, usize) = connection
        .query_row(
            "SELECT doc_file, doc_at, doc_bytes FROM audit_events WHERE seq = 2",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    let segment = dir
        .path()
        .join("airlock.db-trail")
        .join(format!("{file:020}.jsonl"));
    let mut text = std::fs::read_to_string(&segment).unwrap();
    let edited = text[at..at + bytes].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    assert_ne!(edited, text[at..at + bytes]);
    connection
        .execute(
            "UPDATE audit_events SET doc_at = ?1, doc_bytes = ?2 WHERE seq = 2",
            rusqlite::params![text.len(), edited.len()],
        )
        .unwrap();
    text.push_str(&edited);
    text.push('\n');
    std::fs::write(&segment, text).unwrap();
    let (code, verified, _) = run(&["audit", "verify"]);
    assert_eq!(code, Some(1), "{verified}");
    assert!(
        verified.contains("TAMPERED at event 2: event 2 was edited"),
        "{verified}"
    );
    assert!(verified.contains("1 event verified"), "{verified}");
}

#[test]
fn ca_init_writes_a_ca_with_an_owner_only_key_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let output = airlock(&["ca", "init", "--dir", path]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cert = std::fs::read_to_string(dir.path().join("proxy-ca.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("proxy-ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = airlock(&["ca", "init", "--dir", path]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("proxy-ca.pem")).unwrap(),
        cert,
        "the first CA is kept"
    );
}
