//! Quotas through the gateway, with approvals: past the limit a quota with
//! `on_exceed = "approve"` holds the read for its approvers; an approved
//! read goes to Azure and counts, a denied one is answered by Airlock and
//! does not; what Airlock answers instead of Azure never uses a quota.

use airlock_sim::APPROVERS_GROUP;
use airlock_tests::{ALLOW_ALL, Harness, Options, assert_airlock_error};
use http::StatusCode;

use crate::approval::{decide, pending};

fn secret_reads(h: &Harness) -> usize {
    h.sim
        .requests()
        .iter()
        .filter(|r| {
            r.uri
                .path()
                .ends_with(&format!("/secrets/{}", airlock_sim::SECRET_NAME))
        })
        .count()
}

#[tokio::test]
async fn past_the_limit_an_approve_quota_holds_the_read_and_only_what_azure_answers_counts() {
    let policy = format!(
        "{ALLOW_ALL}\n[[quota]]\nname = \"secret-reads\"\noperations = [\"Microsoft.KeyVault/vaults/secrets/getSecret/action\"]\nmax_requests = 1\nwindow = \"1h\"\non_exceed = \"approve\"\napproval = {{ groups = [\"{APPROVERS_GROUP}\"], hold = \"30s\" }}\n"
    );
    let h = Harness::start_with(Options {
        policy: Some(policy),
        ..Options::default()
    })
    .await;
    let first = h.agent.get(&h.secret_url()).await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);

    // Past the limit: held for the quota's approvers; denied, Airlock
    // answers and Azure is not asked.
    for (verb, status) in [("deny", StatusCode::FORBIDDEN), ("approve", StatusCode::OK)] {
        let agent = h.agent.clone();
        let url = h.secret_url();
        let held = tokio::spawn(async move { agent.get(&url).await.unwrap() });
        let approval = pending(&h, 1).await.remove(0);
        assert_eq!(approval["rule"], "quota:secret-reads", "{approval}");
        decide(&h, approval["id"].as_str().unwrap(), verb, "checked").await;
        let answer = held.await.unwrap();
        assert_eq!(answer.status, status, "{verb}: {:?}", answer.body);
        if verb == "deny" {
            assert_airlock_error(&answer, StatusCode::FORBIDDEN, "AirlockApprovalDenied");
            assert_eq!(secret_reads(&h), 1, "a denied read never reaches Azure");
        } else {
            assert!(!answer.json()["value"].as_str().unwrap().is_empty());
            assert_eq!(secret_reads(&h), 2);
        }
    }

    // The quota's count: the first read and the approved one, not the denied.
    let db = rusqlite::Connection::open(&h.database).unwrap();
    let used: i64 = db
        .query_row(
            "SELECT SUM(amount) FROM quota_uses WHERE quota = 'secret-reads'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(used, 2);

    let metrics = h.metrics().await;
    assert_eq!(
        metrics[r#"airlock_quota_exceeded_total{quota="secret-reads",outcome="approval"}"#],
        2
    );
    assert_eq!(
        metrics[r#"airlock_approvals_total{event="requested",kind="quota"}"#],
        2
    );
    assert_eq!(
        metrics[r#"airlock_approvals_total{event="denied",kind="quota"}"#],
        1
    );
    assert_eq!(
        metrics[r#"airlock_approvals_total{event="approved",kind="quota"}"#],
        1
    );
    h.shutdown().await;
}
