//! How the built-in engine decides: precedence, Azure wildcard semantics,
//! scopes, principal selectors, carried operations, unknown requests.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use airlock_core::{
    Approvers, Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope,
};
use airlock_policy::{NO_MATCHING_RULE, Policy, PolicyEngine, Skip};

const RG: &str = "/subscriptions/s1/resourceGroups/prod";
const AGENTS: &str = "00000000-0000-0000-0000-0000000000c1";
const APPROVERS: &str = "00000000-0000-0000-0000-0000000000c2";

fn agent() -> Principal {
    Principal::builder("agent-1", PrincipalKind::ManagedIdentity)
        .app_id("app-1")
        .groups([AGENTS])
        .roles(["Deployer"])
        .build()
}

fn op(name: &str, scope: &str) -> Operation {
    Operation::new(name, Plane::Management, ResourceScope::new(scope))
}

fn vm(name: &str) -> String {
    format!("{RG}/providers/Microsoft.Compute/virtualMachines/{name}")
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, "policy.toml").unwrap()
}

const DEMO: &str = r#"
[[rule]]
name = "reads"
effect = "allow"
actions = ["*/read"]

[[rule]]
name = "agents-write-prod"
effect = "allow"
actions = ["Microsoft.Compute/*", "Microsoft.Storage/*", "Microsoft.Resources/*"]
scopes = ["/subscriptions/s1/resourceGroups/prod"]
[rule.principals]
groups = ["00000000-0000-0000-0000-0000000000C1"]

[[rule]]
name = "storage-needs-approval"
effect = "approve"
actions = ["Microsoft.Storage/storageAccounts/write"]
[rule.approval]
groups = ["00000000-0000-0000-0000-0000000000c2"]
justification = true
hold = "2m"
ttl = "30m"
elevate_to = "contributor"

[[rule]]
name = "no-vm-delete"
effect = "deny"
actions = ["Microsoft.Compute/virtualMachines/delete"]
reason = "VM deletion is not delegated to agents"
"#;

#[test]
fn deny_beats_approve_beats_allow_and_no_match_denies() {
    let p = policy(DEMO);
    let a = agent();
    assert_eq!(
        p.decide(
            &a,
            &op("Microsoft.Compute/virtualMachines/read", &vm("vm1"))
        ),
        Decision::Allow {
            rule: "reads".into()
        }
    );
    assert_eq!(
        p.decide(
            &a,
            &op("Microsoft.Compute/virtualMachines/start/action", &vm("vm1"))
        )
        .rule(),
        "agents-write-prod"
    );
    let delete = p.decide(
        &a,
        &op("Microsoft.Compute/virtualMachines/delete", &vm("vm1")),
    );
    assert_eq!(
        delete,
        Decision::Deny {
            rule: "no-vm-delete".into(),
            reason: format!(
                "Microsoft.Compute/virtualMachines/delete on {} is denied by rule 'no-vm-delete': VM deletion is not delegated to agents",
                vm("vm1")
            ),
        }
    );
    let storage = p.decide(
        &a,
        &op(
            "Microsoft.Storage/storageAccounts/write",
            &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1"),
        ),
    );
    assert_eq!(
        storage,
        Decision::RequireApproval {
            rule: "storage-needs-approval".into(),
            approvers: Approvers {
                groups: vec![APPROVERS.into()],
                ids: vec![],
                acting_user: false,
            },
            min_approvals: 1,
            justification_required: true,
            hold: Duration::from_secs(120),
            ttl: Duration::from_secs(1800),
            wait: airlock_core::ApprovalWait::Auto,
            elevate_to: Some("contributor".into()),
        }
    );
    // Outside the scope nothing allows a write.
    let other = p.decide(
        &a,
        &op(
            "Microsoft.Compute/virtualMachines/write",
            "/subscriptions/s1/resourceGroups/dev/providers/Microsoft.Compute/virtualMachines/x",
        ),
    );
    assert_eq!(other.rule(), NO_MATCHING_RULE);
    // Another principal (not in the group) may only read.
    let stranger = Principal::builder("x", PrincipalKind::User).build();
    assert_eq!(
        p.decide(
            &stranger,
            &op("Microsoft.Compute/virtualMachines/start/action", &vm("vm1"))
        )
        .rule(),
        NO_MATCHING_RULE
    );
}

