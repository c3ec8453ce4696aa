//! Times as Azure writes them: RFC 3339 with seven fractional digits (ARM),
//! Unix seconds (Key Vault, JWT claims).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (zero for times before it).
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `2025-11-25T06:22:00.1234567Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:07}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_nanos() / 100
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_like_arm() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.0000000Z");
        let t = UNIX_EPOCH + Duration::new(1_709_251_199, 123_456_789);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.1234567Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_868_800)),
            "2000-03-01T00:00:00.0000000Z"
        );
        assert_eq!(unix_seconds(t), 1_709_251_199);
    }
}
