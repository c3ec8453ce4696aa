//! Why a policy file was refused.

use std::fmt;

/// A policy that cannot be used, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or `<string>`).
    pub origin: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// The rule at fault, where known.
    pub rule: Option<String>,
    /// What is wrong (for parse errors, toml's own message).
    pub problem: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ": rule '{rule}'")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for PolicyError {}
