//! The approval page in a real (headless) Chromium: an approver signs in
//! through the development issuer's account picker, watches a held request
//! arrive without reloading, and decides it with one click; the agent's
//! request then completes. Screenshots go to `target/test-artifacts/`.

use airlock_tests::browser::Browser;
use airlock_tests::{Harness, Options};
use bytes::Bytes;
use http::Method;
use serde_json::Value;

use crate::approval::{
    NEW_ACCOUNT, WAIT, WHY, account_path, policy, posts, receiver, sim_calls, vm_path,
};

async fn harness() -> Harness {
    Harness::start_with(Options {
        policy: Some(policy()),
        approval_toml: "sweep_interval = \"1s\"".into(),
        sign_in: true,
        ..Options::default()
    })
    .await
}

/// Opens the page, signs in as the picker's `username`, and waits until the
/// live queue is connected (or, for a non-approver, the page is shown).
async fn signed_in(h: &Harness, username: &str) -> Browser {
    sign_in(Browser::launch().await, h.gateway.admin_url(), username).await
}

async fn sign_in(mut browser: Browser, admin_url: &str, username: &str) -> Browser {
    browser.goto(&format!("{admin_url}/ui/approvals")).await;
    // Redirected to the identity provider's account picker.
    browser
        .wait_for("document.querySelector('button[data-username]')")
        .await;
    browser
        .eval(&format!(
            "document.querySelector('button[data-username=\"{username}\"]').click(); true"
        ))
        .await;
    browser
        .wait_for("location.pathname === '/ui/approvals' && document.querySelector('.bar .viewer')")
        .await;
    browser
}

/// Sends a storage-account create as the agent in the background; the
/// gateway holds it until someone decides.
fn create_account(h: &Harness, name: &str) -> tokio::task::JoinHandle<airlock_demo::LongRunning> {
    held(h, Method::PUT, account_path(name), NEW_ACCOUNT)
}

