//! Per-agent upstream identities and just-in-time elevation (issue 14,
//! points 4 and 5): the gateway acts in Azure as a different app
//! registration per group of agents, and as a more privileged one only for
//! the one request a human approved. The simulated Azure records the token
//! every request carried; the tests read whose it was.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use airlock_sim::{AGENTS_GROUP, APPROVERS_GROUP, IssuerHandle, TENANT_ID, TokenSpec};
use airlock_tests::{Harness, Options, rg_path};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;

const DEFAULT_APP: &str = "airlock-default-app";
const READER_APP: &str = "airlock-reader-app";
const CONTRIBUTOR_APP: &str = "airlock-contributor-app";

/// `kind = "client_secret"` keys for `client_id`, registered with the issuer.
fn signing_in_as(issuer: &IssuerHandle, dir: &std::path::Path, client_id: &str) -> String {
    let secret = format!("{client_id}-secret");
    issuer.register_client(client_id, &secret);
    let file = dir.join(client_id);
    std::fs::write(&file, secret).unwrap();
    format!(
        "kind = \"client_secret\", tenant_id = \"{TENANT_ID}\", client_id = \"{client_id}\", client_secret_file = \"{}\", authority_host = \"http://{}\"",
        file.display(),
        issuer.addr()
    )
}

fn default_identity(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    signing_in_as(issuer, dir, DEFAULT_APP).replace(", ", "\n")
}

/// Agents act as a reader; the contributor serves no one but elevations.
fn identities(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    format!(
        r#"
[[upstream.identities]]
name = "reader"
serves = {{ groups = ["{AGENTS_GROUP}"] }}
credential = {{ {} }}

[[upstream.identities]]
name = "contributor"
credential = {{ {} }}
"#,
        signing_in_as(issuer, dir, READER_APP),
        signing_in_as(issuer, dir, CONTRIBUTOR_APP)
    )
}

