//! Durations on the command line: `10s`, `500ms`, `1m`, or plain seconds.

use std::time::Duration;

/// Parses `10s`, `500ms`, `1m`, `2.5s` or `10` (seconds); zero is refused.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_seconds) = if let Some(number) = text.strip_suffix("ms") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 1m"))?;
    Duration::try_from_secs_f64(value * unit_seconds)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| format!("`{text}` must be a positive duration"))
}

/// The form `loadgen` and `oha` accept: whole milliseconds.
pub(crate) fn to_millis_arg(duration: Duration) -> String {
    format!("{}ms", duration.as_millis().max(1))
}

/// The form `wrk` accepts: whole seconds (it has no millisecond unit),
/// rounded up so a run is never shorter than asked.
pub(crate) fn to_wrk_arg(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    if duration.subsec_nanos() > 0 || seconds == 0 {
        seconds += 1;
    }
    format!("{seconds}s")
}

/// For reading: `10 s`, `500 ms`.
pub(crate) fn describe(duration: Duration) -> String {
    if duration.subsec_millis() == 0 && duration.as_secs() > 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse("2.5s"), Ok(Duration::from_millis(2500)));
    }

    #[test]
    fn refuses_zero_and_nonsense() {
        assert!(parse("0s").is_err());
        assert!(parse("ten seconds").is_err());
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn formats_for_each_generator() {
        assert_eq!(to_millis_arg(Duration::from_millis(2500)), "2500ms");
        assert_eq!(to_wrk_arg(Duration::from_millis(2500)), "3s");
        assert_eq!(to_wrk_arg(Duration::from_secs(10)), "10s");
        assert_eq!(to_wrk_arg(Duration::from_millis(200)), "1s");
        assert_eq!(describe(Duration::from_secs(10)), "10 s");
        assert_eq!(describe(Duration::from_millis(500)), "500 ms");
    }
}
