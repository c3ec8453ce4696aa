//! The JSONPath subset masking rules are written in, and where a value sits
//! in a document ([`Segment`]s, rendered as `$.keys[0].value`).
//!
//! Supported: `$` (the root), `.field`, `['field']` (or `["field"]`), `[*]`
//! and `.*` (every member or element), `[N]` (one element), `..field` and
//! `..*` (at any depth below). Field names compare ASCII case-insensitively
//! (ARM's names are case-insensitive). A path that selects an object or an
//! array stands for every string inside it.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::MaskError;

/// The most steps a path may have (its matching state is one `u64`).
const MAX_STEPS: usize = 63;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// `.field`, `['field']`.
    Field(Box<str>),
    /// `.*`, `[*]`.
    Any,
    /// `[N]`.
    Index(usize),
    /// `..field` (`Some`), `..*` (`None`).
    Descendant(Option<Box<str>>),
}

/// One parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

/// One step from a parent to a child in a concrete document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// A member of an object.
    Key(Cow<'a, str>),
    /// An element of an array.
    Index(usize),
}

impl JsonPath {
    /// Parses `text`.
    pub(crate) fn parse(text: &str) -> Result<Self, MaskError> {
        let problem = |problem: &str| MaskError::JsonPath {
            path: text.to_owned(),
            problem: problem.to_owned(),
        };
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(problem("a path starts with '$' (the root)"));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            let (step, after) = if let Some(after) = rest.strip_prefix("..") {
                if let Some(after) = after.strip_prefix('*') {
                    (Step::Descendant(None), after)
                } else if after.starts_with('[') {
                    let (step, after) = bracket(after).map_err(|p| problem(&p))?;
                    match step {
                        Step::Field(name) => (Step::Descendant(Some(name)), after),
                        Step::Any => (Step::Descendant(None), after),
                        _ => return Err(problem("'..' is followed by a field name or '*'")),
                    }
                } else {
                    let (name, after) = dotted_name(after).map_err(|p| problem(&p))?;
                    (Step::Descendant(Some(name.into())), after)
                }
            } else if let Some(after) = rest.strip_prefix('.') {
                if let Some(after) = after.strip_prefix('*') {
                    (Step::Any, after)
                } else {
                    let (name, after) = dotted_name(after).map_err(|p| problem(&p))?;
                    (Step::Field(name.into()), after)
                }
            } else if rest.starts_with('[') {
                bracket(rest).map_err(|p| problem(&p))?
            } else {
                return Err(problem(
                    "expected '.field', '[...]' or '..field' (supported: $, .field, ['field'], [*], [N], .*, ..field)",
                ));
            };
            steps.push(step);
            if steps.len() > MAX_STEPS {
                return Err(problem("a path has at most 63 steps"));
            }
            rest = after;
        }
        Ok(Self {
            text: text.to_owned(),
            steps,
        })
    }

    /// Whether this path selects `path` or one of its ancestors. Unless
    /// `anchored`, the path may start at any node, not only the root (rules
    /// of operations carried inside a batch match its inner responses
    /// wherever they sit).
    pub(crate) fn selects(&self, path: &[Segment<'_>], anchored: bool) -> bool {
        let accept = 1u64 << self.steps.len();
        let mut states: u64 = 1;
        if states & accept != 0 {
            return true;
        }
        for segment in path {
            if !anchored {
                states |= 1;
            }
            let mut next = 0u64;
            let mut remaining = states;
            while remaining != 0 {
                let i = remaining.trailing_zeros() as usize;
                remaining &= remaining - 1;
                let Some(step) = self.steps.get(i) else {
                    continue;
                };
                let advance = 1u64 << (i + 1);
                match (step, segment) {
                    (Step::Field(name), Segment::Key(key)) if key.eq_ignore_ascii_case(name) => {
                        next |= advance;
                    }
                    (Step::Any, _) => next |= advance,
                    (Step::Index(n), Segment::Index(index)) if n == index => next |= advance,
                    (Step::Descendant(name), _) => {
                        next |= 1u64 << i;
                        let hit = match (name, segment) {
                            (None, _) => true,
                            (Some(name), Segment::Key(key)) => key.eq_ignore_ascii_case(name),
                            (Some(_), Segment::Index(_)) => false,
                        };
                        if hit {
                            next |= advance;
                        }
                    }
                    _ => {}
                }
            }
            states = next;
            if states & accept != 0 {
                return true;
            }
            if states == 0 && anchored {
                return false;
            }
        }
        false
    }

    /// The path as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// A name after `.` or `..`: up to the next `.` or `[`.
fn dotted_name(text: &str) -> Result<(&str, &str), String> {
    let end = text.find(['.', '[']).unwrap_or(text.len());
    let name = &text[..end];
    if name.is_empty() {
        return Err("a '.' is followed by a field name or '*'".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, ']' | '\'' | '"' | '*' | '$'))
    {
        return Err(format!(
            "'{bad}' in a field name; write such names in brackets: ['name']"
        ));
    }
    Ok((name, &text[end..]))
}

/// `[*]`, `[N]`, `['name']` or `["name"]` at the start of `text`.
fn bracket(text: &str) -> Result<(Step, &str), String> {
    let inner = &text[1..];
    if let Some(after) = inner.strip_prefix("*]") {
        return Ok((Step::Any, after));
    }
    if let Some(quote) = inner.chars().next().filter(|c| matches!(c, '\'' | '"')) {
        let mut name = String::new();
        let mut chars = inner[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => name.push(escaped),
                    None => break,
                },
                c if c == quote => {
                    let after = &inner[1 + i + 1..];
                    let Some(after) = after.strip_prefix(']') else {
                        return Err("a quoted name is closed with ']'".into());
                    };
                    return Ok((Step::Field(name.into()), after));
                }
                c => name.push(c),
            }
        }
        return Err("an unterminated quoted name".into());
    }
    let end = inner.find(']').ok_or("a '[' without ']'")?;
    let index = &inner[..end];
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "'[{index}]' is not supported; use [*], [N] or ['name'] (no filters, slices or unions)"
        ));
    }
    let index = index
        .parse()
        .map_err(|_| format!("index {index} is too large"))?;
    Ok((Step::Index(index), &inner[end + 1..]))
}

