//! The copilot's live, read-only look-ups ([`CopilotLookup`]) for one watched service: the status and recovery
//! blocker, a fresh signal reading, the incident's recent runs and their details, its timeline, and what the
//! configured [`fixloop_adapters::ContextSource`] knows. They go through the driver's queries ([`ServiceHandle`]) and the service's
//! ports, never through the engine directly, and each is bounded by a timeout.
//!
//! What they return holds text from the monitored service (error signatures, test details, log lines): the
//! copilot fences it as untrusted data and bounds its size before a model sees it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use fixloop_adapters::{AdapterError, ContextQuery, CopilotLookup, ErrorKind, Lookup};
use fixloop_contract::{TestRun, TestStatus};
use fixloop_core::{IncidentId, RunId};
use serde_json::{Value, json};

use crate::http::error::MAX_ID_CHARS;
use crate::runtime::ServiceHandle;
pub use crate::runtime::services::CopilotSources;

/// The default timeout of one look-up.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// The signal window a look-up reads (the contract's `_5m` figures).
pub const LOOKUP_WINDOW: Duration = Duration::from_secs(300);
/// Most runs `get_recent_runs` lists.
pub const MAX_RECENT_RUNS: usize = 5;
/// Most timeline entries `get_timeline` lists (the newest).
pub const MAX_TIMELINE_ENTRIES: usize = 60;
/// Most context notes `get_context` lists.
pub const MAX_CONTEXT_NOTES: usize = 20;

/// The look-ups of one question about one service's incident.
#[derive(Debug, Clone)]
pub struct ServiceLookup {
    driver: ServiceHandle,
    sources: CopilotSources,
    service: String,
    incident_id: Option<String>,
    timeout: Duration,
}

impl ServiceLookup {
    /// Look-ups through `driver` and `sources` about `incident_id` (the open incident when `None`) of `service`,
    /// each bounded by [`DEFAULT_LOOKUP_TIMEOUT`].
    #[must_use]
    pub fn new(
        driver: ServiceHandle,
        sources: CopilotSources,
        service: impl Into<String>,
        incident_id: Option<String>,
    ) -> Self {
        Self {
            driver,
            sources,
            service: service.into(),
            incident_id,
            timeout: DEFAULT_LOOKUP_TIMEOUT,
        }
    }

