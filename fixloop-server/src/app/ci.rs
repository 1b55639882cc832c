//! The orchestrator's CI intake: its token, the optional downstream, the profile's `[ci]` self-heal and the model
//! that may refine a classification.

use std::sync::Arc;

use fixloop_adapters::Store;

use super::StartError;
use crate::config::{Config, ConfigError};
use crate::http::routes::ci::{
    CiForward, CiHealer, CiIntakeState, CiRefine, DEFAULT_FORWARD_TIMEOUT,
};
use crate::profile::ci::CiProfile;

/// The CI intake of `config` (off without `FIXLOOP_CI_TOKEN`), recording into `store`, healing with the profile's
/// `[ci]` section when there is one.
pub(super) fn ci_intake(
    config: &Config,
    store: Arc<dyn Store>,
    ci: Option<&CiProfile>,
    http: &reqwest::Client,
) -> Result<CiIntakeState, StartError> {
    let heal = match ci {
        None => None,
        Some(profile) => Some(Arc::new(
            CiHealer::from_profile(profile, http.clone())
                .map_err(|error| StartError::Profile(format!("ci: {}", error.detail())))?,
        )),
    };
    if let Some(profile) = ci {
        tracing::info!(
            provider = ?profile.provider,
            repositories = profile.repositories.len(),
            max_attempts = profile.policy.max_attempts,
            "CI self-heal on"
        );
    }
    let forward = match &config.ci_forward {
        None => None,
        Some((url, token)) => Some(
            CiForward::new(url, token.clone(), DEFAULT_FORWARD_TIMEOUT)
                .map_err(|why| ConfigError::new("FIXLOOP_CI_FORWARD_URL", why))?,
        ),
    };
    let refine = config
        .minimax
        .as_ref()
        .map(|settings| CiRefine::minimax(settings, http));
    Ok(CiIntakeState {
        store,
        token: config.ci_token.clone(),
        forward,
        heal,
        refine,
    })
}
