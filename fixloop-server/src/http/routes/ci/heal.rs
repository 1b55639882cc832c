//! CI self-heal of one intake: the run's earlier intakes read from the store, the pure decision of
//! `fixloop_core::ci::heal`, and, for a rerun, one request to the CI provider (with a timeout). The decision, what
//! it was made on and the provider's answer are recorded with the intake as `heal` (`context`, `decision`,
//! `report`). Self-heal never edits code: a rerun is the only action.
//!
//! Reruns are counted per (run, class) from the run's recorded intakes, so the count survives a restart; one
//! intake at a time is healed and recorded (a lock), so two failures of one run arriving together cannot both take
//! the last attempt. A provider that fails or times out gives `report.error`, an escalated incident, and the
//! intake is still recorded.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{
    AdapterError, CiProvider, ErrorKind, GitHubActions, GitHubActionsConfig, GitLabCi,
    GitLabCiConfig, RerunRequest, Store,
};
use fixloop_contract::{CiHeal, CiHealDecision, CiIntake, CiJobStatus, IncidentState, JsonObject};
use fixloop_core::ci::heal::{
    CiIncidentState, HealDecision, HealPolicy, JobEnd, PipelineEvent, decide, incident_state,
};
use serde_json::json;
use tokio::sync::{Mutex, MutexGuard};

use super::intake::core_class;
use crate::profile::ci::{CiProfile, CiProviderKind};

/// How much longer than the provider's own timeout a rerun may take before it is abandoned.
const TIMEOUT_MARGIN: Duration = Duration::from_secs(1);

/// The CI self-heal: a provider, the projects it may act on, and the policy.
#[derive(Debug)]
pub struct CiHealer {
    provider: Arc<dyn CiProvider>,
    repositories: BTreeMap<String, String>,
    policy: HealPolicy,
    timeout: Duration,
    lock: Mutex<()>,
}

impl CiHealer {
    /// A healer asking `provider` for reruns of `repositories` (the intake's repository → the provider's project)
    /// under `policy`, each rerun abandoned after `timeout`.
    #[must_use]
    pub fn new(
        provider: Arc<dyn CiProvider>,
        repositories: BTreeMap<String, String>,
        policy: HealPolicy,
        timeout: Duration,
    ) -> Self {
        Self {
            provider,
            repositories,
            policy,
            timeout,
            lock: Mutex::new(()),
        }
    }

    /// The healer of a profile's `[ci]` section, with the real provider it names.
    ///
    /// # Errors
    ///
    /// The provider's refusal of its base URL.
    pub fn from_profile(profile: &CiProfile, http: reqwest::Client) -> Result<Self, AdapterError> {
        let provider: Arc<dyn CiProvider> = match profile.provider {
            CiProviderKind::Github => Arc::new(GitHubActions::new(
                GitHubActionsConfig {
                    base_url: profile.base_url.clone(),
                    token: profile.token.clone(),
                    timeout: profile.timeout,
                },
                http,
            )?),
            CiProviderKind::Gitlab => Arc::new(GitLabCi::new(
                GitLabCiConfig {
                    base_url: profile.base_url.clone(),
                    token: profile.token.clone(),
                    timeout: profile.timeout,
                },
                http,
            )?),
        };
        Ok(Self::new(
            provider,
            profile.repositories.clone(),
            profile.policy.clone(),
            profile.timeout,
        ))
    }

