//! [`record_in_current_span`]: what a layer learned, written into the
//! request's span.

use tracing::field::Value;

/// Records `value` as the current span's `field`, when that span declares
/// the field (the gateway's request span declares `principal` and `rule`;
/// an embedder's span may declare others, or none).
///
/// The same as `Span::current().record(field, value)`, without taking a
/// handle to the span: a handle is a reference count in the subscriber's
/// registry, taken and released again on every record (with the three
/// records of the gateway's request path, 1.3% of its instructions per
/// request; see `docs/bench/notes.md`).
///
/// ```
/// use tracing::field::{Empty, display};
///
/// let span = tracing::info_span!("request", principal = Empty);
/// let _entered = span.enter();
/// airlock_core::record_in_current_span("principal", &display("agent-1"));
/// // Not declared by this span: nothing is recorded.
/// airlock_core::record_in_current_span("operation", &display("Microsoft.Storage/storageAccounts/read"));
/// ```
pub fn record_in_current_span(field: &str, value: &dyn Value) {
    tracing::dispatcher::get_default(|dispatch| {
        let current = dispatch.current_span();
        let (Some(id), Some(metadata)) = (current.id(), current.metadata()) else {
            return;
        };
        let fields = metadata.fields();
        if let Some(field) = fields.field(field) {
            let values = [(&field, Some(value))];
            dispatch.record(id, &tracing::span::Record::new(&fields.value_set(&values)));
        }
    });
}

#[cfg(test)]
mod tests {
    use tracing::field::{Empty, display};

    use super::*;

    #[test]
    fn declared_fields_are_recorded_in_the_current_span_and_others_ignored() {
        let lines = crate::LogCapture::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // No span: nothing to record into, and no panic.
            record_in_current_span("principal", &display("nobody"));
            let span = tracing::info_span!("request", principal = Empty, rule = Empty);
            let _entered = span.enter();
            record_in_current_span("principal", &display("agent-1"));
            record_in_current_span("rule", &"agents-read");
            record_in_current_span("operation", &display("undeclared"));
            tracing::info!("inside");
        });
        let text = lines.text();
        assert!(
            text.contains("request{principal=agent-1 rule=\"agents-read\"}"),
            "{text}"
        );
        assert!(
            !text.contains("undeclared") && !text.contains("nobody"),
            "{text}"
        );
    }
}