    /// Sets the timeout of one look-up.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn status(&self) -> Result<Value, AdapterError> {
        let state = self
            .driver
            .copilot_state(self.incident_id.clone().map(IncidentId::new))
            .await
            .map_err(driver_error)?;
        Ok(json!({
            "status": state.status,
            "incident_id": state.incident.as_ref().map(|incident| &incident.incident_id),
            "recovery_blocker": state.recovery_blocker,
            "latest_run": state.run.as_ref().map(run_summary),
        }))
    }

    async fn signals(&self) -> Result<Value, AdapterError> {
        let Some(signals) = &self.sources.signals else {
            let status = self.driver.status().await.map_err(driver_error)?;
            return Ok(json!({
                "source": "the engine's latest reading (no live signal source for the copilot)",
                "error_rate_percent": status.error_rate_5m,
                "p95_latency_ms": status.p95_latency_ms_5m,
                "at": status.updated_at,
            }));
        };
        let reading = signals.read(LOOKUP_WINDOW).await?;
        Ok(json!({
            "source": "a fresh read of the signal source",
            "window_seconds": LOOKUP_WINDOW.as_secs(),
            "error_rate_percent": reading.error_rate.map(|ratio| ratio * 100.0),
            "p95_latency_ms": reading.p95_latency_ms,
            "requests": reading.requests,
            "top_error": reading.top_error,
            "evidence_links": reading.evidence_links,
        }))
    }

    /// The incident the question is about: the given one, else the open one.
    async fn incident_id(&self) -> Result<Option<String>, AdapterError> {
        if let Some(id) = &self.incident_id {
            return Ok(Some(id.clone()));
        }
        let incident = self.driver.current_incident().await.map_err(driver_error)?;
        Ok(incident.map(|card| card.incident_id))
    }

    async fn recent_runs(&self) -> Result<Value, AdapterError> {
        let Some(incident_id) = self.incident_id().await? else {
            return Ok(json!({"runs": [], "note": "no incident is open"}));
        };
        let Some(detail) = self
            .driver
            .incident_history(IncidentId::new(incident_id.as_str()))
            .await
            .map_err(driver_error)?
        else {
            return Ok(json!({"runs": [], "note": format!("no history for {incident_id}")}));
        };
        let mut run_ids: Vec<String> = Vec::new();
        for entry in detail.timeline.iter().rev() {
            if let Some(run_id) = &entry.run_id
                && !run_ids.contains(run_id)
            {
                run_ids.push(run_id.clone());
            }
        }
        let mut runs = Vec::new();
        for run_id in run_ids.into_iter().take(MAX_RECENT_RUNS) {
            match self
                .driver
                .run(RunId::new(run_id.as_str()))
                .await
                .map_err(driver_error)?
            {
                Some(run) => runs.push(run_summary(&run)),
                None => runs.push(json!({"run_id": run_id, "note": "no longer kept"})),
            }
        }
        Ok(json!({"incident_id": incident_id, "runs": runs}))
    }

    async fn run(&self, run_id: &str) -> Result<Value, AdapterError> {
        if run_id.is_empty() || run_id.chars().count() > MAX_ID_CHARS {
            return Ok(json!({"error": "a run id has 1 to 128 characters"}));
        }
        let incident_id = self.incident_id().await?;
        let run = self
            .driver
            .run(RunId::new(run_id))
            .await
            .map_err(driver_error)?
            // Only the runs of the incident asked about.
            .filter(|run| incident_id.as_ref().is_none_or(|id| &run.incident_id == id));
        Ok(match run {
            Some(run) => json!({"run": run}),
            None => json!({"error": "no run with this id for this incident"}),
        })
    }

    async fn timeline(&self) -> Result<Value, AdapterError> {
        let Some(incident_id) = self.incident_id().await? else {
            return Ok(json!({"timeline": [], "note": "no incident is open"}));
        };
        let detail = self
            .driver
            .incident_history(IncidentId::new(incident_id.as_str()))
            .await
            .map_err(driver_error)?;
        Ok(match detail {
            None => json!({"timeline": [], "note": format!("no history for {incident_id}")}),
            Some(detail) => {
                let skip = detail.timeline.len().saturating_sub(MAX_TIMELINE_ENTRIES);
                json!({
                    "incident_id": incident_id,
                    "status": detail.status,
                    "resolution": detail.resolution,
                    "incident_end": detail.incident_end,
                    "figures": detail.figures,
                    "timeline": &detail.timeline[skip..],
                })
            }
        })
    }

    async fn context(&self) -> Result<Value, AdapterError> {
        let Some(context) = &self.sources.context else {
            return Ok(
                json!({"note": "no context source (logs, metrics, monitors) is configured"}),
            );
        };
        let query = ContextQuery {
            service: self.service.clone(),
            incident_id: self.incident_id().await?,
            window: LOOKUP_WINDOW,
        };
        let findings = context.gather(&query).await?;
        Ok(json!({
            "top_error": findings.top_error,
            "evidence_links": findings.evidence_links,
            "notes": findings.notes.iter().take(MAX_CONTEXT_NOTES).collect::<Vec<_>>(),
        }))
    }
}

// Written out as `#[async_trait]` would expand it, so the server needs no `async-trait` dependency (STYLE.md §1).
impl CopilotLookup for ServiceLookup {
    fn look_up<'this, 'lookup, 'future>(
        &'this self,
        lookup: &'lookup Lookup,
    ) -> LookupFuture<'future>
    where
        'this: 'future,
        'lookup: 'future,
    {
        Box::pin(self.bounded(lookup))
    }
}

/// The boxed future of [`CopilotLookup::look_up`].
type LookupFuture<'future> =
    Pin<Box<dyn Future<Output = Result<Value, AdapterError>> + Send + 'future>>;

impl ServiceLookup {
    /// `lookup`, bounded by the timeout.
    async fn bounded(&self, lookup: &Lookup) -> Result<Value, AdapterError> {
        let work = async {
            match lookup {
                Lookup::Status => self.status().await,
                Lookup::Signals => self.signals().await,
                Lookup::RecentRuns => self.recent_runs().await,
                Lookup::Run { run_id } => self.run(run_id).await,
                Lookup::Timeline => self.timeline().await,
                Lookup::Context => self.context().await,
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(AdapterError::new(
                    ErrorKind::Timeout,
                    format!("{} took longer than {:?}", lookup.tool_name(), self.timeout),
                ))
            })
    }
}

/// A run in a few fields: id, status, start, and how many tests are in each state.
fn run_summary(run: &TestRun) -> Value {
    let count = |wanted: TestStatus| {
        run.tests
            .iter()
            .filter(|test| test.status == wanted)
            .count()
    };
    json!({
        "run_id": run.run_id,
        "status": run.status,
        "started_at": run.started_at,
        "passed": count(TestStatus::Pass),
        "failed": count(TestStatus::Fail),
        "running": count(TestStatus::Running),
        "pending": count(TestStatus::Pending),
    })
}

fn driver_error(error: crate::runtime::Error) -> AdapterError {
    AdapterError::unavailable(format!("the driver did not answer: {error}"))
}