#[tokio::test]
async fn an_approver_sees_a_request_arrive_live_and_approves_it_with_one_click() {
    // Teams is told too, with a link to the card.
    let (teams_url, teams) = receiver().await;
    let h = Harness::start_with(Options {
        policy: Some(policy()),
        approval_toml: "sweep_interval = \"1s\"".into(),
        extra_toml: format!("[[approval.notify]]\nkind = \"teams\"\nurl = \"{teams_url}\"\n"),
        sign_in: true,
        ..Options::default()
    })
    .await;
    let mut page = signed_in(&h, "alice@contoso.example").await;
    page.wait_for("document.body.dataset.live === 'true'").await;
    assert_eq!(
        page.eval("document.querySelectorAll('article.approval').length")
            .await,
        0
    );
    assert!(page.text().await.contains("Nothing is waiting"));
    page.screenshot("approvals-empty").await;

    // The agent asks; the card appears without a reload.
    let run = create_account(&h, "pageapproved");
    page.eval("window.notReloaded = true").await;
    page.wait_for("document.querySelectorAll('article.approval').length === 1")
        .await;
    assert_eq!(
        page.eval("window.notReloaded").await,
        true,
        "the page reloaded"
    );
    let card = page
        .eval("document.querySelector('article.approval').innerText")
        .await;
    let card = card.as_str().unwrap();
    for expected in [
        "Create or update a storage account (Microsoft.Storage)",
        "Microsoft.Storage/storageAccounts/write",
        "build-agent",
        "managed identity",
        "Resource group",
        "pageapproved",
        WHY.1,
        "storage-writes-need-approval",
        "the gateway's everyday identity",
        "PUT /subscriptions/",
        // The body, pretty-printed (one key per line).
        "\"location\": \"westeurope\"",
    ] {
        assert!(
            card.contains(expected),
            "{expected:?} not on the card:\n{card}"
        );
    }
    assert_eq!(
        page.eval("document.getElementById('count').textContent")
            .await,
        "1"
    );
    page.screenshot("approvals-pending").await;

    // The Teams card's button leads to this card on the page.
    let id = page
        .eval("document.querySelector('article.approval').dataset.id")
        .await;
    let id = id.as_str().unwrap();
    let (_, _, card) = posts(&teams, 1).await.remove(0);
    let link = format!("{}/ui/approvals/{id}", h.gateway.admin_url());
    assert!(card.to_string().contains(&format!("\"{link}\"")), "{card}");
    page.goto(&link).await;
    page.wait_for("document.body.dataset.live === 'true'").await;
    assert_eq!(
        page.eval("location.hash + ' ' + !!document.querySelector(location.hash)")
            .await,
        format!("#approval-{id} true")
    );

    page.eval(
        "document.querySelector('textarea[name=comment]').value = 'looks right';
         document.querySelector('button.approve').click(); true",
    )
    .await;
    // The card leaves the queue for the history, with who decided and why.
    page.wait_for("document.querySelectorAll('article.approval').length === 0 && document.querySelector('#history tbody tr')")
        .await;
    let history = page
        .eval("document.querySelector('#history tbody tr').innerText")
        .await;
    let history = history.as_str().unwrap();
    assert!(history.contains("Alice Approver approved"), "{history}");
    assert!(history.contains("looks right"), "{history}");

    // The agent's held request went through.
    let run = run.await.unwrap();
    assert_eq!(run.status, "Succeeded", "{:?}", run.error);
    assert_eq!(sim_calls(&h, &Method::PUT, "pageapproved"), 1);
    page.screenshot("approvals-approved").await;
    page.close().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_denial_reaches_the_agent_and_expiry_empties_the_queue() {
    let h = harness().await;
    let mut page = signed_in(&h, "alice@contoso.example").await;
    page.wait_for("document.body.dataset.live === 'true'").await;

    let run = create_account(&h, "pagedenied");
    page.wait_for("document.querySelectorAll('article.approval').length === 1")
        .await;
    page.eval(
        "document.querySelector('textarea[name=comment]').value = 'use the shared logs account';
         document.querySelector('button.deny').click(); true",
    )
    .await;
    page.wait_for("document.querySelectorAll('article.approval').length === 0")
        .await;
    let run = run.await.unwrap();
    assert_eq!(run.status, "Failed");
    let (code, message) = run.error.unwrap();
    assert_eq!(code, "AirlockApprovalDenied");
    assert!(message.contains("use the shared logs account"), "{message}");
    assert_eq!(sim_calls(&h, &Method::PUT, "pagedenied"), 0);
    page.wait_for("document.querySelector('#history .state-denied')")
        .await;

    // A VM delete nobody decides expires after 3 s: it leaves the queue live.
    let agent = h.agent.clone();
    let vm = vm_path(airlock_sim::VIRTUAL_MACHINES[1]);
    let expiring = tokio::spawn(async move {
        agent
            .long_running(Method::DELETE, &vm, &[], None, WAIT)
            .await
            .unwrap()
    });
    page.wait_for("document.querySelectorAll('article.approval').length === 1")
        .await;
    page.wait_for("document.querySelectorAll('article.approval').length === 0 && document.querySelector('#history .state-expired')")
        .await;
    assert_eq!(expiring.await.unwrap().status, "Failed");
    page.screenshot("approvals-denied-and-expired").await;
    page.close().await;
    h.shutdown().await;
}

/// Runs `fetch` in the page with its session cookie and answers
/// `[status, x-ms-error-code]`.
async fn post_from_page(page: &mut Browser, path: &str, csrf: Option<&str>) -> Value {
    let header = csrf.map_or(String::new(), |token| {
        format!("'x-airlock-csrf': '{token}',")
    });
    page.eval(&format!(
        "fetch('{path}', {{ method: 'POST', headers: {{ {header} 'content-type': 'application/json' }}, body: '{{}}' }})
           .then((r) => [r.status, r.headers.get('x-ms-error-code')])"
    ))
    .await
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_a_non_approver_sees_no_buttons() {
    let h = harness().await;
    let mut alice = signed_in(&h, "alice@contoso.example").await;
    alice
        .wait_for("document.body.dataset.live === 'true'")
        .await;
    let run = create_account(&h, "pagecsrf");
    alice
        .wait_for("document.querySelectorAll('article.approval').length === 1")
        .await;
    let id = alice
        .eval("document.querySelector('article.approval').dataset.id")
        .await;
    let approve = format!("/api/approvals/{}/approve", id.as_str().unwrap());

    // The cookie alone does not decide: no token, or a wrong one, is refused.
    for csrf in [None, Some("not-the-token")] {
        let answer = post_from_page(&mut alice, &approve, csrf).await;
        assert_eq!(
            answer,
            serde_json::json!([403, "AirlockCsrfTokenInvalid"]),
            "{csrf:?}"
        );
    }
    assert_eq!(
        alice
            .eval("document.querySelectorAll('article.approval').length")
            .await,
        1
    );

    // Bob is signed in too, but approves nothing: no queue, no buttons, and
    // the API refuses him even with his own valid token.
    let mut bob = signed_in(&h, "bob@contoso.example").await;
    let text = bob.text().await;
    assert!(text.contains("is not an approver"), "{text}");
    assert_eq!(
        bob.eval("document.querySelectorAll('button.approve, button.deny').length")
            .await,
        0
    );
    let bob_csrf = bob
        .eval("document.querySelector('meta[name=airlock-csrf]').content")
        .await;
    let answer = post_from_page(&mut bob, &approve, bob_csrf.as_str()).await;
    assert_eq!(answer, serde_json::json!([403, "AirlockNotAnApprover"]));
    bob.screenshot("approvals-not-an-approver").await;
    bob.close().await;

    // Alice signs out: the cookie no longer works, and the page sends her to sign in.
    alice
        .eval("document.querySelector('.sign-out button').click(); true")
        .await;
    alice
        .wait_for("document.body.innerText.includes('You are signed out')")
        .await;
    let answer = post_from_page(&mut alice, &approve, Some("anything")).await;
    assert_eq!(answer[0], 401, "{answer}");
    alice.close().await;

    // Nobody approved it: still pending for the API.
    let pending = h
        .approver()
        .get("/api/approvals?state=pending")
        .await
        .unwrap();
    assert_eq!(pending.json()["value"].as_array().unwrap().len(), 1);
    run.abort();
    h.shutdown().await;
}

#[tokio::test]
async fn the_demo_offers_a_development_sign_in_as_its_approver() {
    let env = airlock_demo::DemoEnvironment::start().await.unwrap();
    // The demo's admin listener serves TLS from the demo's own CA.
    let browser = Browser::launch_with(&["--ignore-certificate-errors"]).await;
    let mut page = sign_in(browser, env.gateway.admin_url(), "alice@contoso.example").await;
    page.wait_for("document.body.dataset.live === 'true'").await;
    assert!(page.text().await.contains("Alice Approver"));
    page.close().await;
    env.shutdown().await;
}

/// The test policy, with deployments needing approval too.
fn policy_with_deployments() -> String {
    format!(
        "{}\n[[rule]]\nname = \"deployments-need-approval\"\neffect = \"approve\"\nactions = [\"Microsoft.Resources/deployments/write\"]\n[rule.approval]\ngroups = [\"{}\"]\n",
        policy(),
        airlock_sim::APPROVERS_GROUP
    )
}

/// Sends `body` to `path` as the agent in the background (held for approval).
fn held(
    h: &Harness,
    method: Method,
    path: String,
    body: &'static [u8],
) -> tokio::task::JoinHandle<airlock_demo::LongRunning> {
    let agent = h.agent.clone();
    tokio::spawn(async move {
        agent
            .long_running(method, &path, &[WHY], Some(Bytes::from_static(body)), WAIT)
            .await
            .unwrap()
    })
}

/// Waits for the one pending card's "What will change" and returns its text.
async fn changes_shown(page: &mut Browser) -> String {
    page.wait_for("document.querySelectorAll('article.approval').length === 1")
        .await;
    page.wait_for("document.querySelector('section.changes[data-loaded]')")
        .await;
    page.eval("document.querySelector('section.changes').innerText")
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn deny_the_card(page: &mut Browser) {
    page.eval("document.querySelector('button.deny').click(); true")
        .await;
    page.wait_for("document.querySelectorAll('article.approval').length === 0")
        .await;
}

#[tokio::test]
async fn the_page_shows_the_resource_diff_and_arms_what_if() {
    let h = Harness::start_with(Options {
        policy: Some(policy_with_deployments()),
        approval_toml: "sweep_interval = \"1s\"".into(),
        sign_in: true,
        ..Options::default()
    })
    .await;
    let mut page = signed_in(&h, "alice@contoso.example").await;
    page.wait_for("document.body.dataset.live === 'true'").await;

    // An update of an existing account: the gateway reads it and compares.
    let update = held(
        &h,
        Method::PUT,
        account_path(airlock_sim::STORAGE_ACCOUNT),
        br#"{"location":"westeurope","sku":{"name":"Standard_GRS"},"kind":"StorageV2","tags":{"env":"prod"}}"#,
    );
    let shown = changes_shown(&mut page).await;
    for expected in [
        "sku.name",
        "modified",
        "\"Standard_LRS\"",
        "\"Standard_GRS\"",
        "tags.env",
        "added",
        "\"prod\"",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    page.screenshot("approvals-diff").await;
    deny_the_card(&mut page).await;
    assert_eq!(update.await.unwrap().status, "Failed");

    // A new account: nothing to compare, it is created.
    let create = held(
        &h,
        Method::PUT,
        account_path("brandnewacct"),
        br#"{"location":"westeurope"}"#,
    );
    let shown = changes_shown(&mut page).await;
    assert!(shown.contains("Creates a new resource"), "{shown}");
    deny_the_card(&mut page).await;
    assert_eq!(create.await.unwrap().status, "Failed");

    // A deployment: ARM's own what-if, through the gateway's credential.
    let deployment = format!(
        "/subscriptions/{}/resourcegroups/{}/providers/Microsoft.Resources/deployments/logs?api-version=2022-09-01",
        airlock_sim::SUBSCRIPTION_ID,
        airlock_sim::RESOURCE_GROUP
    );
    let deploy = held(
        &h,
        Method::PUT,
        deployment,
        br#"{"properties":{"mode":"Incremental","template":{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#","contentVersion":"1.0.0.0","resources":[
            {"type":"Microsoft.Storage/storageAccounts","apiVersion":"2023-05-01","name":"newlogs","location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2"},
            {"type":"Microsoft.Storage/storageAccounts","apiVersion":"2023-05-01","name":"demostore","location":"westeurope","sku":{"name":"Standard_LRS"},"kind":"StorageV2","tags":{"owner":"ops"}}]}}}"#,
    );
    let shown = changes_shown(&mut page).await;
    for expected in [
        "Azure's what-if: 1 to create, 1 to modify",
        "Create",
        "storageAccounts/newlogs",
        "Modify",
        "tags.owner",
        "\"ops\"",
    ] {
        assert!(shown.contains(expected), "{expected:?} not in:\n{shown}");
    }
    page.screenshot("approvals-what-if").await;
    deny_the_card(&mut page).await;
    assert_eq!(deploy.await.unwrap().status, "Failed");
    // Previews read; they never wrote.
    assert_eq!(sim_calls(&h, &Method::PUT, airlock_sim::STORAGE_ACCOUNT), 0);
    page.close().await;
    h.shutdown().await;
}
