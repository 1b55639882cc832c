//! Contract of [`Copilot`]: it never says it is safe unless the status is RECOVERED, it cites only URLs present
//! in the state, and it always answers something.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use fixloop_adapters::copilot_safety::{Author, guard};
use fixloop_adapters::{
    AdapterError, Copilot, CopilotLookup, CopilotReply, CopilotState, NoLookup,
};
use fixloop_contract::{
    DatadogSummary, IncidentCard, IncidentState, Link, RunStatus, Signal, SystemStatus, TestResult,
    TestRun, TestStatus,
};
use fixloop_core::{PlanId, rule_plan};

use super::{bounded, fixed_now, plan_request};

/// Base URL of the service in the fixtures.
pub(crate) const BASE_URL: &str = "http://127.0.0.1:8080";
/// The run URL of the fixtures.
pub(crate) const RUN_URL: &str = "http://127.0.0.1:3000/api/tests/runs/run-0001";
/// The evidence link of the fixtures.
pub(crate) const EVIDENCE_URL: &str = "http://127.0.0.1:8080/metrics";

/// Safety questions, asked in every state.
pub(crate) const SAFETY_QUESTIONS: [&str; 3] = [
    "Is it safe to resume traffic?",
    "Have we recovered?",
    "Can we close the incident and move on, is it fixed?",
];
/// Every kind of question.
pub(crate) const QUESTIONS: [&str; 5] = [
    "Is it safe to resume traffic?",
    "What caused this incident?",
    "What's the status?",
    "Summarize please",
    "Tell me about the weather in Lisbon",
];

/// A copilot's answers as the server serves them: through the safety rule ([`guard`]), which the server applies
/// once to every copilot's answer (a model's with [`Author::Model`], others with [`Author::Server`]).
#[derive(Debug)]
pub(crate) struct AsServed<C>(pub(crate) C);

/// `.served()`: a copilot wrapped in [`AsServed`].
pub(crate) trait Served: Sized {
    fn served(self) -> AsServed<Self>;
}

impl<C: Copilot> Served for C {
    fn served(self) -> AsServed<Self> {
        AsServed(self)
    }
}

#[async_trait]
impl<C: Copilot> Copilot for AsServed<C> {
    fn answers_with_model(&self) -> bool {
        self.0.answers_with_model()
    }

    async fn answer(
        &self,
        question: &str,
        state: &CopilotState,
        lookup: &dyn CopilotLookup,
    ) -> Result<CopilotReply, AdapterError> {
        let author = if self.0.answers_with_model() {
            Author::Model
        } else {
            Author::Server
        };
        let reply = self.0.answer(question, state, lookup).await?;
        Ok(guard(question, reply, author, state).reply)
    }
}

/// Puts a copilot (or the LLM stub behind it) into a situation.
#[async_trait]
pub(crate) trait CopilotScenario: Send + Sync {
    /// Arranges for the next `answer` to `question` in `state`; an LLM stub may answer adversarially here
    /// (claiming safety, citing made-up URLs) to prove the adapter filters.
    async fn arrange(&self, question: &str, state: &CopilotState);
}

/// A scenario with nothing to arrange (embedded and fake copilots).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NothingToArrange;

#[async_trait]
impl CopilotScenario for NothingToArrange {
    async fn arrange(&self, _question: &str, _state: &CopilotState) {}
}

/// Runs every case on `copilot` with `scenario`.
pub(crate) async fn check_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Copilot>, Box<dyn CopilotScenario>)>,
{
    let (copilot, scenario) = make().await;
    never_claims_safety_unless_recovered(copilot, scenario.as_ref()).await;
    let (copilot, scenario) = make().await;
    citations_only_come_from_the_state(copilot, scenario.as_ref()).await;
}

/// Whether an answer claims it is safe / recovered: the crate's own detector, or a leading "yes".
pub(crate) fn claims_safety(answer: &str) -> bool {
    answer.trim_start().to_lowercase().starts_with("yes")
        || fixloop_adapters::copilot_safety::claims_safety(answer)
}

/// Not recovered: no answer to a safety question claims safety.
pub(crate) async fn never_claims_safety_unless_recovered(
    copilot: Arc<dyn Copilot>,
    scenario: &dyn CopilotScenario,
) {
    for (name, state) in states() {
        if state.status.status == IncidentState::Recovered {
            continue;
        }
        for question in SAFETY_QUESTIONS {
            scenario.arrange(question, &state).await;
            let reply = bounded("answer", copilot.answer(question, &state, &NoLookup))
                .await
                .unwrap_or_else(|error| panic!("{name}: {}", error.detail()));
            assert!(
                !claims_safety(&reply.answer),
                "{name}: {question:?} was answered {:?}",
                reply.answer
            );
            assert!(!reply.answer.trim().is_empty(), "{name}: empty answer");
        }
    }
}

