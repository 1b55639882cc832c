//! The pass-criteria language: parser, printer and evaluator (SKELETON: signatures fixed, bodies to be written).

use std::fmt;

/// A parsed pass-criteria expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    source: String,
}

/// A parse error with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {column}: {message}")]
pub struct ParseError {
    /// Byte offset into the source.
    pub offset: usize,
    /// 1-based column (in characters) of the error.
    pub column: usize,
    /// What was expected or found.
    pub message: String,
}

/// An observed HTTP response, the input of the evaluator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// HTTP status code.
    pub status: u16,
    /// Response headers; names are compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// Response body as text (possibly truncated by the runner).
    pub body: String,
    /// Time to the full response, in milliseconds.
    pub latency_ms: u64,
}

/// The evaluator's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the criteria held.
    pub passed: bool,
    /// One line saying why (used as the test's `details`).
    pub explanation: String,
}

impl Criteria {
    /// Parses an expression.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] positioned at the first problem.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        Ok(Self {
            source: source.to_owned(),
        })
    }

    /// Evaluates the criteria against an observed response.
    #[must_use]
    pub fn evaluate(&self, observation: &Observation) -> Verdict {
        Verdict {
            passed: observation.status == 200,
            explanation: format!("status {}", observation.status),
        }
    }
}

impl fmt::Display for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
