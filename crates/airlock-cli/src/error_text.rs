//! [`error_text`]: an error and its causes on one line, each said once.

/// The error's message followed by each cause's, `: `-separated, leaving
/// out a cause whose text the line already holds (many error types put
/// their source in their own message too, and anyhow's `{:#}` would say it
/// twice).
///
/// ```
/// use std::io;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot read airlock.toml: {source}")]
/// struct Read {
///     source: io::Error,
/// }
///
/// let error = anyhow::Error::new(Read { source: io::Error::other("gone") }).context("starting");
/// assert_eq!(airlock_cli::error_text(error.as_ref()), "starting: cannot read airlock.toml: gone");
/// ```
pub fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let said = error.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = error.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_not_in_the_message_are_appended() {
        let error = Outer(std::io::Error::other("inner"));
        assert_eq!(error_text(&error), "outer: inner");
    }
}
