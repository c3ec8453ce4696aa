//! `GET /subscriptions` and `GET /subscriptions/{s}`: the one simulated subscription.

use http::StatusCode;
use serde_json::{Value, json};

use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::reply::Reply;
use crate::state::SimState;
use crate::{SUBSCRIPTION_ID, TENANT_ID};

fn subscription() -> Value {
    json!({
        "id": format!("/subscriptions/{SUBSCRIPTION_ID}"),
        "subscriptionId": SUBSCRIPTION_ID,
        "tenantId": TENANT_ID,
        "displayName": "Airlock simulated subscription",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        },
        "authorizationSource": "RoleBased"
    })
}

/// `GET /subscriptions`.
pub(crate) fn list(_: &SimState, _: &ArmRequest<'_>, _: &[&str]) -> Result<Reply, ArmError> {
    Ok(Reply::json(
        StatusCode::OK,
        json!({ "value": [subscription()] }),
    ))
}

/// `GET /subscriptions/{s}` (the front door has checked the id).
pub(crate) fn get(_: &SimState, _: &ArmRequest<'_>, _: &[&str]) -> Result<Reply, ArmError> {
    Ok(Reply::json(StatusCode::OK, subscription()))
}
