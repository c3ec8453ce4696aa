//! What both backends store for an approval, and the pure steps of changing
//! it: the rules run here, the SQL around them in each backend.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_approval::{ApprovalRequest, ApprovalState, Grant, SealedRequest, rules};

/// One approval as stored: the request, and its sealed request while it has one.
#[derive(Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) request: ApprovalRequest,
    pub(crate) sealed: Option<Vec<u8>>,
}

impl Row {
    /// The row a new approval is stored as: a final state keeps no sealed request.
    pub(crate) fn new(request: ApprovalRequest, sealed: Option<SealedRequest>) -> Self {
        let mut row = Row {
            sealed: sealed.map(|s| s.as_bytes().to_vec()),
            request,
        };
        if row.request.state.is_final() {
            row.sealed = None;
        }
        row
    }

    /// The request's wait mode, as its column stores it.
    pub(crate) fn wait_name(&self) -> Option<String> {
        serde_json::to_value(self.request.wait)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
    }
}

/// Runs `change` on `row` and erases its sealed request once its state is
/// final. Also answers whether anything changed (the row must be written back).
pub(crate) fn apply<T>(row: &mut Row, change: impl FnOnce(&mut Row) -> T) -> (T, bool) {
    let before = row.clone();
    let result = change(row);
    if row.request.state.is_final() {
        row.sealed = None;
    }
    let changed = *row != before;
    (result, changed)
}

/// Uses the grant of `row` if it is usable: the approval becomes consumed,
/// and its sealed request is handed out.
pub(crate) fn use_grant(row: &mut Row, now: SystemTime) -> Option<Grant> {
    if !rules::grant_usable(&row.request, now) {
        return None;
    }
    row.request.state = ApprovalState::Consumed;
    Some(Grant {
        id: row.request.id,
        request: row.sealed.take().map(SealedRequest::from_bytes),
    })
}

/// The states a request can still leave (only those can fall due).
pub(crate) fn open_states() -> impl Iterator<Item = ApprovalState> {
    ApprovalState::ALL.into_iter().filter(|s| !s.is_final())
}

/// Now, to the millisecond: what the stored JSON keeps, so a request a call
/// returns equals the one `get` reads back.
pub(crate) fn now() -> SystemTime {
    let now = SystemTime::now();
    match now.duration_since(UNIX_EPOCH) {
        Ok(since) => now - Duration::from_nanos(u64::from(since.subsec_nanos() % 1_000_000)),
        Err(_) => now,
    }
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The time `millis` came from (to the millisecond).
pub(crate) fn from_millis(millis: i64) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    time.unwrap_or(UNIX_EPOCH)
}
