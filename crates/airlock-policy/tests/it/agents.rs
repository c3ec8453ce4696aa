//! Policy on Entra Agent ID's agents: the agent kinds, `agents`,
//! `on_behalf_of`, blueprints, and how an agent acting for a user is decided
//! (no more than both the agent's and the user's rules allow).

use airlock_core::{Agent, Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
use airlock_policy::{Facet, NO_MATCHING_RULE, Policy, PolicyEngine, Skip};

const RG: &str = "/subscriptions/s1/resourceGroups/prod";
const OPS: &str = "ops-group";
const BOT: &str = "bot-app";
const BLUEPRINT: &str = "blueprint-app";

fn op(name: &str) -> Operation {
    Operation::new(
        name,
        Plane::Management,
        ResourceScope::new(format!(
            "{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
        )),
    )
}
fn read() -> Operation {
    op("Microsoft.Compute/virtualMachines/read")
}
fn write() -> Operation {
    op("Microsoft.Compute/virtualMachines/write")
}
fn delete() -> Operation {
    op("Microsoft.Compute/virtualMachines/delete")
}

fn bot() -> Agent {
    Agent::new(BOT).name("release-bot").blueprint(BLUEPRINT)
}
/// Alice herself, in ops.
fn alice() -> Principal {
    Principal::builder("alice", PrincipalKind::User)
        .display_name("Alice")
        .groups([OPS])
        .build()
}
/// The release bot acting for Alice: her id and groups, the bot as agent.
fn bot_for(user: &str, groups: &[&str]) -> Principal {
    Principal::builder(user, PrincipalKind::AgentForUser)
        .display_name(user)
        .app_id(BOT)
        .groups(groups.iter().copied())
        .agent(bot())
        .build()
}
fn bot_alone() -> Principal {
    Principal::builder("bot-oid", PrincipalKind::Agent)
        .app_id(BOT)
        .agent(bot())
        .build()
}

fn policy(text: &str) -> Policy {
    Policy::parse(text, "policy.toml").unwrap()
}

/// Agents may read; ops members may also write; the bot may write for ops
/// members; nobody's agent may delete.
const POLICY: &str = r#"
[[rule]]
name = "agents-read"
effect = "allow"
actions = ["*/read"]
[rule.principals]
kinds = ["agent", "agent_for_user", "agent_user"]

[[rule]]
name = "ops-all"
effect = "allow"
actions = ["Microsoft.Compute/*"]
[rule.principals]
groups = ["ops-group"]

[[rule]]
name = "bot-writes-for-ops"
effect = "allow"
actions = ["Microsoft.Compute/virtualMachines/write"]
[rule.principals]
agents = ["bot-app"]
on_behalf_of = { groups = ["ops-group"] }

[[rule]]
name = "no-agent-deletes"
effect = "deny"
actions = ["*/delete"]
reason = "agents never delete"
[rule.principals]
kinds = ["agent", "agent_for_user"]
"#;

#[test]
fn agents_are_their_own_kinds() {
    let p = policy(POLICY);
    // Alice herself: her group's rule, all of it.
    for op in [read(), write(), delete()] {
        assert_eq!(p.decide(&alice(), &op).rule(), "ops-all", "{op}");
    }
    // The bot alone: reads only. An ops rule by group does not reach it,
    // and neither does its own write rule, which is for ops members.
    assert!(p.decide(&bot_alone(), &read()).is_allow());
    assert_eq!(p.decide(&bot_alone(), &write()).rule(), NO_MATCHING_RULE);
    assert_eq!(p.decide(&bot_alone(), &delete()).rule(), "no-agent-deletes");
}

#[test]
fn an_agent_for_a_user_gets_what_both_are_allowed() {
    let p = policy(POLICY);
    let for_alice = bot_for("alice", &[OPS]);
    // Read: the agent's rule and Alice's rule.
    let explained = p.explain(&for_alice, &read());
    assert_eq!(
        explained.decision,
        Decision::Allow {
            rule: "agents-read + ops-all".into()
        }
    );
    assert_eq!(explained.decided_by, Facet::Both);
    // Write: the bot may write for ops members, and Alice may write.
    assert_eq!(
        p.decide(&for_alice, &write()).rule(),
        "bot-writes-for-ops + ops-all"
    );
    // Delete: Alice may, her agent may not.
    let explained = p.explain(&for_alice, &delete());
    assert_eq!(explained.decision.rule(), "no-agent-deletes");
    assert_eq!(explained.decided_by, Facet::Agent);

    // Bob is not in ops: the bot's rule for ops members does not apply, and
    // his own rules allow nothing but what agents read... which Bob himself
    // has no rule for: the user's facet decides.
    let for_bob = bot_for("bob", &[]);
    let explained = p.explain(&for_bob, &read());
    assert_eq!(explained.decision.rule(), NO_MATCHING_RULE);
    assert_eq!(explained.decided_by, Facet::User);
    let Decision::Deny { reason, .. } = &explained.decision else {
        panic!("{:?}", explained.decision)
    };
    assert!(
        reason.contains("for bob (user bob)") && reason.contains("only what the rules allow both"),
        "{reason}"
    );
    let explained = p.explain(&for_bob, &write());
    assert_eq!(
        explained.decided_by,
        Facet::Agent,
        "the agent's facet is checked first"
    );

    // Alice's own rules by group or id do not reach her agent on their own.
    let p = policy(
        r#"
        [[rule]]
        name = "alice-by-id"
        effect = "allow"
        actions = ["*"]
        [rule.principals]
        ids = ["alice"]
        "#,
    );
    assert!(p.decide(&alice(), &write()).is_allow());
    let explained = p.explain(&for_alice, &write());
    assert_eq!(explained.decision.rule(), NO_MATCHING_RULE);
    assert_eq!(explained.decided_by, Facet::Agent);
    let agent_lines: Vec<_> = explained
        .trace
        .iter()
        .filter(|t| t.facet == Facet::Agent)
        .collect();
    assert_eq!(agent_lines[0].outcome, Err(Skip::Principal("ids")));
    assert!(
        explained
            .trace
            .iter()
            .any(|t| t.facet == Facet::User && t.outcome.is_ok())
    );
}

#[test]
fn approvals_and_denials_of_either_facet() {
    let p = policy(
        r#"
        [[rule]]
        name = "everyone-reads-writes"
        effect = "allow"
        actions = ["Microsoft.Compute/*"]

        [[rule]]
        name = "agent-writes-need-approval"
        effect = "approve"
        actions = ["*/write"]
        [rule.principals]
        kinds = ["agent_for_user"]
        [rule.approval]
        groups = ["approvers"]

        [[rule]]
        name = "bob-never-deletes"
        effect = "deny"
        actions = ["*/delete"]
        [rule.principals]
        ids = ["bob"]
        "#,
    );
    let for_bob = bot_for("bob", &[]);
    assert!(p.decide(&bot_for("bob", &[]), &read()).is_allow());
    let explained = p.explain(&for_bob, &write());
    assert!(
        matches!(explained.decision, Decision::RequireApproval { ref rule, .. } if rule == "agent-writes-need-approval")
    );
    assert_eq!(explained.decided_by, Facet::Agent);
    // Bob's own deny reaches his agent, and says why.
    let explained = p.explain(&for_bob, &delete());
    assert_eq!(explained.decision.rule(), "bob-never-deletes");
    assert_eq!(explained.decided_by, Facet::User);
    // Bob himself writes without approval.
    let bob = Principal::builder("bob", PrincipalKind::User).build();
    assert!(p.decide(&bob, &write()).is_allow());
}

#[test]
fn selectors_for_agents() {
    let decide = |selector: &str, who: &Principal| {
        policy(&format!(
            "[[rule]]\nname = \"r\"\neffect = \"allow\"\nactions = [\"*\"]\n[rule.principals]\n{selector}\n"
        ))
        .explain(who, &read())
        .trace[0]
            .outcome
            .clone()
    };
    let for_alice = bot_for("alice", &[OPS]);
    let agent_user = Principal::builder("au", PrincipalKind::AgentUser)
        .groups([OPS])
        .agent(bot())
        .build();
    for (selector, who, expected) in [
        (r#"agents = ["BOT-APP"]"#, &bot_alone(), Ok(())),
        (
            r#"agents = ["bot-app"]"#,
            &alice(),
            Err(Skip::Principal("agents")),
        ),
        (
            r#"agents = ["other"]"#,
            &for_alice,
            Err(Skip::Principal("agents")),
        ),
        (
            r#"kinds = ["user"]"#,
            &for_alice,
            Err(Skip::Principal("kinds")),
        ),
        (r#"kinds = ["agent_user"]"#, &agent_user, Ok(())),
        // An agent user is its own subject: its groups are its own.
        (r#"groups = ["ops-group"]"#, &agent_user, Ok(())),
        (
            r#"groups = ["ops-group"]"#,
            &for_alice,
            Err(Skip::Principal("groups")),
        ),
        (r#"app_ids = ["bot-app"]"#, &for_alice, Ok(())),
        (
            r#"on_behalf_of = { principals = ["ALICE"] }"#,
            &for_alice,
            Ok(()),
        ),
        (
            r#"on_behalf_of = { principals = ["bob"] }"#,
            &for_alice,
            Err(Skip::Principal("on_behalf_of.principals")),
        ),
        (
            r#"on_behalf_of = { groups = ["ops-group"] }"#,
            &alice(),
            Err(Skip::Principal("on_behalf_of.principals")),
        ),
        (
            r#"on_behalf_of = { groups = ["other"] }"#,
            &for_alice,
            Err(Skip::Principal("on_behalf_of.groups")),
        ),
        (
            "agents = [\"bot-app\"]\nblueprints = [\"blueprint-app\"]",
            &bot_alone(),
            Ok(()),
        ),
        (
            "agents = [\"bot-app\"]\nblueprints = [\"other\"]",
            &bot_alone(),
            Err(Skip::Principal("blueprints")),
        ),
    ] {
        assert_eq!(decide(selector, who), expected, "{selector} for {who}");
    }
}

#[test]
fn a_blueprint_alone_never_authorizes() {
    for selector in [
        r#"blueprints = ["blueprint-app"]"#,
        "blueprints = [\"blueprint-app\"]\nkinds = [\"agent\"]",
    ] {
        let error = Policy::parse(
            &format!("[[rule]]\nname = \"by-blueprint\"\neffect = \"allow\"\nactions = [\"*\"]\n[rule.principals]\n{selector}\n"),
            "policy.toml",
        )
        .unwrap_err();
        assert_eq!(error.line, Some(1));
        assert!(
            error
                .problem
                .contains("Microsoft's guidance is not to authorize on it alone"),
            "{}",
            error.problem
        );
    }
    for (selector, problem) in [
        (
            r#"kinds = ["robot"]"#,
            "'robot' is not one of application, managed_identity, user, agent, agent_for_user, agent_user",
        ),
        ("on_behalf_of = {}", "on_behalf_of is empty"),
        (
            r#"on_behalf_of = { users = ["x"] }"#,
            "unknown field `users`",
        ),
    ] {
        let error = Policy::parse(
            &format!("[[rule]]\nname = \"r\"\neffect = \"allow\"\nactions = [\"*\"]\n[rule.principals]\n{selector}\n"),
            "policy.toml",
        )
        .unwrap_err();
        assert!(
            error.problem.contains(problem),
            "{selector}: {}",
            error.problem
        );
    }
}

/// `confirm_by = "acting_user"`: the approval a rule asks for records that
/// the user an agent acts for may confirm; without approvers it must be
/// limited to agents acting for users, who alone have an acting user.
#[test]
fn the_acting_user_may_confirm_where_the_rule_says() {
    // Alice may write herself; her agent, as far as she confirms it.
    let rule = |principals: &str, approval: &str| {
        format!(
            "[[rule]]\nname = \"alice-writes\"\neffect = \"allow\"\nactions = [\"*/write\"]\n[rule.principals]\nids = [\"alice\"]\n\n\
             [[rule]]\nname = \"confirm\"\neffect = \"approve\"\nactions = [\"*/write\"]\n{principals}\n[rule.approval]\n{approval}\n"
        )
    };
    let confirmed = policy(&rule(
        "[rule.principals]\nkinds = [\"agent_for_user\"]",
        "confirm_by = \"acting_user\"",
    ));
    match confirmed.decide(&bot_for("alice", &[]), &write()) {
        Decision::RequireApproval { approvers, .. } => {
            assert!(
                approvers.acting_user && approvers.groups.is_empty() && approvers.ids.is_empty()
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(confirmed.may_confirm(&alice()));
    assert!(
        !confirmed.may_confirm(&bot_for("alice", &[])),
        "an agent confirms nothing"
    );
    assert!(!confirmed.is_approver(&alice()));

    // With approvers too, anyone may ask: approvers decide for the others.
    let either = policy(&rule(
        "",
        "groups = [\"ops-group\"]\nconfirm_by = \"acting_user\"",
    ));
    match either.decide(&alice(), &write()) {
        Decision::RequireApproval { approvers, .. } => assert!(approvers.acting_user),
        other => panic!("{other:?}"),
    }
    // Without, only agents acting for users: nobody else could be let through.
    let error =
        Policy::parse(&rule("", "confirm_by = \"acting_user\""), "policy.toml").unwrap_err();
    assert!(
        error
            .problem
            .contains("can only let through an agent acting for a user"),
        "{}",
        error.problem
    );
    let error = Policy::parse(&rule("", "confirm_by = \"anyone\""), "policy.toml").unwrap_err();
    assert!(
        error.problem.contains("unknown variant `anyone`"),
        "{}",
        error.problem
    );
    // Approval records say nothing of confirmation unless the rule asked.
    let plain = policy(&rule("", "groups = [\"ops-group\"]"));
    match plain.decide(&alice(), &write()) {
        Decision::RequireApproval { approvers, .. } => assert!(!approvers.acting_user),
        other => panic!("{other:?}"),
    }
    assert!(!plain.may_confirm(&alice()));
}
