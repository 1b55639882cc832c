//! REST request bodies (seed contract section 5.3).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::enums::SimulateMode;

/// Body of `POST /api/demo/bug`: sets (does not toggle) the demo service's bug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SetBugRequest {
    /// `true` makes every checkout of the demo service fail with a 500.
    pub enabled: bool,
}

/// Body of `POST /api/incidents/simulate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SimulateRequest {
    /// Open or close a simulated incident.
    pub mode: SimulateMode,
}

/// Body of `POST /api/tests/run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunTestsRequest {
    /// The incident whose current plan to run: 1 to 128 characters, not all of them whitespace.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub incident_id: String,
}

/// Body of `POST /api/copilot/ask`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CopilotAskRequest {
    /// The incident the question is about, or `null` for the system as a whole (a missing key reads as `null`).
    #[serde(default)]
    #[schema(max_length = 128)]
    pub incident_id: Option<String>,
    /// The question: 1 to 4,000 characters, not all of them whitespace.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]"
    )]
    pub question: String,
}

/// The JSON Schema `pattern` of a required text that must not be blank: it matches a text holding at least one
/// character outside Unicode's `White_Space` set, which is the set Rust's `char::is_whitespace` (and so
/// `str::trim`) uses.
///
/// The set is spelled out rather than written `\S`, because `\s` means a different set in each regex dialect
/// (ECMA 262's adds U+FEFF and leaves out U+0085; Python's adds U+001C to U+001F), and a fuzzer reading the spec
/// must agree with the server on every character. The `#[schema(pattern)]` annotations above
/// repeat this literal (the derive takes no constant); a test checks that the spec carries it.
pub const NON_BLANK_PATTERN: &str =
    r"[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// The longest copilot question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;
