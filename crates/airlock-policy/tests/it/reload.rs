//! Hot reload: a valid change takes effect for the next request; a broken
//! file keeps the running policy.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use airlock_core::{Operation, Plane, Principal, PrincipalKind, ResourceScope};
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