/// Every citation's URL is one of the state's evidence links or its run URL.
pub(crate) async fn citations_only_come_from_the_state(
    copilot: Arc<dyn Copilot>,
    scenario: &dyn CopilotScenario,
) {
    for (name, state) in states() {
        let mut known: Vec<&str> = state
            .incident
            .iter()
            .flat_map(|incident| &incident.datadog_summary.evidence_links)
            .map(|link| link.url.as_str())
            .collect();
        known.extend(state.run_url.as_deref());
        for question in QUESTIONS {
            scenario.arrange(question, &state).await;
            let reply = bounded("answer", copilot.answer(question, &state, &NoLookup))
                .await
                .unwrap_or_else(|error| panic!("{name}: {}", error.detail()));
            assert!(!reply.answer.trim().is_empty(), "{name}: empty answer");
            for citation in &reply.citations {
                assert!(
                    known.contains(&citation.url.as_str()),
                    "{name}: {question:?} cited {citation:?}, not in the state"
                );
            }
        }
    }
}

/// The fixture states, named: healthy without incident, incident without run, a failing run, a running run, a
/// passing run blocked by the signals, and recovered.
pub(crate) fn states() -> Vec<(&'static str, CopilotState)> {
    let incident = incident();
    let passed = |test_id: &str| {
        (
            test_id.to_owned(),
            TestStatus::Pass,
            Some("status 200".to_owned()),
        )
    };
    let all_passed: Vec<_> = incident
        .plan
        .items
        .iter()
        .map(|item| passed(&item.test_id))
        .collect();
    let mut failing = all_passed.clone();
    failing[0] = (
        "t1-checkout-valid".to_owned(),
        TestStatus::Fail,
        Some("status is 500, expected 200".to_owned()),
    );
    let mut running = all_passed.clone();
    running[3].1 = TestStatus::Running;
    running[3].2 = None;
    running[4].1 = TestStatus::Pending;
    running[4].2 = None;
    vec![
        ("healthy", state(IncidentState::Healthy, None, None, None)),
        (
            "incident_without_run",
            state(
                IncidentState::IncidentActive,
                Some(incident.clone()),
                None,
                None,
            ),
        ),
        (
            "failing_run",
            state(
                IncidentState::Validating,
                Some(incident.clone()),
                Some(run(&incident, RunStatus::Completed, &failing)),
                Some("1 of 5 tests failed"),
            ),
        ),
        (
            "running_run",
            state(
                IncidentState::Validating,
                Some(incident.clone()),
                Some(run(&incident, RunStatus::Running, &running)),
                None,
            ),
        ),
        (
            "passed_but_signals_high",
            state(
                IncidentState::Validating,
                Some(incident.clone()),
                Some(run(&incident, RunStatus::Completed, &all_passed)),
                Some("the error rate is still 12.0%, above the 1.0% recovery threshold"),
            ),
        ),
        (
            "recovered",
            state(
                IncidentState::Recovered,
                Some(incident.clone()),
                Some(run(&incident, RunStatus::Completed, &all_passed)),
                None,
            ),
        ),
    ]
}

/// The incident of the fixtures: a checkout failure with the rule plan.
pub(crate) fn incident() -> IncidentCard {
    let request = plan_request(BASE_URL);
    IncidentCard {
        incident_id: "inc-0001".to_owned(),
        title: "Checkout error rate above 5%".to_owned(),
        detected_at: fixed_now(),
        datadog_summary: DatadogSummary {
            monitor_id: None,
            service: "demo-checkout".to_owned(),
            signal: Signal {
                error_rate_5m: 35.0,
                p95_latency_ms_5m: 1800.0,
                top_error: Some("POST /checkout -> 500 payment provider timeout".to_owned()),
            },
            evidence_links: vec![Link {
                label: "Scraped metrics".to_owned(),
                url: EVIDENCE_URL.to_owned(),
            }],
        },
        plan: rule_plan(&request.context, PlanId::new("plan-0001"), fixed_now()),
    }
}

fn run(
    incident: &IncidentCard,
    status: RunStatus,
    tests: &[(String, TestStatus, Option<String>)],
) -> TestRun {
    TestRun {
        run_id: "run-0001".to_owned(),
        incident_id: incident.incident_id.clone(),
        started_at: fixed_now(),
        status,
        tests: tests
            .iter()
            .map(|(test_id, status, details)| TestResult {
                test_id: test_id.clone(),
                name: incident
                    .plan
                    .items
                    .iter()
                    .find(|item| &item.test_id == test_id)
                    .map_or_else(|| test_id.clone(), |item| item.name.clone()),
                status: *status,
                last_update_at: fixed_now(),
                details: details.clone(),
            })
            .collect(),
    }
}

fn state(
    status: IncidentState,
    incident: Option<IncidentCard>,
    run: Option<TestRun>,
    recovery_blocker: Option<&str>,
) -> CopilotState {
    let (error_rate, p95) = match status {
        IncidentState::Healthy | IncidentState::Recovered => (0.2, 110.0),
        IncidentState::IncidentActive | IncidentState::Validating => (12.0, 900.0),
    };
    CopilotState {
        status: SystemStatus {
            status,
            error_rate_5m: error_rate,
            p95_latency_ms_5m: p95,
            active_incident_id: incident
                .as_ref()
                .map(|incident| incident.incident_id.clone()),
            updated_at: fixed_now(),
            service: None,
            signals_degraded: None,
        },
        run_url: run.as_ref().map(|_| RUN_URL.to_owned()),
        incident,
        run,
        recovery_blocker: recovery_blocker.map(str::to_owned),
    }
}
