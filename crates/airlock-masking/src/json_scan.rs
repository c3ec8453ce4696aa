//! Masks a JSON document in one pass, without building a tree.
//!
//! The scanner validates the whole document (RFC 8259: UTF-8, strict
//! escapes, paired surrogates, no control characters in strings, strict
//! numbers, nothing after the value) while keeping the path of the current
//! value. A string value that a rule selects, or in which a detector finds a
//! secret, is replaced by a new string literal (written by `serde_json`);
//! every other byte is kept as it was, so member order, whitespace and
//! number spelling survive, and the output is valid JSON exactly when the
//! input is. Duplicate member names are each masked.

use std::borrow::Cow;
use std::ops::Range;

use crate::MaskError;
use crate::detectors::{self, Context};
use crate::json_path::{JsonPath, Segment, render};
use crate::splice::{Splice, apply_hits};
use crate::token::{REDACTED, TokenScope, is_masked_token};

/// The deepest nesting followed (`serde_json` stops at 127).
pub(crate) const MAX_DEPTH: usize = 128;

/// What to mask in one body.
#[derive(Debug, Default)]
pub(crate) struct Plan<'m> {
    /// Rule paths, each with whether it is anchored at the root (rules of
    /// the operation itself) or may start anywhere (rules of operations
    /// carried inside it).
    pub(crate) paths: Vec<(&'m JsonPath, bool)>,
    /// Whether the detectors run.
    pub(crate) detectors: bool,
    /// Whether any rule matched the operation (then `value` fields count as
    /// key-like for the 44-character key detector).
    pub(crate) rule_matched: bool,
    /// XML elements whose text the matching rules mask.
    pub(crate) xml_elements: Vec<&'m str>,
    /// Rule-selected values stay in clear (a reveal), and are not scanned
    /// by the detectors either.
    pub(crate) reveal_selected: bool,
    /// A request's body: members named like a password or secret are
    /// masked whole.
    pub(crate) secret_names: bool,
}

/// What masking did.
#[derive(Debug, Default)]
pub(crate) struct Masked {
    /// The new body, `None` when unchanged.
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) count: u32,
    pub(crate) paths: Vec<String>,
}

impl Masked {
    pub(crate) fn record(&mut self, path: String) {
        self.count = self.count.saturating_add(1);
        self.paths.push(path);
    }
}

/// Masks `input` as JSON.
pub(crate) fn mask_json(
    input: &[u8],
    plan: &Plan<'_>,
    tokens: Option<&TokenScope>,
) -> Result<Masked, MaskError> {
    let text = std::str::from_utf8(input).map_err(|error| MaskError::NotJson {
        offset: error.valid_up_to(),
        expected: "UTF-8 text",
    })?;
    let mut scanner = Scanner {
        text,
        bytes: input,
        pos: 0,
        path: Vec::new(),
        plan,
        tokens,
        splice: Splice::new(input),
        masked: Masked::default(),
    };
    scanner.document()?;
    let Scanner {
        splice, mut masked, ..
    } = scanner;
    masked.body = splice.finish();
    Ok(masked)
}

struct Scanner<'a, 'p> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    path: Vec<Segment<'a>>,
    plan: &'p Plan<'p>,
    /// Tokens for rule-selected values (`None`: no rule matched, so none is selected).
    tokens: Option<&'p TokenScope>,
    splice: Splice<'a>,
    masked: Masked,
}