    /// Held from the decision until the intake is recorded.
    pub(super) async fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// Decides about `intake` (its provider job id `job_id`), asks for a rerun when that is the decision, and says
    /// what happened.
    pub(super) async fn heal(
        &self,
        store: &dyn Store,
        intake: &CiIntake,
        job_id: Option<&str>,
    ) -> CiHeal {
        let class = core_class(intake.classification.class);
        let project = self.repositories.get(&intake.repository);
        let mut context = JsonObject::new();
        context.insert("provider".to_owned(), json!(self.provider.provider()));
        context.insert("project".to_owned(), json!(project));
        context.insert("run_id".to_owned(), json!(intake.run_id));
        context.insert("job".to_owned(), json!(intake.job));
        context.insert("job_id".to_owned(), json!(job_id));
        context.insert("class".to_owned(), json!(class.as_str()));
        context.insert(
            "confidence".to_owned(),
            json!(intake.classification.confidence),
        );
        context.insert(
            "eligible".to_owned(),
            json!(
                self.policy
                    .eligible
                    .iter()
                    .map(|class| class.as_str())
                    .collect::<Vec<_>>()
            ),
        );
        let base = |decision, reason: String, state, escalated, attempts, report| CiHeal {
            decision,
            reason,
            incident_status: state,
            escalated,
            attempts,
            max_attempts: self.policy.max_attempts,
            context: context.clone(),
            report,
        };
        let earlier = match store
            .ci_run_intakes(&intake.repository, &intake.run_id)
            .await
        {
            Ok(records) => records
                .iter()
                .filter_map(|record| serde_json::from_str::<CiIntake>(&record.document).ok())
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the CI run's intakes: no rerun");
                return base(
                    CiHealDecision::NotEligible,
                    "the run's earlier intakes could not be read, so its reruns cannot be counted: not rerun"
                        .to_owned(),
                    IncidentState::IncidentActive,
                    true,
                    0,
                    None,
                );
            }
        };
        let mut events: Vec<PipelineEvent> = earlier.iter().map(event_of).collect();
        let attempts_made = u32::try_from(
            earlier
                .iter()
                .filter(|earlier| {
                    earlier
                        .heal
                        .as_ref()
                        .is_some_and(|heal| heal.decision == CiHealDecision::Rerun)
                        && core_class(earlier.classification.class) == class
                })
                .count(),
        )
        .unwrap_or(u32::MAX);
        let end = match intake.job_status {
            CiJobStatus::Failed => JobEnd::Failed,
            CiJobStatus::TimedOut => JobEnd::TimedOut,
            CiJobStatus::Cancelled => JobEnd::Cancelled,
            CiJobStatus::Passed => JobEnd::Passed,
        };
        if end == JobEnd::Passed {
            events.push(PipelineEvent::Passed);
            let state = incident_state(&events);
            let reason = if state == CiIncidentState::Recovered {
                "the job passed after FixLoop's rerun: recovered"
            } else {
                "the job passed without a rerun of FixLoop's"
            };
            return base(
                CiHealDecision::NotNeeded,
                reason.to_owned(),
                wire_state(state),
                false,
                attempts_made,
                None,
            );
        }
        let Some(project) = project else {
            return base(
                CiHealDecision::NotEligible,
                "the repository is not in the profile's [ci.repositories]: not rerun".to_owned(),
                IncidentState::IncidentActive,
                false,
                attempts_made,
                None,
            );
        };
        let decision = decide(
            end,
            class,
            intake.classification.confidence,
            &self.policy,
            attempts_made,
        );
        match decision {
            HealDecision::Rerun { attempt, .. } => {
                let request = RerunRequest {
                    project: project.clone(),
                    run_id: intake.run_id.clone(),
                    job_id: job_id.map(str::to_owned),
                };
                let (report, failed) = self.rerun(&request).await;
                let (state, reason) = if failed {
                    (
                        IncidentState::IncidentActive,
                        format!(
                            "{}; the provider refused or failed: escalated",
                            decision.reason()
                        ),
                    )
                } else {
                    (IncidentState::Validating, decision.reason())
                };
                base(
                    CiHealDecision::Rerun,
                    reason,
                    state,
                    failed,
                    attempt,
                    Some(report),
                )
            }
            HealDecision::NotEligible(_) => base(
                CiHealDecision::NotEligible,
                decision.reason(),
                IncidentState::IncidentActive,
                false,
                attempts_made,
                None,
            ),
            HealDecision::AttemptsExhausted { attempts } => base(
                CiHealDecision::AttemptsExhausted,
                decision.reason(),
                IncidentState::IncidentActive,
                true,
                attempts,
                None,
            ),
        }
    }

    /// Asks for one rerun; the report, and whether it failed.
    async fn rerun(&self, request: &RerunRequest) -> (JsonObject, bool) {
        let mut report = JsonObject::new();
        report.insert("provider".to_owned(), json!(self.provider.provider()));
        let answer = tokio::time::timeout(
            self.timeout + TIMEOUT_MARGIN,
            self.provider.rerun_failed(request),
        )
        .await
        .unwrap_or_else(|_| Err(AdapterError::timeout(self.timeout + TIMEOUT_MARGIN)));
        match answer {
            Ok(receipt) => {
                report.insert("status".to_owned(), json!(receipt.status));
                report.insert("new_job_id".to_owned(), json!(receipt.new_job_id));
                report.insert("web_url".to_owned(), json!(receipt.web_url));
                tracing::info!(
                    provider = self.provider.provider(),
                    status = receipt.status,
                    "CI rerun requested"
                );
                (report, false)
            }
            Err(error) => {
                report.insert("error".to_owned(), json!(error.detail()));
                report.insert("error_kind".to_owned(), json!(kind_name(error.kind())));
                if let ErrorKind::RateLimited {
                    retry_after: Some(after),
                } = error.kind()
                {
                    report.insert("retry_after_secs".to_owned(), json!(after.as_secs()));
                }
                tracing::warn!(provider = self.provider.provider(), error = %error.detail(), "CI rerun failed");
                (report, true)
            }
        }
    }
}

/// What an earlier intake of the run says happened.
pub(super) fn event_of(intake: &CiIntake) -> PipelineEvent {
    if intake.job_status == CiJobStatus::Passed {
        return PipelineEvent::Passed;
    }
    match &intake.heal {
        Some(heal) if heal.decision == CiHealDecision::Rerun && !heal.escalated => {
            PipelineEvent::RerunRequested
        }
        _ => PipelineEvent::FailedNotRerun,
    }
}

/// The incident state in the contract's words.
pub(super) fn wire_state(state: CiIncidentState) -> IncidentState {
    match state {
        CiIncidentState::Open => IncidentState::IncidentActive,
        CiIncidentState::Rerunning => IncidentState::Validating,
        CiIncidentState::Recovered => IncidentState::Recovered,
        CiIncidentState::Passed => IncidentState::Healthy,
    }
}

/// A stable snake_case name of an error kind for the report.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Timeout => "timeout",
        ErrorKind::RateLimited { .. } => "rate_limited",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::NotFound => "not_found",
        ErrorKind::Refused => "refused",
        ErrorKind::Unavailable => "unavailable",
        _ => "invalid_response",
    }
}
