//! The `airlock` binary, run as a user runs it.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

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
    let output = airlock(&["demo"]);
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
}

#[test]
fn policy_check_reports_rules_and_the_line_of_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, airlock_gateway::demo::DEMO_POLICY).unwrap();
    let output = airlock(&["policy", "check", good.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": ok, 4 rules\n"));

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
    std::fs::write(&policy, airlock_gateway::demo::DEMO_POLICY).unwrap();
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

/// `airlock approvals …` against a running gateway (the demo environment:
/// TLS with its own CA, the simulated Azure, the development issuer).
#[tokio::test(flavor = "multi_thread")]
async fn the_approvals_cli_lists_shows_and_decides_through_the_admin_api() {
    use airlock_gateway::demo::DemoEnvironment;
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
