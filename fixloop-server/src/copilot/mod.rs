//! The server side of the copilot: asking it ([`Asker`]: the budget, the grounded fallback, the safety rule applied
//! once to every answer, whoever wrote it) and the look-ups its tools make ([`tools`]).

use std::time::Duration;

use chrono::Utc;
use fixloop_adapters::{Copilot, CopilotState, ErrorKind, GroundedCopilot};
use fixloop_contract::{AnsweredBy, CopilotAnswer, CopilotAskRequest};

use crate::runtime::metrics::ServerMetrics;

pub mod tools;

/// Asks a question of the configured copilot, within a budget.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The configured copilot (a model, or the grounded copilot).
    pub copilot: &'a dyn Copilot,
    /// How long the copilot may take, tool steps included: past it, the grounded copilot answers instead.
    pub budget: Duration,
    /// Where the answer's author is counted.
    pub metrics: &'a ServerMetrics,
}

impl Asker<'_> {
    /// The answer to `request` about `copilot_state`, with `lookup` for the copilot's tools. A miss of the copilot
    /// (an error, or the budget spent) never fails the question: the grounded copilot answers from the same state,
    /// with the reason. Whoever answered, the answer passes the safety rule exactly once, here.
    pub async fn ask(
        &self,
        request: CopilotAskRequest,
        copilot_state: &CopilotState,
        lookup: &tools::ServiceLookup,
    ) -> CopilotAnswer {
        let budget = self.budget;
        let answered = tokio::time::timeout(
            budget,
            self.copilot
                .answer(&request.question, copilot_state, lookup),
        )
        .await;
        // A miss of the copilot never fails the question: the grounded copilot answers from the same state.
        let (reply, answered_by, fallback_reason) = match answered {
            Ok(Ok(reply)) => {
                let by = if self.copilot.answers_with_model() {
                    AnsweredBy::Model
                } else {
                    AnsweredBy::Grounded
                };
                (reply, by, None)
            }
            missed => {
                let kind = match missed {
                    Ok(Err(error)) => {
                        tracing::warn!(kind = ?error.kind(), %error, "copilot failed; the grounded copilot answers");
                        error.kind()
                    }
                    _ => {
                        tracing::warn!(
                            ?budget,
                            "copilot missed its budget; the grounded copilot answers"
                        );
                        ErrorKind::Timeout
                    }
                };
                let reply = GroundedCopilot::reply(&request.question, copilot_state);
                (
                    reply,
                    AnsweredBy::GroundedFallback,
                    Some(fallback_reason(kind, budget)),
                )
            }
        };
        self.metrics.copilot_answered(answered_by);
        // Whatever the copilot, its answer passes the safety rule, once, before anyone sees it: a model's sentences
        // about the service's health are left out before RECOVERED, and the answer is marked `redacted`.
        let author = if answered_by == AnsweredBy::Model {
            fixloop_adapters::copilot_safety::Author::Model
        } else {
            fixloop_adapters::copilot_safety::Author::Server
        };
        let guarded = fixloop_adapters::copilot_safety::guard(
            &request.question,
            reply,
            author,
            copilot_state,
        );
        if guarded.redacted {
            tracing::info!(
                left_out = guarded.left_out,
                "copilot answer redacted by the safety rule"
            );
        }
        let reply = guarded.reply;
        CopilotAnswer {
            incident_id: request.incident_id.or_else(|| {
                copilot_state
                    .incident
                    .as_ref()
                    .map(|incident| incident.incident_id.clone())
            }),
            question: request.question,
            answer: reply.answer,
            citations: reply.citations,
            created_at: Utc::now(),
            answered_by: Some(answered_by),
            fallback_reason,
            redacted: guarded.redacted.then_some(true),
        }
    }
}

/// Why the grounded copilot answered instead of the configured one, in words fit for a 200 body (no internal
/// detail: the cause is logged).
fn fallback_reason(kind: ErrorKind, budget: Duration) -> String {
    match kind {
        ErrorKind::Timeout => format!("the model did not answer within {} s", budget.as_secs_f64()),
        ErrorKind::RateLimited { .. } => "the model is rate limited".to_owned(),
        ErrorKind::Unauthorized => "the model refused the credentials".to_owned(),
        ErrorKind::InvalidResponse => "the model's answer was unusable".to_owned(),
        ErrorKind::Unavailable => "the model is unavailable".to_owned(),
        _ => "the model failed".to_owned(),
    }
}
