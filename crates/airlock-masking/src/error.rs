//! [`MaskError`]: why a masker could not be built, or a body not masked.
//!
//! No message ever quotes a body, a value or a key: they say where and what
//! kind of problem, so they can be logged and shown to clients.

/// Everything that can go wrong in this crate. The masking layer answers a
/// body that cannot be masked with `502 AirlockMaskingFailed` carrying this
/// message (see [`MaskingLayer`](crate::MaskingLayer)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaskError {
    /// A token key shorter than [`TokenKey::MIN_LEN`](crate::TokenKey::MIN_LEN).
    #[error(
        "a token key needs at least {min} bytes, this one has {len}; generate one with TokenKey::generate()"
    )]
    KeyTooShort {
        /// The key's length in bytes.
        len: usize,
        /// The least accepted.
        min: usize,
    },
    /// A token key in hex that is not hex.
    #[error("the token key is not valid hex (two hex digits per byte, nothing else)")]
    KeyNotHex,
    /// The system random generator failed.
    #[error("the system random number generator failed; cannot generate a token key")]
    Random,
    /// An operation pattern of a rule is invalid.
    #[error("invalid operation pattern in a masking rule: {0}")]
    Operation(String),
    /// A JSON path of a rule is invalid.
    #[error("invalid JSON path '{path}' in a masking rule: {problem}")]
    JsonPath {
        /// The path as written.
        path: String,
        /// What is wrong and what is supported.
        problem: String,
    },
    /// A reveal rule is invalid.
    #[error("{0}")]
    Reveal(String),
    /// A rule names no operation.
    #[error("a masking rule needs at least one operation pattern")]
    NoOperations,
    /// The body is not valid JSON, and it had to be parsed.
    #[error("the body is not valid JSON: expected {expected} at byte {offset}")]
    NotJson {
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// The body is nested deeper than Airlock follows.
    #[error("the body nests JSON deeper than {limit} levels")]
    TooDeep {
        /// The deepest nesting followed.
        limit: usize,
    },
    /// A body that must be masked is neither JSON nor text the detectors can scan.
    #[error(
        "the body must be masked but is neither JSON nor text (content type {content_type}), so it cannot be"
    )]
    Unreadable {
        /// The response's content type, or `none`.
        content_type: String,
    },
}