#[test]
fn wildcards_follow_role_definitions() {
    let p = policy(
        r#"
        [[rule]]
        name = "compute-but-not-delete"
        effect = "allow"
        actions = ["Microsoft.Compute/*"]
        not_actions = ["Microsoft.Compute/*/delete"]
        "#,
    );
    let a = agent();
    assert!(
        p.decide(
            &a,
            &op(
                "microsoft.compute/VIRTUALMACHINES/extensions/write",
                &vm("v")
            )
        )
        .is_allow()
    );
    assert_eq!(
        p.decide(&a, &op("Microsoft.Compute/disks/delete", RG))
            .rule(),
        NO_MATCHING_RULE,
        "not_actions is an exclusion, not a deny"
    );
    // A control-plane '*' never grants data actions.
    let all = policy("[[rule]]\nname = \"all\"\neffect = \"allow\"\nactions = [\"*\"]\n");
    let secret = Operation::new(
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        Plane::Data,
        ResourceScope::new("/providers/Microsoft.KeyVault/vaults/kv/secrets/s"),
    );
    assert_eq!(all.decide(&a, &secret).rule(), NO_MATCHING_RULE);
    let trace = all.explain(&a, &secret).trace;
    assert_eq!(trace[0].outcome, Err(Skip::Plane(Plane::Data)));
}

#[test]
fn every_carried_operation_must_be_allowed() {
    let p = policy(DEMO);
    let a = agent();
    // A batch that reads a VM and deletes another.
    let batch = op("Microsoft.Resources/batch/action", "/")
        .with_child(op("Microsoft.Compute/virtualMachines/read", &vm("a")))
        .with_child(op("Microsoft.Compute/virtualMachines/delete", &vm("b")));
    let Decision::Deny { rule, reason } = p.decide(&a, &batch) else {
        panic!()
    };
    assert_eq!(rule, "no-vm-delete");
    assert!(reason.contains("(carried inside this request)"), "{reason}");
    // A deployment that writes a storage account needs approval.
    let deployment = op(
        "Microsoft.Resources/deployments/write",
        &format!("{RG}/providers/Microsoft.Resources/deployments/d1"),
    )
    .with_child(op(
        "Microsoft.Storage/storageAccounts/write",
        &format!("{RG}/providers/Microsoft.Storage/storageAccounts/sa1"),
    ));
    assert_eq!(p.decide(&a, &deployment).rule(), "storage-needs-approval");
}

#[test]
fn a_resource_group_delete_is_stopped_by_a_rule_about_what_it_contains() {
    let p = policy(
        r#"
        [[rule]]
        name = "everything"
        effect = "allow"
        actions = ["*"]

        [[rule]]
        name = "keep-vm1"
        effect = "deny"
        actions = ["Microsoft.Compute/virtualMachines/delete"]
        scopes = ["/subscriptions/s1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/vm1"]
        "#,
    );
    let a = agent();
    let rg_delete = op(
        "Microsoft.Resources/subscriptions/resourceGroups/delete",
        RG,
    )
    .with_child(op("*/delete", RG));
    assert_eq!(p.decide(&a, &rg_delete).rule(), "keep-vm1");
    let other_rg = "/subscriptions/s1/resourceGroups/dev";
    let elsewhere = op(
        "Microsoft.Resources/subscriptions/resourceGroups/delete",
        other_rg,
    )
    .with_child(op("*/delete", other_rg));
    assert!(p.decide(&a, &elsewhere).is_allow());
    // Allowing `*/delete` takes a rule that covers every delete.
    let deletes_of_vms = policy(
        "[[rule]]\nname = \"rg\"\neffect = \"allow\"\nactions = [\"Microsoft.Resources/*\", \"Microsoft.Compute/virtualMachines/delete\"]\n",
    );
    assert_eq!(
        deletes_of_vms.decide(&a, &rg_delete).rule(),
        NO_MATCHING_RULE
    );
}

#[test]
fn unknown_requests_need_a_rule_naming_them() {
    let unknown = Operation::unknown(
        "Microsoft.Weird/things/frob",
        Plane::Management,
        ResourceScope::new(RG),
    );
    let a = agent();
    assert_eq!(
        policy("[[rule]]\nname = \"all\"\neffect = \"allow\"\nactions = [\"*\"]\n")
            .decide(&a, &unknown)
            .rule(),
        NO_MATCHING_RULE
    );
    let named = policy(
        "[[rule]]\nname = \"frob\"\neffect = \"allow\"\nactions = [\"Microsoft.Weird/things/frob\"]\n",
    );
    assert!(named.decide(&a, &unknown).is_allow());
}

