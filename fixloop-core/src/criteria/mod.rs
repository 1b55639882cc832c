//! The pass-criteria language: a small boolean expression over one observed HTTP response.
//!
//! A plan item's `pass_criteria` stays a readable string, but it is machine-checkable: [`Criteria::parse`] turns
//! it into an AST (or a [`ParseError`] with a column), [`Criteria`]'s `Display` prints the canonical form (which
//! parses back to the same AST), and [`Criteria::evaluate`] decides pass or fail against an [`Observation`] with a
//! one-line explanation that becomes the test's `details`.
//!
//! # Examples
//!
//! ```text
//! status == 200 && json.status == "ok" && latency_ms < 800
//! status in [400, 422] && json.error == "invalid_order"
//! body contains "confirmed"
//! header.content-type contains "json"
//! len(json.products) > 0 && json.products[0].sku exists
//! !(status >= 500) || json["order-id"] == null
//! ```
//!
//! # Grammar
//!
//! ```text
//! criteria   = or_expr ;
//! or_expr    = and_expr { "||" and_expr } ;
//! and_expr   = unary { "&&" unary } ;
//! unary      = "!" unary | "(" or_expr ")" | predicate ;
//! predicate  = subject compare_op literal
//!            | subject "in" "[" literal { "," literal } "]"
//!            | subject "contains" literal
//!            | subject "exists" ;
//! compare_op = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//! subject    = "status"                      (* HTTP status code, a number *)
//!            | "latency_ms"                  (* time to the full response, a number *)
//!            | "body"                        (* the body as text *)
//!            | "header" "." name             (* a response header, case-insensitive; values joined by ", " *)
//!            | "json" { segment }            (* the body parsed as JSON, then a path into it *)
//!            | "len" "(" subject ")" ;       (* length of a string (characters), array or object *)
//! segment    = "." name | "[" integer "]" | "[" string "]" ;
//! name       = ( letter | "_" ) { letter | digit | "_" | "-" } ;
//! literal    = string | number | "true" | "false" | "null" ;
//! string     = '"' { char | "\\" ( '"' | "\\" | "n" | "t" | "r" | "u{" hex+ "}" ) } '"' ;
//! number     = [ "-" ] digit+ [ "." digit+ ] [ ( "e" | "E" ) [ "+" | "-" ] digit+ ] ;
//! ```
//!
//! The subject is always on the left and a literal on the right; `!` binds tighter than `&&`, which binds tighter
//! than `||`. Whitespace between tokens is free. Header names are stored lowercase. Sources longer than
//! [`MAX_SOURCE_LEN`] bytes, nesting (parentheses, `!`, `len`) deeper than [`MAX_DEPTH`], JSON paths longer than
//! [`MAX_PATH_SEGMENTS`] and `in` lists longer than [`MAX_LIST_LEN`] are parse errors, so hostile input (LLM
//! output is untrusted) cannot exhaust the stack.
//!
//! # Semantics
//!
//! - `==` and `!=` compare numbers numerically and strings, booleans and `null` exactly; values of different types
//!   are not equal. `<`, `<=`, `>`, `>=` need a number on both sides.
//! - `in [..]` holds when the subject equals one of the literals.
//! - `contains` holds for a string subject containing the literal string, a JSON array with an element equal to
//!   the literal, or a JSON object with the literal string as a key.
//! - `exists` holds when the subject can be resolved: the header is present, the body is JSON and the path leads to
//!   a value (`null` included).
//! - A subject that cannot be resolved (body not JSON, missing key, index out of range, absent header, `len` of a
//!   number) makes its predicate fail, whatever the operator, with the reason in the explanation. Evaluation never
//!   panics.
//! - The canonical printer writes one space around binary operators, parenthesizes every `&&`/`||` group nested in
//!   another one and every non-predicate operand of `!`, and prints JSON keys as `.key` when they are names and as
//!   `["key"]` otherwise.

mod eval;
mod parser;

use std::fmt;

pub use eval::EXPLANATION_MAX_CHARS;

/// Longest accepted criteria source, in bytes.
pub const MAX_SOURCE_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses, `!` and `len(..)`.
pub const MAX_DEPTH: usize = 32;
/// Longest accepted JSON path, in segments.
pub const MAX_PATH_SEGMENTS: usize = 32;
/// Most literals accepted in one `in [..]` list.
pub const MAX_LIST_LEN: usize = 64;

/// A parsed pass-criteria expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    expr: Expr,
}

/// A boolean expression of the criteria language.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Holds when any operand holds (the parser produces two or more operands).
    Or(Vec<Self>),
    /// Holds when every operand holds (the parser produces two or more operands).
    And(Vec<Self>),
    /// Holds when the operand does not.
    Not(Box<Self>),
    /// A test of one subject of the response.
    Predicate(Predicate),
}

/// A test of one subject against literals.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `subject op literal`.
    Compare {
        /// What is compared.
        subject: Subject,
        /// The comparison.
        op: CompareOp,
        /// What it is compared with.
        value: Literal,
    },
    /// `subject in [literal, ...]`.
    In {
        /// What is compared.
        subject: Subject,
        /// The accepted values (at least one).
        values: Vec<Literal>,
    },
    /// `subject contains literal`.
    Contains {
        /// The haystack.
        subject: Subject,
        /// The needle.
        needle: Literal,
    },
    /// `subject exists`.
    Exists {
        /// What must be present.
        subject: Subject,
    },
}

