//! `airlock policy replay` and `airlock roles suggest` over a trail recorded
//! by a real gateway process:
//! two agents read and create resource groups through it, then candidate
//! policies are replayed over what it stored.

use std::process::Output;

use airlock_core::{Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
use airlock_demo::AgentClient;
use airlock_policy::suggest::RoleDefinition;
use airlock_policy::{Policy, PolicyEngine};
use airlock_sim::{AGENTS_GROUP, TokenSpec};
use airlock_store::SqliteStore;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::support::{ALLOW_ALL, Stack};

const UPSTREAM_TOKEN: &str = "replay-test-upstream-token";
const NO_NEW_GROUPS: &str = "[[rule]]\nname = \"no-new-groups\"\neffect = \"deny\"\nactions = [\"Microsoft.Resources/subscriptions/resourceGroups/write\"]\n\n[[rule]]\nname = \"allow-all\"\neffect = \"allow\"\nactions = [\"*\"]\ndata_actions = [\"*\"]\n";
const GROUP_WRITE: &str = "Microsoft.Resources/subscriptions/resourceGroups/write";
const OPS_AGENT: &str = "00000000-0000-0000-0000-0000000000b1";
/// `TokenSpec::agent()`'s object id.
const BUILD_AGENT: &str = "00000000-0000-0000-0000-0000000000a1";

fn replay(dir: &std::path::Path, candidate: &str, extra: &[&str]) -> Output {
    std::fs::write(dir.join("candidate.toml"), candidate).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["policy", "replay", "--config"])
        .arg(dir.join("airlock.toml"))
        .arg("--policy")
        .arg(dir.join("candidate.toml"))
        .args(extra)
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_finds_exactly_the_requests_a_candidate_would_change() {
    let mut stack = Stack::start(UPSTREAM_TOKEN, ALLOW_ALL, |config| config).await;
    let (url, issuer) = (stack.url.clone(), &stack.issuer);

    // The build agent (in the agents group) and an ops agent (in none).
    let build = AgentClient::new(&url, None)
        .unwrap()
        .with_token(issuer.mint(&TokenSpec::agent()));
    let ops = AgentClient::new(&url, None).unwrap().with_token(
        issuer.mint(
            &TokenSpec::agent()
                .name("ops-agent")
                .object_id(OPS_AGENT)
                .groups(Vec::<String>::new()),
        ),
    );
    let groups = format!(
        "/subscriptions/{}/resourcegroups",
        airlock_sim::SUBSCRIPTION_ID
    );
    for (agent, name, reads, writes) in [(&build, "build", 6, 3), (&ops, "ops", 4, 2)] {
        for _ in 0..reads {
            let answer = agent
                .get(&format!("{groups}?api-version=2021-04-01"))
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::OK);
        }
        for n in 0..writes {
            let answer = agent
                .send(
                    Method::PUT,
                    &format!("{groups}/replay-{name}-{n}?api-version=2021-04-01"),
                    &[],
                    Some(Bytes::from_static(br#"{"location":"westeurope"}"#)),
                )
                .await
                .unwrap();
            assert!(answer.status.is_success(), "{}", answer.status);
        }
    }
    stack.kill_gateway();
    let dir = &stack.dir;

    // What the store holds: the writes the candidate should find.
    let store = SqliteStore::open(dir.path().join("airlock.db"))
        .await
        .unwrap();
    let mut pages = store.events_since(std::time::UNIX_EPOCH);
    let mut writes = 0;
    while let Some(page) = pages.next_page().await.unwrap() {
        writes += page
            .iter()
            .filter(|c| c.event.operations.first().map(String::as_str) == Some(GROUP_WRITE))
            .count();
    }
    assert_eq!(writes, 5);
    drop(store);

    // A candidate that denies creating groups: exactly those five, per agent.
    let output = replay(dir.path(), NO_NEW_GROUPS, &["--format", "json"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = json(&output);
    assert_eq!(report["replayed"], 15, "{report:#}");
    assert_eq!(report["unchanged"], 10, "{report:#}");
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{report:#}");
    for (change, count, who) in [(&changes[0], 3, BUILD_AGENT), (&changes[1], 2, OPS_AGENT)] {
        assert_eq!(change["from"], "allow");
        assert_eq!(change["to"], "deny");
        assert_eq!(change["operation"], GROUP_WRITE);
        assert_eq!(change["rule"], "no-new-groups");
        assert_eq!(change["count"], count);
        assert!(
            change["principal"].as_str().unwrap().contains(who),
            "{change}"
        );
        assert!(
            change["example"]
                .as_str()
                .unwrap()
                .starts_with("PUT /subscriptions/"),
            "{change}"
        );
    }

    // Narrowed to one agent, by object id or by group.
    let ops_only = json(&replay(
        dir.path(),
        NO_NEW_GROUPS,
        &["--format", "json", "--principal", OPS_AGENT],
    ));
    assert_eq!(
        (
            ops_only["replayed"].as_u64(),
            ops_only["changes"][0]["count"].as_u64()
        ),
        (Some(6), Some(2))
    );
    let group = format!("group:{AGENTS_GROUP}");
    let agents = json(&replay(
        dir.path(),
        NO_NEW_GROUPS,
        &["--format", "json", "--principal", &group],
    ));
    assert_eq!(
        (
            agents["replayed"].as_u64(),
            agents["changes"][0]["count"].as_u64()
        ),
        (Some(9), Some(3))
    );

    // The policy in force changes nothing: exit 0, in words.
    let same = replay(dir.path(), ALLOW_ALL, &[]);
    let text = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{same:?}");
    assert!(
        text.starts_with("15 recorded request(s) decided again: 0 would change, 15 unchanged"),
        "{text}"
    );

    // A broken candidate: exit 2, the file and the problem named.
    let broken = replay(
        dir.path(),
        "[[rule]]\nname = \"x\"\neffect = \"allow\"\n",
        &[],
    );
    let error = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(2), "{broken:?}");
    assert!(
        error.contains("candidate.toml") && error.contains("names no operations"),
        "{error}"
    );

    // A least-privilege role for the build agent from the same trail.
    let suggested = roles(
        dir.path(),
        &["--principal", BUILD_AGENT, "--format", "json"],
    );
    assert!(suggested.status.success(), "{suggested:?}");
    let suggested = json(&suggested);
    let role: RoleDefinition = serde_json::from_value(suggested["role"].clone()).unwrap();
    assert_eq!(
        role.actions,
        vec![
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            GROUP_WRITE
        ]
    );
    assert!(role.data_actions.is_empty());
    let subscription = format!("/subscriptions/{}", airlock_sim::SUBSCRIPTION_ID);
    assert_eq!(role.assignable_scopes, vec![subscription.clone()]);
    assert_eq!(suggested["requests"], 9);
    let counts: Vec<u64> = suggested["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["covers"][0]["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![6, 3]);

    // Turned back into Airlock rules, it denies nothing the agent did...
    let rules = suggested["rules"].as_str().unwrap();
    let again = replay(dir.path(), rules, &["--principal", BUILD_AGENT]);
    assert_eq!(again.status.code(), Some(0), "{again:?}\n{rules}");
    // ...and a write it never made.
    let policy = Policy::parse(rules, "suggested.toml").unwrap();
    let agent = Principal::builder(BUILD_AGENT, PrincipalKind::ManagedIdentity).build();
    let never = Operation::new(
        "Microsoft.Storage/storageAccounts/write",
        Plane::Management,
        ResourceScope::new(format!(
            "{subscription}/resourceGroups/demo-rg/providers/Microsoft.Storage/storageAccounts/new"
        )),
    );
    assert!(matches!(
        policy.decide(&agent, &never),
        Decision::Deny { .. }
    ));

    // ARM (the sim's roleDefinitions PUT) takes the role as drafted.
    let arm = AgentClient::new(&stack.sim.arm_url(), None)
        .unwrap()
        .with_token(UPSTREAM_TOKEN);
    let definition = format!(
        "{subscription}/providers/Microsoft.Authorization/roleDefinitions/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let created = arm
        .send(
            Method::PUT,
            &definition,
            &[],
            Some(Bytes::from(role.arm_body().to_string())),
        )
        .await
        .unwrap();
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let stored = arm.get(&definition).await.unwrap();
    assert_eq!(stored.status, StatusCode::OK);
    assert_eq!(stored.json()["properties"]["roleName"], role.name);
    assert_eq!(
        stored.json()["properties"]["permissions"][0]["actions"],
        serde_json::json!(role.actions)
    );

    // Against the role it has now: what it granted and what went unused.
    let against = roles(
        dir.path(),
        &[
            "--principal",
            BUILD_AGENT,
            "--against",
            "Key Vault Secrets User",
        ],
    );
    let text = String::from_utf8_lossy(&against.stdout);
    assert!(against.status.success(), "{against:?}");
    assert!(
        text.contains(
            "Microsoft.KeyVault/vaults/secrets/getSecret/action (dataActions): not used since"
        ),
        "{text}"
    );
    assert!(text.contains("Evidence: 9 allowed request(s)"), "{text}");
    let reader = roles(
        dir.path(),
        &["--principal", BUILD_AGENT, "--against", "reader"],
    );
    let text = String::from_utf8_lossy(&reader.stdout);
    assert!(text.contains("*/read (actions): 6 use(s)"), "{text}");
    stack.shutdown().await;
}

fn roles(dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["roles", "suggest", "--config"])
        .arg(dir.join("airlock.toml"))
        .args(args)
        .output()
        .unwrap()
}
