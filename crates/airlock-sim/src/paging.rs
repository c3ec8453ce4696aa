//! ARM list paging: `{"value":[…],"nextLink":"{arm_url}{path}?api-version=…&$skiptoken=N"}`.

use http::StatusCode;
use serde_json::{Value, json};

use crate::arm::ArmRequest;
use crate::arm_error::ArmError;
use crate::state::SimConfig;

/// The page of `items` the request's `$skiptoken` asks for, with an absolute
/// `nextLink` on the simulator's own base URL unless it is the last page.
pub(crate) fn page(
    config: &SimConfig,
    request: &ArmRequest<'_>,
    items: Vec<Value>,
) -> Result<Value, ArmError> {
    let skip = match request.query_value("$skiptoken") {
        None => 0,
        Some(token) => token.parse::<usize>().map_err(|_| {
            ArmError::new(
                StatusCode::BAD_REQUEST,
                "InvalidSkipToken",
                format!("The skip token '{token}' is not valid; follow the nextLink of the previous page."),
            )
        })?,
    };
    let size = config.page_size.max(1);
    let end = skip.saturating_add(size);
    let more = end < items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(size).collect();
    let mut page = json!({ "value": value });
    if more {
        page["nextLink"] = json!(format!(
            "{}{}?api-version={}&$skiptoken={end}",
            config.arm_url, request.path, request.api_version
        ));
    }
    Ok(page)
}