/// A value taken from the observed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// `status`: the HTTP status code.
    Status,
    /// `latency_ms`: the response time in milliseconds.
    LatencyMs,
    /// `body`: the body as text.
    Body,
    /// `header.<name>`: a response header (name stored lowercase).
    Header(String),
    /// `json<path>`: the body parsed as JSON, then the path (empty: the whole document).
    Json(Vec<PathSegment>),
    /// `len(<subject>)`: the length of a string, array or object.
    Len(Box<Self>),
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// `.name` or `["name"]`: an object key.
    Key(String),
    /// `[n]`: an array index.
    Index(usize),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A finite number.
    Number(f64),
    /// A string.
    String(String),
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
    /// A [`ParseError`] positioned at the first problem (unexpected character or token, unterminated string,
    /// input longer than [`MAX_SOURCE_LEN`], nesting deeper than [`MAX_DEPTH`], ...).
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        parser::parse(source).map(|expr| Self { expr })
    }

    /// Wraps an AST built by hand. Its printed form parses back to it when it stays within the parser's limits and
    /// every `And`/`Or` has at least two operands.
    #[must_use]
    pub fn from_expr(expr: Expr) -> Self {
        Self { expr }
    }

    /// The AST.
    #[must_use]
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Evaluates the criteria against an observed response. Never panics.
    #[must_use]
    pub fn evaluate(&self, observation: &Observation) -> Verdict {
        eval::evaluate(&self.expr, observation)
    }

    /// Whether the criteria can only pass on a client error: some status in `400..=499` may pass, and no status in
    /// `100..=599` outside it can. Used by the negative-test coverage rule.
    #[must_use]
    pub fn expects_client_error(&self) -> bool {
        eval::admits_only(&self.expr, 400..=499)
    }

    /// Whether the criteria can only pass on a success: some status in `200..=299` may pass, and no status in
    /// `100..=599` outside it can.
    #[must_use]
    pub fn expects_success(&self) -> bool {
        eval::admits_only(&self.expr, 200..=299)
    }
}

impl fmt::Display for Criteria {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Or(operands) => write_joined(f, operands, " || "),
            Self::And(operands) => write_joined(f, operands, " && "),
            Self::Not(inner) => match inner.as_ref() {
                Self::Not(_) => write!(f, "!{inner}"),
                _ => write!(f, "!({inner})"),
            },
            Self::Predicate(predicate) => predicate.fmt(f),
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compare { subject, op, value } => write!(f, "{subject} {op} {value}"),
            Self::In { subject, values } => {
                write!(f, "{subject} in [")?;
                for (index, value) in values.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    value.fmt(f)?;
                }
                f.write_str("]")
            }
            Self::Contains { subject, needle } => write!(f, "{subject} contains {needle}"),
            Self::Exists { subject } => write!(f, "{subject} exists"),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status => f.write_str("status"),
            Self::LatencyMs => f.write_str("latency_ms"),
            Self::Body => f.write_str("body"),
            Self::Header(name) => write!(f, "header.{name}"),
            Self::Json(path) => {
                f.write_str("json")?;
                for segment in path {
                    match segment {
                        PathSegment::Key(key) if is_name(key) => write!(f, ".{key}")?,
                        PathSegment::Key(key) => {
                            f.write_str("[")?;
                            write_string(f, key)?;
                            f.write_str("]")?;
                        }
                        PathSegment::Index(index) => write!(f, "[{index}]")?,
                    }
                }
                Ok(())
            }
            Self::Len(inner) => write!(f, "len({inner})"),
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        })
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(value) => write!(f, "{value}"),
            Self::Number(value) => write!(f, "{value}"),
            Self::String(value) => write_string(f, value),
        }
    }
}

/// Whether `text` can be printed bare after `.` (a `name` of the grammar).
fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn write_joined(f: &mut fmt::Formatter<'_>, operands: &[Expr], separator: &str) -> fmt::Result {
    for (index, operand) in operands.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        match operand {
            Expr::Or(_) | Expr::And(_) => write!(f, "({operand})")?,
            Expr::Not(_) | Expr::Predicate(_) => write!(f, "{operand}")?,
        }
    }
    Ok(())
}

fn write_string(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_is_canonical() {
        let criteria = Criteria::parse(
            "  status==200&&( json . a ==\"x\"||!status<3)&&header.Content-Type exists",
        )
        .unwrap();
        assert_eq!(
            criteria.to_string(),
            "status == 200 && (json.a == \"x\" || !(status < 3)) && header.content-type exists"
        );
    }

    #[test]
    fn keys_that_are_not_names_print_in_brackets() {
        let criteria = Criteria::parse(r#"json["a b"][2]["x\"y"].z == 1.5"#).unwrap();
        assert_eq!(criteria.to_string(), r#"json["a b"][2]["x\"y"].z == 1.5"#);
    }

    #[test]
    fn control_characters_print_as_unicode_escapes() {
        let criteria = Criteria::from_expr(Expr::Predicate(Predicate::Contains {
            subject: Subject::Body,
            needle: Literal::String("a\u{1}\n".to_owned()),
        }));
        let printed = criteria.to_string();
        assert_eq!(printed, r#"body contains "a\u{1}\n""#);
        assert_eq!(Criteria::parse(&printed).unwrap(), criteria);
    }
}
