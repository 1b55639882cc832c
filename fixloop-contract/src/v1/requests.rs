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
    /// The incident whose current plan to run.
    #[schema(min_length = 1, max_length = 128)]
    pub incident_id: String,
}

/// Body of `POST /api/copilot/ask`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CopilotAskRequest {
    /// The incident the question is about, or `null` for the system as a whole (a missing key reads as `null`).
    #[serde(default)]
    #[schema(max_length = 128)]
    pub incident_id: Option<String>,
    /// The question, 1 to 4,000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub question: String,
}

/// The longest copilot question accepted, in characters.
pub const MAX_QUESTION_CHARS: usize = 4000;
