//! [`Splice`]: copy-on-write replacement of byte ranges, so an unchanged
//! body is never copied and a changed one is copied once.

use std::ops::Range;

use crate::detectors::Hit;
use crate::token::REDACTED;

/// Replaces ranges of `input`, in increasing order.
#[derive(Debug)]
pub(crate) struct Splice<'a> {
    input: &'a [u8],
    out: Option<Vec<u8>>,
    copied: usize,
}

impl<'a> Splice<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            out: None,
            copied: 0,
        }
    }

    /// Replaces `range` (which starts at or after the end of the last one) with `with`.
    pub(crate) fn replace(&mut self, range: Range<usize>, with: &[u8]) {
        let input = self.input;
        let out = self
            .out
            .get_or_insert_with(|| Vec::with_capacity(input.len() + 64));
        out.extend_from_slice(input.get(self.copied..range.start).unwrap_or_default());
        out.extend_from_slice(with);
        self.copied = range.end;
    }

    /// The new bytes, or `None` when nothing was replaced.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        let mut out = self.out?;
        out.extend_from_slice(self.input.get(self.copied..).unwrap_or_default());
        Some(out)
    }
}

/// `text` with every hit replaced by [`REDACTED`]: a detector's finding
/// gets no linkable token, since the text around it may be the agent's own.
pub(crate) fn apply_hits(text: &[u8], hits: &[Hit]) -> Vec<u8> {
    let mut splice = Splice::new(text);
    for hit in hits {
        splice.replace(hit.range.clone(), REDACTED.as_bytes());
    }
    splice.finish().unwrap_or_else(|| text.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_when_something_changes() {
        let splice = Splice::new(b"hello");
        assert_eq!(splice.finish(), None);
        let mut splice = Splice::new(b"a-b-c");
        splice.replace(1..2, b"++");
        splice.replace(3..4, b"");
        assert_eq!(splice.finish().unwrap(), b"a++bc");
    }
}