fn policy() -> String {
    format!(
        r#"
[[rule]]
name = "everyone-reads"
effect = "allow"
actions = ["*/read"]

[[rule]]
name = "vm-deletes-run-as-contributor"
effect = "approve"
actions = ["Microsoft.Compute/virtualMachines/delete"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
elevate_to = "contributor"

[[rule]]
name = "list-keys-is-held"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/listKeys/action"]
[rule.approval]
groups = ["{APPROVERS_GROUP}"]
hold = "20s"
"#
    )
}

async fn harness() -> Harness {
    Harness::start_with(Options {
        policy: Some(policy()),
        credential: Some(default_identity),
        upstream_identities: Some(identities),
        ..Options::default()
    })
    .await
}

/// Whose token (its `azp`) Azure received with each request matching `method` and `path_part`.
fn acted_as(h: &Harness, method: &Method, path_part: &str) -> Vec<String> {
    callers(h, method, path_part)
        .into_iter()
        .map(|(_, azp)| azp)
        .collect()
}

async fn pending(h: &Harness) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = h
            .approver()
            .get("/api/approvals?state=pending")
            .await
            .unwrap();
        if let Some(first) = listed.json()["value"].get(0) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no pending approval appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn approve(h: &Harness, id: &str) {
    let answer = h
        .approver()
        .send(
            Method::POST,
            &format!("/api/approvals/{id}/approve"),
            &[],
            Some(Bytes::from_static(br#"{"comment":"go"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
}

#[tokio::test]
async fn each_agent_group_acts_as_its_own_azure_identity() {
    let h = harness().await;
    let groups = format!("{}?api-version=2021-04-01", rg_path());
    // The agent is in the agents group: the reader serves it.
    assert_eq!(h.agent.get(&groups).await.unwrap().status, StatusCode::OK);
    // Someone in no mapped group: the default identity.
    let outsider = TokenSpec::agent()
        .object_id("00000000-0000-0000-0000-0000000000b7")
        .groups(Vec::<String>::new());
    let outsider = h.client(Some(&h.issuer.mint(&outsider)));
    assert_eq!(outsider.get(&groups).await.unwrap().status, StatusCode::OK);
    assert_eq!(
        acted_as(&h, &Method::GET, "resourcegroups"),
        [READER_APP, DEFAULT_APP]
    );
    let trail = h.audit_trail().await;
    let identities: Vec<(Option<&str>, bool)> = trail
        .iter()
        .map(|e| (e.event.upstream_identity.as_deref(), e.event.elevated))
        .collect();
    assert_eq!(
        identities,
        [(Some("reader"), false), (Some("default"), false)]
    );
    h.shutdown().await;
}

#[tokio::test]
async fn only_the_approved_request_runs_elevated() {
    let h = harness().await;
    let vm = airlock_sim::VIRTUAL_MACHINES[0];
    let vm_path = format!(
        "{}/providers/Microsoft.Compute/virtualMachines/{vm}?api-version=2024-07-01",
        rg_path()
    );
    // A delete waits as an operation; the approver sees it will run elevated.
    let agent = h.agent.clone();
    let path = vm_path.clone();
    let run = tokio::spawn(async move {
        agent
            .long_running(Method::DELETE, &path, &[], None, Duration::from_secs(30))
            .await
    });
    let shown = pending(&h).await;
    assert_eq!(shown["elevateTo"], "contributor", "{shown}");
    let elevated_id = shown["id"].as_str().unwrap().to_owned();
    approve(&h, &elevated_id).await;
    assert!(run.await.unwrap().unwrap().succeeded());

    // A held request under a rule without elevate_to runs as the agent's own.
    let keys = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{}/listKeys?api-version=2023-05-01",
        rg_path(),
        airlock_sim::STORAGE_ACCOUNT
    );
    let agent = h.agent.clone();
    let held = tokio::spawn(async move { agent.send(Method::POST, &keys, &[], None).await });
    let shown = pending(&h).await;
    assert!(shown.get("elevateTo").is_none(), "{shown}");
    approve(&h, shown["id"].as_str().unwrap()).await;
    assert_eq!(held.await.unwrap().unwrap().status, StatusCode::OK);

    // Afterwards the agent is back on its everyday identity.
    let read = h.agent.get(&vm_path).await.unwrap();
    assert_eq!(read.status, StatusCode::NOT_FOUND, "the VM is gone");
    assert_eq!(acted_as(&h, &Method::DELETE, vm), [CONTRIBUTOR_APP]);
    assert_eq!(acted_as(&h, &Method::POST, "listKeys"), [READER_APP]);
    assert_eq!(acted_as(&h, &Method::GET, vm), [READER_APP]);

    // The audit trail says which identity acted: the approved delete (sent
    // by the agent's poll) and the polls following Azure's operation for it
    // (the operation belongs to the identity that started it) ran elevated,
    // for that approval only.
    let trail = h.audit_trail().await;
    let upstream: Vec<_> = trail
        .iter()
        .map(|e| &e.event)
        .filter(|e| e.upstream_status.is_some())
        .collect();
    let (elevated, everyday): (Vec<&airlock_recorder::AuditEvent>, Vec<_>) =
        upstream.iter().copied().partition(|e| e.elevated);
    assert!(!elevated.is_empty(), "{upstream:#?}");
    for event in &elevated {
        assert_eq!(event.upstream_identity.as_deref(), Some("contributor"));
        assert_eq!(event.approval_id.as_deref(), Some(elevated_id.as_str()));
        assert!(event.path.starts_with("/airlock/operations/"), "{event:#?}");
    }
    assert!(
        everyday.len() >= 2
            && everyday
                .iter()
                .all(|e| e.upstream_identity.as_deref() == Some("reader")),
        "{everyday:#?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn an_elevation_to_an_identity_the_gateway_lacks_stops_the_start() {
    let sim = airlock_sim::SimAzure::builder().start().await.unwrap();
    let issuer = airlock_sim::DevIssuer::start(TENANT_ID).await.unwrap();
    // An identity that does not exist, and one that acts as the caller.
    for target in ["owner", "as-caller"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("policy.toml"),
            policy().replace("\"contributor\"", &format!("\"{target}\"")),
        )
        .unwrap();
        let text = airlock_demo::LocalConfig::new(&sim, &issuer, dir.path(), "static-token")
            .extra_toml(caller_identities(&issuer, dir.path()))
            .render();
        let config = airlock_gateway::Config::parse(&text, "airlock.toml", |_| None).unwrap();
        let error = airlock_gateway::Gateway::start(config)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rule 'vm-deletes-run-as-contributor'")
                && error.contains(&format!(
                    "elevate_to = '{target}' is not an upstream identity the gateway holds"
                )),
            "{error}"
        );
    }
    sim.shutdown().await;
    issuer.shutdown().await;
}

const GATEWAY_APP: &str = "airlock-gateway-app";
const BOT_APP: &str = "7d1c0000-0000-0000-0000-0000000000c2";

/// People and agents acting for people reach Azure as themselves (the
/// gateway's app exchanges their token on their behalf); the contributor
/// serves only elevations.
fn caller_identities(issuer: &IssuerHandle, dir: &std::path::Path) -> String {
    let secret = "gateway-app-secret";
    issuer.register_on_behalf_of_client(GATEWAY_APP, secret, "api://airlock");
    let file = dir.join(GATEWAY_APP);
    std::fs::write(&file, secret).unwrap();
    format!(
        r#"
[[upstream.identities]]
name = "as-caller"
on_behalf_of = true
serves = {{ kinds = ["user", "agent_for_user"] }}
credential = {{ kind = "client_secret", tenant_id = "{TENANT_ID}", client_id = "{GATEWAY_APP}", client_secret_file = "{}", authority_host = "http://{}" }}

[[upstream.identities]]
name = "contributor"
credential = {{ {} }}
"#,
        file.display(),
        issuer.addr(),
        signing_in_as(issuer, dir, CONTRIBUTOR_APP)
    )
}

/// Whose token (`oid`, `azp`) Azure received with each request matching
/// `method` and `path_part` (any case).
fn callers(h: &Harness, method: &Method, path_part: &str) -> Vec<(String, String)> {
    let verifier = h.issuer.verifier();
    let part = path_part.to_ascii_lowercase();
    h.sim
        .requests()
        .iter()
        .filter(|r| r.method == *method && r.uri.path().to_ascii_lowercase().contains(&part))
        .map(|r| {
            let bearer = r.headers["authorization"].to_str().unwrap();
            let claims = verifier
                .verify(
                    bearer.strip_prefix("Bearer ").unwrap(),
                    "https://management.azure.com",
                )
                .unwrap();
            (
                claims["oid"].as_str().unwrap().to_owned(),
                claims["azp"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// An agent acting for Alice keeps Alice's own narrow Azure role (Reader on
/// the group): it reads as Alice, Azure itself refuses its write with 403
/// `AuthorizationFailed`, one approved delete runs elevated as the
/// contributor, and its next write is refused by Azure again.
#[tokio::test]
async fn an_agent_for_a_user_keeps_the_users_own_azure_role_and_one_approval_elevates() {
    let h = Harness::start_with(Options {
        policy: Some(format!(
            "{}\n[[rule]]\nname = \"storage-writes\"\neffect = \"allow\"\nactions = [\"Microsoft.Storage/storageAccounts/write\"]\n",
            policy()
        )),
        credential: Some(default_identity),
        upstream_identities: Some(caller_identities),
        ..Options::default()
    })
    .await;
    let alice = TokenSpec::approver();
    h.sim
        .assign_role(&alice.object_id, airlock_sim::Role::Reader, &rg_path());
    let bot = h.client(Some(
        &h.issuer
            .mint(&TokenSpec::agent_for_user(alice.clone(), BOT_APP)),
    ));

    let read = bot
        .get(&format!("{}?api-version=2021-04-01", rg_path()))
        .await
        .unwrap();
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(
        callers(&h, &Method::GET, "resourcegroups"),
        [(alice.object_id.clone(), BOT_APP.to_owned())],
        "Azure saw Alice, through her agent"
    );
    let account = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/botacct?api-version=2023-05-01",
        rg_path()
    );
    let body = Bytes::from_static(
        br#"{"location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"}"#,
    );
    let write = bot
        .send(Method::PUT, &account, &[], Some(body.clone()))
        .await
        .unwrap();
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{:?}", write.body);
    assert_eq!(
        write.json()["error"]["code"],
        "AuthorizationFailed",
        "Azure's own refusal"
    );

    // One delete, approved by someone else, runs as the contributor.
    let vm = format!(
        "{}/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2024-07-01",
        rg_path()
    );
    let deleting = {
        let bot = bot.clone();
        let vm = vm.clone();
        tokio::spawn(async move {
            bot.long_running(Method::DELETE, &vm, &[], None, Duration::from_secs(30))
                .await
        })
    };
    let approval = pending(&h).await;
    let bob = h.admin(Some(&h.issuer.mint(
        &TokenSpec::approver().object_id("00000000-0000-0000-0000-0000000000b9"),
    )));
    let approved = bob
        .send(
            Method::POST,
            &format!(
                "/api/approvals/{}/approve",
                approval["id"].as_str().unwrap()
            ),
            &[],
            Some(Bytes::from_static(br#"{"comment":"once"}"#)),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let run = deleting.await.unwrap().unwrap();
    assert!(run.succeeded(), "{:?}", run.error);
    assert_eq!(
        acted_as(&h, &Method::DELETE, "virtualMachines/vm1"),
        [CONTRIBUTOR_APP]
    );

    // And then Azure refuses the agent's next write again.
    let again = bot
        .send(Method::PUT, &account, &[], Some(body))
        .await
        .unwrap();
    assert_eq!(
        again.json()["error"]["code"],
        "AuthorizationFailed",
        "{:?}",
        again.body
    );
    let trail = h.audit_trail().await;
    assert!(
        trail.iter().any(
            |e| e.event.upstream_identity.as_deref() == Some("as-caller") && !e.event.elevated
        ),
        "recorded as the caller's own identity"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn identities_acting_as_the_caller_serve_only_delegated_callers_with_the_right_credential() {
    use airlock_gateway::Config;
    let base = "[listen]\naddress = \"127.0.0.1:8443\"\n[identity]\ntenants = [\"t1\"]\naudiences = [\"api://airlock\"]\n[policy]\nfile = \"policy.toml\"\n[upstream.credential]\nkind = \"static\"\ntoken = \"t\"\n";
    let with = |identity: &str| {
        Config::parse(
            &format!(
                "{base}[[upstream.identities]]\nname = \"as-caller\"\non_behalf_of = true\n{identity}"
            ),
            "airlock.toml",
            |_| None,
        )
    };
    let secret = "credential = { kind = \"client_secret\", tenant_id = \"t1\", client_id = \"c1\", client_secret = \"s\" }\n";
    assert!(
        with(&format!(
            "serves = {{ kinds = [\"user\", \"agent_for_user\"] }}\n{secret}"
        ))
        .is_ok()
    );
    for (identity, problem) in [
        (
            format!("serves = {{ kinds = [\"user\", \"managed_identity\"] }}\n{secret}"),
            "only callers with delegated tokens",
        ),
        (secret.to_owned(), "only callers with delegated tokens"),
        (
            "serves = { kinds = [\"user\"] }\ncredential = { kind = \"static\", token = \"t\" }\n"
                .to_owned(),
            "not a client secret",
        ),
    ] {
        let message = with(&identity).unwrap_err().to_string();
        assert!(message.contains(problem), "{identity}: {message}");
    }

    // Forwarding the caller's own token: no credential, the forward proxy,
    // an Azure audience accepted.
    let forwarding = |identity: &str, rest: &str| {
        Config::parse(
            &format!(
                "{}{rest}[[upstream.identities]]\nname = \"as-caller\"\n{identity}",
                base.replace(
                    "[\"api://airlock\"]",
                    "[\"api://airlock\", \"https://management.azure.com\"]"
                )
            ),
            "airlock.toml",
            |_| None,
        )
    };
    let dir = tempfile::tempdir().unwrap();
    for file in ["ca.pem", "ca-key.pem"] {
        std::fs::write(dir.path().join(file), "").unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = dir.path().join("ca-key.pem");
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let proxy = format!(
        "[forward_proxy]\nenabled = true\nca_cert_file = \"{}\"\nca_key_file = \"{}\"\n",
        dir.path().join("ca.pem").display(),
        dir.path().join("ca-key.pem").display()
    );
    let proxy = proxy.as_str();
    let user = "forward_caller_token = true\nserves = { kinds = [\"user\"] }\n";
    for (identity, rest, problem) in [
        (user.to_owned(), "", "the forward proxy is off"),
        (
            format!("{user}on_behalf_of = true\n{secret}"),
            proxy,
            "both exchanges",
        ),
        (format!("{user}{secret}"), proxy, "takes no credential"),
        (
            "serves = { kinds = [\"user\"] }\n".to_owned(),
            proxy,
            "has no credential",
        ),
        (
            "forward_caller_token = true\n".to_owned(),
            proxy,
            "serves no one",
        ),
    ] {
        let message = forwarding(&identity, rest).unwrap_err().to_string();
        assert!(message.contains(problem), "{identity}: {message}");
    }
    let message = Config::parse(
        &format!("{base}{proxy}[[upstream.identities]]\nname = \"as-caller\"\n{user}"),
        "airlock.toml",
        |_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("accepts no Azure audience"), "{message}");
}