/// Renders a concrete path as `$.keys[0].value` (`['odata.type']` for
/// names that are not plain identifiers).
pub(crate) fn render(path: &[Segment<'_>]) -> String {
    let mut out = String::from("$");
    for segment in path {
        match segment {
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Segment::Key(key) => {
                let plain = key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'));
                if plain {
                    out.push('.');
                    out.push_str(key);
                } else {
                    out.push_str("['");
                    for c in key.chars() {
                        match c {
                            '\'' => out.push_str("\\'"),
                            '\\' => out.push_str("\\\\"),
                            c if c.is_control() => {
                                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                            }
                            c => out.push(c),
                        }
                    }
                    out.push_str("']");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment<'_> {
        Segment::Key(Cow::Borrowed(k))
    }

    #[test]
    fn parses_the_subset() {
        let path = JsonPath::parse("$.keys[*].value").unwrap();
        assert_eq!(
            path.steps,
            [
                Step::Field("keys".into()),
                Step::Any,
                Step::Field("value".into())
            ]
        );
        let path = JsonPath::parse("$['odata.type'][3]..secret.*..*").unwrap();
        assert_eq!(
            path.steps,
            [
                Step::Field("odata.type".into()),
                Step::Index(3),
                Step::Descendant(Some("secret".into())),
                Step::Any,
                Step::Descendant(None)
            ]
        );
        assert_eq!(JsonPath::parse("$").unwrap().steps, []);
    }

    #[test]
    fn refuses_what_it_does_not_support() {
        for bad in [
            "keys",
            "$.",
            "$..",
            "$[",
            "$[?(@.x)]",
            "$[1:2]",
            "$['a'",
            "$.a b",
            "$x",
            "$[-1]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selects_nodes_and_their_descendants() {
        let path = JsonPath::parse("$.keys[*].value").unwrap();
        assert!(path.selects(&[key("keys"), Segment::Index(1), key("VALUE")], true));
        assert!(path.selects(
            &[key("keys"), Segment::Index(1), key("value"), key("x")],
            true
        ));
        assert!(!path.selects(&[key("keys"), Segment::Index(1), key("name")], true));
        assert!(!path.selects(
            &[key("x"), key("keys"), Segment::Index(1), key("value")],
            true
        ));
        assert!(path.selects(
            &[key("x"), key("keys"), Segment::Index(1), key("value")],
            false
        ));
        let anywhere = JsonPath::parse("$..password").unwrap();
        assert!(anywhere.selects(&[key("a"), Segment::Index(0), key("password")], true));
        assert!(anywhere.selects(&[key("password")], true));
        assert!(!anywhere.selects(&[key("passwords")], true));
        assert!(JsonPath::parse("$").unwrap().selects(&[], true));
    }

    #[test]
    fn renders_paths() {
        assert_eq!(
            render(&[
                key("keys"),
                Segment::Index(0),
                key("value"),
                key("odata.type"),
                key("it's")
            ]),
            "$.keys[0].value['odata.type']['it\\'s']"
        );
    }
}
