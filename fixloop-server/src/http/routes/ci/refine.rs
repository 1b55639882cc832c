//! The LLM's refinement of an intake's classification: one call to the [`CiRefiner`] under a timeout, its
//! proposal passed through the core's rule (`fixloop_core::ci::refine`). A refusal, a timeout or garbage leaves the
//! classifier's answer standing; the intake never waits longer than the timeout.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::minimax::{MiniMaxCiRefiner, MiniMaxConfig};
use fixloop_adapters::{CiRefiner, RefineRequest};
use fixloop_core::ci::Classification;
use fixloop_core::ci::refine::{Refined, refine};

use crate::config::MiniMaxSettings;

/// How long an intake waits for the model when the configuration does not say.
pub const DEFAULT_REFINE_TIMEOUT: Duration = Duration::from_secs(20);

/// The configured refiner and how long an intake waits for it.
#[derive(Debug, Clone)]
pub struct CiRefine {
    /// The model (MiniMax when `MINIMAX_API_KEY` is set; a fake in tests).
    pub refiner: Arc<dyn CiRefiner>,
    /// How long an intake waits for its answer.
    pub timeout: Duration,
}

impl CiRefine {
    /// `refiner`, waited for at most `timeout`.
    #[must_use]
    pub fn new(refiner: Arc<dyn CiRefiner>, timeout: Duration) -> Self {
        Self { refiner, timeout }
    }

    /// MiniMax (`MINIMAX_API_KEY`, `MINIMAX_MODEL`, `MINIMAX_BASE_URL`), its own call bounded by
    /// [`DEFAULT_REFINE_TIMEOUT`] as the intake's wait is, so a slow model costs one timeout, never more.
    #[must_use]
    pub fn minimax(settings: &MiniMaxSettings, http: &reqwest::Client) -> Self {
        let mut config = MiniMaxConfig::new(settings.api_key.clone());
        if let Some(model) = &settings.model {
            config.model.clone_from(model);
        }
        if let Some(base_url) = &settings.base_url {
            config.base_url.clone_from(base_url);
        }
        config.timeout = DEFAULT_REFINE_TIMEOUT;
        Self::new(
            Arc::new(MiniMaxCiRefiner::new(config, http.clone())),
            DEFAULT_REFINE_TIMEOUT,
        )
    }

    /// What stands after asking the model about `log` (classified `rules`).
    pub(super) async fn apply(&self, log: &str, rules: Classification) -> Refined {
        let request = RefineRequest {
            log_excerpt: log.to_owned(),
            rules: rules.clone(),
        };
        let answer = tokio::time::timeout(self.timeout, self.refiner.refine(&request)).await;
        let proposal = match answer {
            Ok(Ok(proposal)) => proposal,
            Ok(Err(error)) => {
                tracing::warn!(refiner = self.refiner.refiner(), error = %error.detail(), "CI refinement failed: the rules stand");
                return Refined::rules(rules);
            }
            Err(_) => {
                tracing::warn!(refiner = self.refiner.refiner(), timeout = ?self.timeout, "CI refinement timed out: the rules stand");
                return Refined::rules(rules);
            }
        };
        let refined = refine(log, &rules, &proposal);
        if let Some(refusal) = &refined.refusal {
            tracing::info!(refiner = self.refiner.refiner(), refusal = ?refusal, "CI refinement refused: the rules stand");
        } else if refined.dropped_quotes > 0 {
            tracing::info!(
                refiner = self.refiner.refiner(),
                dropped_quotes = refined.dropped_quotes,
                "CI refinement kept without the quoted lines that do not occur"
            );
        }
        refined
    }
}