#[test]
fn principal_selectors_and_fields_or_values() {
    let p = policy(
        r#"
        [[rule]]
        name = "mi-in-agents"
        effect = "allow"
        actions = ["*"]
        [rule.principals]
        groups = ["other", "00000000-0000-0000-0000-0000000000c1"]
        kinds = ["managed_identity"]
        "#,
    );
    let write = op("Microsoft.Compute/virtualMachines/write", &vm("v"));
    assert!(p.decide(&agent(), &write).is_allow());
    let user = Principal::builder("u", PrincipalKind::User)
        .groups([AGENTS])
        .build();
    let explanation = p.explain(&user, &write);
    let (decision, trace) = (explanation.decision, explanation.trace);
    assert_eq!(decision.rule(), NO_MATCHING_RULE);
    assert_eq!(trace[0].outcome, Err(Skip::Principal("kinds")));
    for (field, value, ok) in [
        ("ids", "AGENT-1", true),
        ("app_ids", "app-1", true),
        ("roles", "Deployer", true),
        ("roles", "deployer", false),
    ] {
        let p = policy(&format!(
            "[[rule]]\nname = \"r\"\neffect = \"allow\"\nactions = [\"*\"]\n[rule.principals]\n{field} = [\"{value}\"]\n"
        ));
        assert_eq!(
            p.decide(&agent(), &write).is_allow(),
            ok,
            "{field} = {value}"
        );
    }
}