/// A string literal in the input.
struct Literal {
    /// The literal, quotes included.
    range: Range<usize>,
    /// Whether it has escapes (its content must be decoded).
    escaped: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

fn has_control(bytes: &[u8]) -> bool {
    // No early exit: this form vectorizes.
    bytes.iter().fold(false, |found, &b| found | (b < 0x20))
}

impl<'a> Scanner<'a, '_> {
    fn error(&self, expected: &'static str) -> MaskError {
        MaskError::NotJson {
            offset: self.pos,
            expected,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn document(&mut self) -> Result<(), MaskError> {
        let mut containers: Vec<Container> = Vec::new();
        self.skip_whitespace();
        'value: loop {
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if containers.len() >= MAX_DEPTH {
                        return Err(MaskError::TooDeep { limit: MAX_DEPTH });
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    if open == b'{' {
                        if self.peek() == Some(b'}') {
                            self.pos += 1;
                        } else {
                            containers.push(Container::Object);
                            self.member_name()?;
                            continue 'value;
                        }
                    } else if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        containers.push(Container::Array);
                        self.path.push(Segment::Index(0));
                        continue 'value;
                    }
                }
                Some(b'"') => self.string_value()?,
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(self.error("a value")),
            }
            // After a value: the next member or element, or the end of containers.
            loop {
                self.skip_whitespace();
                let Some(&container) = containers.last() else {
                    return if self.pos == self.bytes.len() {
                        Ok(())
                    } else {
                        Err(self.error("the end of the document"))
                    };
                };
                let close = if container == Container::Object {
                    b'}'
                } else {
                    b']'
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_whitespace();
                        if container == Container::Object {
                            self.path.pop();
                            self.member_name()?;
                        } else if let Some(Segment::Index(index)) = self.path.last_mut() {
                            *index += 1;
                        }
                        continue 'value;
                    }
                    Some(b) if b == close => {
                        self.pos += 1;
                        self.path.pop();
                        containers.pop();
                    }
                    _ if container == Container::Object => return Err(self.error("',' or '}'")),
                    _ => return Err(self.error("',' or ']'")),
                }
            }
        }
    }

    /// `"name" :` then whitespace; pushes the name on the path.
    fn member_name(&mut self) -> Result<(), MaskError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("a member name"));
        }
        let literal = self.string()?;
        let name = self.content(&literal)?;
        self.path.push(Segment::Key(name));
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.error("':'"));
        }
        self.pos += 1;
        self.skip_whitespace();
        Ok(())
    }

    fn literal(&mut self, word: &'static str) -> Result<(), MaskError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error(word))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), MaskError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("a digit after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("a digit in the exponent"));
            }
        }
        Ok(())
    }

    /// A string literal at `pos`, validated.
    fn string(&mut self) -> Result<Literal, MaskError> {
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        loop {
            let rest = &self.bytes[self.pos..];
            let Some(i) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.bytes.len();
                return Err(self.error("'\"' closing the string"));
            };
            if has_control(&rest[..i]) {
                let at = rest[..i].iter().position(|&b| b < 0x20).unwrap_or(0);
                self.pos += at;
                return Err(self.error("no control characters in a string (escape them)"));
            }
            self.pos += i;
            if rest[i] == b'"' {
                self.pos += 1;
                return Ok(Literal {
                    range: start..self.pos,
                    escaped,
                });
            }
            escaped = true;
            self.pos += 1;
            self.escape()?;
        }
    }

    /// One escape after its `\`.
    fn escape(&mut self) -> Result<(), MaskError> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4()?;
                if (0xDC00..=0xDFFF).contains(&unit) {
                    return Err(self.error("a leading surrogate before a trailing one"));
                }
                if (0xD800..=0xDBFF).contains(&unit) {
                    if !self.bytes[self.pos..].starts_with(b"\\u") {
                        return Err(self.error("a trailing surrogate after a leading one"));
                    }
                    self.pos += 2;
                    let low = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return Err(self.error("a trailing surrogate after a leading one"));
                    }
                }
                Ok(())
            }
            _ => Err(self.error("a valid escape")),
        }
    }

    fn hex4(&mut self) -> Result<u16, MaskError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("four hex digits"))?;
        let mut unit = 0u16;
        for &digit in digits {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                b'A'..=b'F' => digit - b'A' + 10,
                _ => return Err(self.error("four hex digits")),
            };
            unit = unit << 4 | u16::from(value);
        }
        self.pos += 4;
        Ok(unit)
    }

    /// The decoded content of a literal: borrowed unless it has escapes.
    fn content(&self, literal: &Literal) -> Result<Cow<'a, str>, MaskError> {
        let text: &'a str = self.text;
        let not_json = || MaskError::NotJson {
            offset: literal.range.start,
            expected: "a valid string",
        };
        if literal.escaped {
            let whole = text.get(literal.range.clone()).ok_or_else(not_json)?;
            serde_json::from_str::<String>(whole)
                .map(Cow::Owned)
                .map_err(|_| not_json())
        } else {
            text.get(literal.range.start + 1..literal.range.end - 1)
                .map(Cow::Borrowed)
                .ok_or_else(not_json)
        }
    }

    fn string_value(&mut self) -> Result<(), MaskError> {
        let literal = self.string()?;
        let selected = self
            .plan
            .paths
            .iter()
            .any(|(path, anchored)| path.selects(&self.path, *anchored));
        if !selected && self.plan.secret_names && self.named_like_a_secret() {
            let content = self.content(&literal)?;
            if !content.is_empty() && !is_masked_token(&content) {
                self.splice
                    .replace(literal.range, format!("\"{REDACTED}\"").as_bytes());
                self.masked
                    .record(format!("{} (named like a secret)", render(&self.path)));
            }
            return Ok(());
        }
        if !selected && !self.plan.detectors {
            return Ok(());
        }
        if !selected
            && !literal.escaped
            && !detectors::may_hold_secret(
                &self.bytes[literal.range.start + 1..literal.range.end - 1],
            )
        {
            return Ok(());
        }
        if selected && self.plan.reveal_selected {
            return Ok(());
        }
        let content = self.content(&literal)?;
        if selected {
            if content.is_empty() || is_masked_token(&content) {
                return Ok(());
            }
            let field = render(&self.path);
            let token = self.tokens.map_or_else(
                || REDACTED.to_owned(),
                |tokens| tokens.token(&field, content.as_bytes()),
            );
            self.splice
                .replace(literal.range, format!("\"{token}\"").as_bytes());
            self.masked.record(field);
            return Ok(());
        }
        let hits = detectors::find(content.as_bytes(), Context::JsonString, || self.key_like());
        if hits.is_empty() {
            return Ok(());
        }
        // Hits split only at ASCII bytes, so the text stays UTF-8.
        let masked = String::from_utf8(apply_hits(content.as_bytes(), &hits)).map_err(|_| {
            MaskError::NotJson {
                offset: literal.range.start,
                expected: "a valid string",
            }
        })?;
        let replacement = serde_json::to_string(&masked).map_err(|_| MaskError::NotJson {
            offset: literal.range.start,
            expected: "a valid string",
        })?;
        self.splice.replace(literal.range, replacement.as_bytes());
        let at = render(&self.path);
        for hit in hits {
            self.masked.record(format!("{at} ({})", hit.label));
        }
        Ok(())
    }

    /// Whether the member this value sits in is named like a password or a
    /// secret ([`detectors::is_secret_name`]).
    fn named_like_a_secret(&self) -> bool {
        matches!(self.path.last(), Some(Segment::Key(name)) if detectors::is_secret_name(name.as_bytes()))
    }

    /// Whether the nearest member name holding the current value looks like
    /// it holds a key.
    fn key_like(&self) -> bool {
        let Some(name) = self.path.iter().rev().find_map(|segment| match segment {
            Segment::Key(name) => Some(name),
            Segment::Index(_) => None,
        }) else {
            return false;
        };
        detectors::is_key_like_name(name.as_bytes())
            || (self.plan.rule_matched && name.eq_ignore_ascii_case("value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect_only(input: &str) -> Result<Masked, MaskError> {
        let plan = Plan {
            detectors: true,
            ..Plan::default()
        };
        mask_json(input.as_bytes(), &plan, None)
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        for ok in [
            "0",
            "-0.5e+3",
            "\"\"",
            " [ ] ",
            "{}",
            "{\"a\":[1,{\"b\":null}],\"c\":true}",
            "\"\\ud83d\\ude00\\n\"",
            "[\"é\"]",
        ] {
            assert!(detect_only(ok).is_ok(), "{ok}");
            assert!(
                serde_json::from_str::<serde_json::Value>(ok).is_ok(),
                "{ok}"
            );
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for bad in [
            "",
            "01",
            "1.",
            "-",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            "\"\u{1}\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\u12\"",
            "tru",
            "[",
            "{}{}",
            "\"abc",
            "[1]]",
            "nul",
        ] {
            assert!(detect_only(bad).is_err(), "{bad:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn strings_short_and_long_end_and_fail_alike() {
        // Around the widths memchr scans at once: control characters,
        // escapes and missing quotes found before, at and after them.
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 100] {
            let text = "a".repeat(len);
            assert!(detect_only(&format!("[\"{text}\"]")).is_ok(), "{len}");
            assert!(
                detect_only(&format!("[\"{text}\\n{text}\"]")).is_ok(),
                "{len}"
            );
            assert!(detect_only(&format!("[\"{text}")).is_err(), "{len}");
            let control = format!("[\"{text}\u{1f}{text}\"]");
            assert_eq!(
                detect_only(&control).unwrap_err(),
                MaskError::NotJson {
                    offset: 2 + len,
                    expected: "no control characters in a string (escape them)"
                },
                "{len}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(
            detect_only(&deep).unwrap_err(),
            MaskError::TooDeep { limit: MAX_DEPTH }
        );
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(detect_only(&fine).is_ok());
    }

    #[test]
    fn escaped_secrets_are_found_and_rewritten_validly() {
        let input = r#"{"cs":"AccountKey\u003dabc\"d;x=1","n":1.50}"#;
        let masked = detect_only(input).unwrap();
        let body = String::from_utf8(masked.body.unwrap()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        let cs = value["cs"].as_str().unwrap();
        assert_eq!(cs, "AccountKey=***MASKED***;x=1");
        assert!(
            body.ends_with(r#","n":1.50}"#),
            "numbers keep their spelling: {body}"
        );
        assert_eq!(masked.paths, ["$.cs (AccountKey)"]);
    }
}
