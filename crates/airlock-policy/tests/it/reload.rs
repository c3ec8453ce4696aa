//! Hot reload: a valid change takes effect for the next request; a broken
//! file keeps the running policy.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use airlock_core::{Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
use airlock_policy::{PolicyEngine, PolicyFile};

const READS: &str = "[[rule]]\nname = \"reads\"\neffect = \"allow\"\nactions = [\"*/read\"]\n";
const WRITES: &str = "[[rule]]\nname = \"reads-and-writes\"\neffect = \"allow\"\nactions = [\"*/read\", \"*/write\"]\n";

fn write_op() -> Operation {
    Operation::new(
        "Microsoft.Storage/storageAccounts/write",
        Plane::Management,
        ResourceScope::new(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
        ),
    )
}

#[tokio::test]
async fn a_changed_file_is_picked_up_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, READS).unwrap();
    let policy = PolicyFile::load(&path).unwrap();
    let agent = Principal::builder("a", PrincipalKind::Application).build();
    assert!(!policy.decide(&agent, &write_op()).is_allow());

    policy.watch(Duration::from_millis(20));
    std::fs::write(&path, WRITES).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !policy.decide(&agent, &write_op()).is_allow() {
        assert!(
            Instant::now() < deadline,
            "the changed policy was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        policy.decide(&agent, &write_op()).rule(),
        "reads-and-writes"
    );

    // A broken file (an unknown key on line 4) is refused; the running policy stays.
    std::fs::write(
        &path,
        "[[rule]]\nname = \"x\"\neffect = \"allow\"\nactionz = [\"*\"]\n",
    )
    .unwrap();
    let error = policy.reload().unwrap_err().to_string();
    assert!(
        error.contains("policy.toml:4") && error.contains("unknown field `actionz`"),
        "{error}"
    );
    assert_eq!(
        policy.decide(&agent, &write_op()).rule(),
        "reads-and-writes"
    );
    assert_eq!(policy.current().len(), 1);
}

#[test]
fn a_missing_file_is_named() {
    let error = PolicyFile::load("/nonexistent/policy.toml")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("/nonexistent/policy.toml: cannot read the policy file"),
        "{error}"
    );
}

/// The embedder's check (the gateway's: every `elevate_to` names one of its
/// upstream identities) runs on the first load and on every reload.
#[test]
fn a_version_the_embedders_check_refuses_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let elevating = |identity: &str| {
        format!(
            "[[rule]]\nname = \"writes\"\neffect = \"approve\"\nactions = [\"*/write\"]\n[rule.approval]\ngroups = [\"ops\"]\nelevate_to = \"{identity}\"\n"
        )
    };
    std::fs::write(&path, elevating("contributor")).unwrap();
    let load = || {
        PolicyFile::load_checked(&path, |policy| {
            policy.check_elevations(|name| name == "contributor")
        })
    };
    let policy = load().unwrap();
    std::fs::write(&path, elevating("owner")).unwrap();
    let error = policy.reload().unwrap_err().to_string();
    assert!(
        error.contains("policy.toml:1: rule 'writes'") && error.contains("'owner'"),
        "{error}"
    );
    let agent = Principal::builder("a", PrincipalKind::Application).build();
    assert_eq!(policy.decide(&agent, &write_op()).rule(), "writes");
    let Decision::RequireApproval { elevate_to, .. } = policy.decide(&agent, &write_op()) else {
        panic!("the running policy asks for approval");
    };
    assert_eq!(elevate_to.as_deref(), Some("contributor"));
    assert!(load().is_err(), "refused at the first load too");
}
