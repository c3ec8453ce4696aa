//! PolicyLayer in a tower stack: the decision travels on, a denial is a 403
//! naming the rule, and a request nobody classified is refused.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;

use airlock_core::{Decision, Operation, Plane, Principal, PrincipalKind, ResourceScope};
use airlock_policy::{Policy, PolicyLayer};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const POLICY: &str = r#"
[[rule]]
name = "reads"
effect = "allow"
actions = ["*/read"]

[[rule]]
name = "no-vm-delete"
effect = "deny"
actions = ["Microsoft.Compute/virtualMachines/delete"]
"#;

/// The status and JSON body: the inner service answers with the `Decision` it saw.
async fn call(
    principal: Option<Principal>,
    operation: Option<Operation>,
) -> (StatusCode, serde_json::Value) {
    let service = ServiceBuilder::new()
        .layer(PolicyLayer::new(
            Policy::parse(POLICY, "policy.toml").unwrap(),
        ))
        .service(service_fn(|request: Request<()>| async move {
            let decision = request.extensions().get::<Decision>().cloned();
            Ok::<_, Infallible>(Response::new(serde_json::to_string(&decision).unwrap()))
        }));
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert("x-airlock-request-id", "req-1".parse().unwrap());
    if let Some(p) = principal {
        request.extensions_mut().insert(p);
    }
    if let Some(o) = operation {
        request.extensions_mut().insert(o);
    }
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

fn vm_op(verb: &str) -> Operation {
    Operation::new(
        format!("Microsoft.Compute/virtualMachines/{verb}"),
        Plane::Management,
        ResourceScope::new(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        ),
    )
}

fn agent() -> Principal {
    Principal::builder("agent-1", PrincipalKind::ManagedIdentity).build()
}

#[tokio::test]
async fn allowed_requests_carry_their_decision_inward() {
    let (status, decision) = call(Some(agent()), Some(vm_op("read"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        decision,
        serde_json::to_value(Decision::Allow {
            rule: "reads".into()
        })
        .unwrap()
    );
}

#[tokio::test]
async fn denials_are_arm_shaped_and_name_rule_and_operation() {
    let (status, json) = call(Some(agent()), Some(vm_op("delete"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json["error"]["code"], "AirlockPolicyDenied");
    assert_eq!(
        json["error"]["message"],
        "Microsoft.Compute/virtualMachines/delete on /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1 is denied by rule 'no-vm-delete'"
    );
    assert_eq!(json["error"]["airlock"]["rule"], "no-vm-delete");
    assert_eq!(
        json["error"]["airlock"]["operation"],
        "Microsoft.Compute/virtualMachines/delete"
    );
    assert_eq!(json["error"]["airlock"]["requestId"], "req-1");
}

#[tokio::test]
async fn without_identity_or_classification_nothing_is_decided() {
    for (principal, operation) in [(None, Some(vm_op("read"))), (Some(agent()), None)] {
        let (status, json) = call(principal, operation).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(json["error"]["code"], "AirlockNotDecided");
    }
}