#[test]
fn invalid_policies_name_file_line_rule_and_fix() {
    let cases = [
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nactions = [\"*\"]\ncolour = 1\n",
            "policy.toml:5",
            "unknown field `colour`",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\n",
            "policy.toml:1: rule 'a'",
            "names no operations",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nactions = [\"*\"]\n\n[[rule]]\nname = \"A\"\neffect = \"deny\"\nactions = [\"*\"]\n",
            "policy.toml:6: rule 'A'",
            "same name",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nactions = [\"Microsoft.Compute/**\"]\n",
            "rule 'a'",
            "'**'",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nactions = [\"*\"]\nscopes = [\"subscriptions/x\"]\n",
            "rule 'a'",
            "must start with '/'",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nactions = [\"*\"]\n[rule.principals]\n",
            "rule 'a'",
            "[rule.principals] is empty",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"approve\"\nactions = [\"*\"]\n",
            "rule 'a'",
            "needs [rule.approval]",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"approve\"\nactions = [\"*\"]\n[rule.approval]\ngroups = [\"ops\"]\nelevate_to = \" \"\n",
            "rule 'a'",
            "approval.elevate_to is empty",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"approve\"\nactions = [\"*\"]\n[rule.approval]\nmin_approvals = 1\n",
            "rule 'a'",
            "no approvers",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"deny\"\nactions = [\"*\"]\n[rule.approval]\ngroups = [\"g\"]\n",
            "rule 'a'",
            "only belongs to rules with effect = \"approve\"",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nnot_actions = [\"*\"]\ndata_actions = [\"*\"]\n",
            "rule 'a'",
            "not_actions without actions",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"maybe\"\nactions = [\"*\"]\n",
            "policy.toml:3",
            "unknown variant `maybe`",
        ),
        (
            "[[rule]]\nname = \"a\"\neffect = \"allow\"\nactions = [\"*\"]\n[rule.principals]\nkinds = [\"robot\"]\n",
            "rule 'a'",
            "'robot' is not one of",
        ),
    ];
    for (text, location, problem) in cases {
        let message = Policy::parse(text, "policy.toml").unwrap_err().to_string();
        assert!(message.starts_with("policy.toml"), "{message}");
        assert!(
            message.contains(location) && message.contains(problem),
            "expected {location} / {problem} in: {message}"
        );
    }
}

#[test]
fn self_approval_by_the_requesters_group_is_warned_about() {
    let p = policy(
        r#"
        [[rule]]
        name = "agents-approve-agents"
        effect = "approve"
        actions = ["*"]
        [rule.principals]
        groups = ["g1"]
        [rule.approval]
        groups = ["G1"]
        "#,
    );
    assert_eq!(p.warnings().len(), 1);
    assert!(
        p.warnings()[0].contains("rule 'agents-approve-agents'")
            && p.warnings()[0].contains("approve each other"),
        "{:?}",
        p.warnings()
    );
}

/// Rules that name principals by object id only are looked up by id, not
/// walked: the order of rules still decides, whoever they name.
#[test]
fn rules_naming_object_ids_decide_in_rule_order_for_their_principal_only() {
    let mut text = String::new();
    for n in 0..2_000 {
        text.push_str(&format!(
            "[[rule]]\nname = \"deny-{n}\"\neffect = \"deny\"\nactions = [\"*/read\"]\n[rule.principals]\nids = [\"other-{n}\"]\n\n"
        ));
    }
    text.push_str(
        r#"
[[rule]]
name = "agent-1-first"
effect = "allow"
actions = ["*/read"]
[rule.principals]
ids = ["AGENT-1"]

[[rule]]
name = "group-reads"
effect = "allow"
actions = ["*/read"]
[rule.principals]
groups = ["00000000-0000-0000-0000-0000000000c1"]

[[rule]]
name = "agent-1-no-vm-delete"
effect = "deny"
actions = ["Microsoft.Compute/virtualMachines/delete"]
[rule.principals]
ids = ["agent-1", "agent-2"]

[[rule]]
name = "everyone-deletes"
effect = "allow"
actions = ["*/delete"]
"#,
    );
    let policy = policy(&text);
    let read = op("Microsoft.Compute/virtualMachines/read", &vm("a"));
    let delete = op("Microsoft.Compute/virtualMachines/delete", &vm("a"));
    // The id rule comes first (ids compare without case).
    assert_eq!(policy.decide(&agent(), &read).rule(), "agent-1-first");
    assert_eq!(
        policy.decide(&agent(), &delete).rule(),
        "agent-1-no-vm-delete"
    );
    // Another member of the group: the group rule, and deletes allowed.
    let other = Principal::builder("agent-9", PrincipalKind::ManagedIdentity)
        .groups([AGENTS])
        .build();
    assert_eq!(policy.decide(&other, &read).rule(), "group-reads");
    assert!(policy.decide(&other, &delete).is_allow());
    // One of the 2 000: its own deny.
    let denied = Principal::builder("other-1234", PrincipalKind::ManagedIdentity)
        .groups([AGENTS])
        .build();
    assert_eq!(policy.decide(&denied, &read).rule(), "deny-1234");
}

#[test]
fn observe_mode_rules_do_not_enforce_but_explain_and_observe_say_what_they_would_do() {
    let policy = policy(
        r#"
[[rule]]
name = "no-vm-deletes"
effect = "deny"
mode = "observe"
actions = ["Microsoft.Compute/virtualMachines/delete"]

[[rule]]
name = "all"
effect = "allow"
actions = ["*"]
"#,
    );
    let delete = op("Microsoft.Compute/virtualMachines/delete", &vm("a"));
    let decided = policy.decide(&agent(), &delete);
    assert_eq!(decided.rule(), "all");
    let would = policy.observed(&agent(), &delete, &decided).unwrap();
    assert!(matches!(would, Decision::Deny { ref rule, .. } if rule == "no-vm-deletes"));
    // Nothing to observe where the rule would not have changed the decision.
    let read = op("Microsoft.Compute/virtualMachines/read", &vm("a"));
    assert!(
        policy
            .observed(&agent(), &read, &policy.decide(&agent(), &read))
            .is_none()
    );
    let explanation = policy.explain(&agent(), &delete);
    assert!(explanation.decision.is_allow());
    assert_eq!(explanation.would_have.unwrap().rule(), "no-vm-deletes");
    assert!(
        explanation
            .trace
            .iter()
            .any(|t| t.rule == "no-vm-deletes" && t.observe && t.outcome.is_ok())
    );
    assert!(
        policy
            .warnings()
            .iter()
            .any(|w| w.contains("'no-vm-deletes'") && w.contains("observe mode"))
    );
    // An allow rule in observe mode could only take a grant away: refused.
    let error = Policy::parse(
        "[[rule]]\nname = \"x\"\neffect = \"allow\"\nmode = \"observe\"\nactions = [\"*\"]\n",
        "policy.toml",
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("mode = \"observe\" is for deny and approve rules"),
        "{error}"
    );
}
