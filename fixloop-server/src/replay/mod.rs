//! `fixloop replay`: feeds a service's journal through a restored engine offline and explains every decision.
//!
//! The journal (the [`Store`]) holds the fresh engine's first snapshot and every input and timer call the driver
//! made, in order. A replay restores the first snapshot with the configuration the server ran with and calls
//! `handle_input(at, input)` / `handle_timeout(at)` exactly as the driver did, draining the effects after each call.
//! The engine is deterministic, so the effects are the ones the live server produced: the replay reads them as
//! decisions (a status change, an incident opened, a plan rejected with its violations, a run finished with its
//! failing tests, RECOVERED with the gates that held) and, after every call while an incident is open, the
//! engine's [`recovery_blocker`](fixloop_core::engine::Engine::recovery_blocker) when it changed: the answer to
//! "why was it not RECOVERED yet". Nothing is carried out: no port is called, no client is told.
//!
//! The configuration matters (thresholds, the policy's allowed URLs): the replay checks itself against the latest
//! snapshot the server saved, and reports a divergence when the replayed state differs from the recorded one.

mod observer;
mod render;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use fixloop_adapters::store::FILE_NAME;
use fixloop_adapters::{SqliteStore, Store, StoreError};
use fixloop_contract::{IncidentState, RunStatus, TestStatus, WsEnvelope};
use fixloop_core::engine::{Config as EngineConfig, Engine};
use serde::Serialize;

use self::observer::{Observer, check_snapshot};

/// Entries read from the store per query (a long journal is read in pages, never all at once by SQLite).
const PAGE: usize = 10_000;

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The data directory holds no journal file.
    #[error("there is no journal at {0} (is --data the directory FixLoop ran with?)")]
    NoStore(PathBuf),
    /// A running FixLoop holds the store.
    #[error(
        "the journal at {0} is in use by a running FixLoop: stop it (or replay a copy of the directory), a replay reads the journal offline"
    )]
    Locked(PathBuf),
    /// The store has nothing for the service.
    #[error("the journal holds nothing for service {0:?}")]
    NoJournal(String),
    /// The journal does not record the configuration it ran with, and none was given.
    #[error(
        "the journal of {0:?} does not record the configuration it ran with (an older FixLoop wrote it): give the \
         profile and the mode it ran with (--profile, --mode, --demo-url)"
    )]
    NoConfiguration(String),
    /// The first snapshot cannot be restored with this configuration.
    #[error("cannot restore the first snapshot of {service:?}: {why}")]
    Restore {
        /// The service.
        service: String,
        /// Why.
        why: String,
    },
    /// The store failed.
    #[error("reading the journal")]
    Store(#[source] StoreError),
}

/// One decision of the engine, read from its effects (or its recovery blocker) after one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// The published status moved.
    Status {
        /// The status before.
        from: IncidentState,
        /// The status after.
        to: IncidentState,
        /// The incident it is about, if any.
        incident_id: Option<String>,
    },
    /// The signal source became blind, or sees again (`reason` is `None`).
    SignalsDegraded {
        /// Why the signals are degraded, or `None` when they are no longer.
        reason: Option<String>,
    },
    /// An incident opened.
    IncidentOpened {
        /// Its id.
        incident_id: String,
        /// Its title (why it opened).
        title: String,
    },
    /// The previous plan failed validation (the re-request carries its violations).
    PlanRejected {
        /// How many violations.
        violations: usize,
        /// The first one.
        first: String,
    },
    /// A plan was requested from a planner.
    PlanRequested {
        /// 1 for the first attempt.
        attempt: u32,
        /// `configured` or `rules` (the fallback).
        planner: String,
    },
    /// A plan passed validation.
    PlanValidated {
        /// The incident.
        incident_id: String,
        /// The plan.
        plan_id: String,
        /// How many tests it has.
        tests: usize,
    },
    /// A validation run started.
    RunStarted {
        /// The run.
        run_id: String,
        /// How many tests it runs.
        tests: usize,
    },
    /// A validation run ended.
    RunFinished {
        /// The run.
        run_id: String,
        /// COMPLETED or FAILED.
        status: RunStatus,
        /// The tests that did not pass, each with its details.
        failing: Vec<FailingTest>,
    },
    /// Why the open incident is not RECOVERED yet changed.
    NotRecoveredYet {
        /// The incident.
        incident_id: String,
        /// The engine's reason, in one line.
        blocker: String,
    },
    /// RECOVERED was declared.
    Recovered {
        /// The incident.
        incident_id: String,
        /// The run whose verdict held.
        run_id: Option<String>,
        /// The gates that held, and the one this call closed.
        reason: String,
    },
    /// The server (re)started the engine with this configuration (at start, after a restart, after a reload that
    /// changed the service); the replay goes on with it.
    Configured {
        /// Where it came from, in the server's words (`profile sha256:…`, `the built-in demo profile`).
        origin: Option<String>,
        /// What differs from the configuration before, one setting per line (`trigger_error_rate: 0.05 -> 0.1`);
        /// empty when nothing does.
        changes: Vec<String>,
    },
    /// The incident closed (the status went back to HEALTHY).
    IncidentClosed {
        /// The incident.
        incident_id: String,
    },
}

/// A test of a finished run that did not pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailingTest {
    /// The plan item's test id.
    pub test_id: String,
    /// Its status.
    pub status: TestStatus,
    /// The evaluator's explanation.
    pub details: Option<String>,
}

/// One journaled call, replayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The entry's position in the journal.
    pub seq: u64,
    /// The `now` of the call.
    pub at: DateTime<Utc>,
    /// The input, in short (`timer` for a `handle_timeout` call).
    pub input: String,
    /// What the engine decided.
    pub decisions: Vec<Decision>,
    /// The open incident before the call.
    pub incident_before: Option<String>,
    /// The open incident after the call.
    pub incident_after: Option<String>,
}

/// A whole replay of one service's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The service.
    pub service: String,
    /// Every call, in order.
    pub steps: Vec<Step>,
    /// Every envelope the engine published during the replay, in order (what WebSocket clients were sent).
    pub published: Vec<WsEnvelope>,
    /// Where the replay does not match the journal (a gap, a state that differs from a saved snapshot): empty when
    /// the replay is exact.
    pub warnings: Vec<String>,
    /// Whether the configuration came from the journal (else from the caller's fallback).
    pub config_from_journal: bool,
}

/// Opens the journal in `data_dir` for a replay, read-only: nothing in the directory is written, so a journal on a
/// read-only filesystem, or a file without write permission, is replayed as it is (see
/// [`SqliteStore::open_read_only`]).
///
/// # Errors
///
/// [`ReplayError::NoStore`] when the directory holds no journal, [`ReplayError::Locked`] when a running FixLoop
/// holds it, [`ReplayError::Store`] otherwise.
pub fn open_store(data_dir: &Path) -> Result<SqliteStore, ReplayError> {
    let file = data_dir.join(FILE_NAME);
    if !file.is_file() {
        return Err(ReplayError::NoStore(file));
    }
    SqliteStore::open_read_only(data_dir).map_err(|error| match error {
        StoreError::Locked { .. } => ReplayError::Locked(file),
        other => ReplayError::Store(other),
    })
}

/// Replays the whole journal of `service` in `store`, from its first snapshot, with the configuration the journal
/// records (the first snapshot's, then each [`Decision::Configured`] where the server started the engine again);
/// `fallback` is used only for a journal that records none (an older FixLoop wrote it).
///
/// # Errors
///
/// [`ReplayError::NoJournal`] when the store has nothing for the service, [`ReplayError::NoConfiguration`] when
/// neither the journal nor `fallback` gives a configuration, [`ReplayError::Restore`] when the first snapshot does
/// not fit it, [`ReplayError::Store`] when the store fails.
pub async fn replay(
    store: &dyn Store,
    service: &str,
    fallback: Option<EngineConfig>,
) -> Result<Replay, ReplayError> {
    let service = service.to_owned();
    let latest = store
        .load(&service)
        .await
        .map_err(ReplayError::Store)?
        .snapshot;
    let (first, mut page) = store
        .history(&service, 0, PAGE)
        .await
        .map_err(ReplayError::Store)?;
    let Some((first_seq, first)) = first else {
        return Err(ReplayError::NoJournal(service));
    };
    let recorded = first.config();
    let config_from_journal = recorded.is_some();
    let Some(config) = recorded.or(fallback) else {
        return Err(ReplayError::NoConfiguration(service));
    };
    let mut engine = Engine::restore(config, first).map_err(|error| ReplayError::Restore {
        service: service.clone(),
        why: error.to_string(),
    })?;
    let mut observer = Observer::new(&engine);
    let mut replay = Replay {
        service: service.clone(),
        steps: Vec::new(),
        published: Vec::new(),
        warnings: Vec::new(),
        config_from_journal,
    };
    // Compaction may have dropped the entries before the first snapshot it kept: the replay starts there.
    let mut last_seq = first_seq;
    check_snapshot(&engine, latest.as_ref(), last_seq, &mut replay.warnings);
    loop {
        let full = page.len() == PAGE;
        for entry in page {
            if entry.seq != last_seq + 1 {
                replay.warnings.push(format!(
                    "entries {} to {} are missing (the journal was broken): the replay after them is not exact",
                    last_seq + 1,
                    entry.seq - 1
                ));
            }
            last_seq = entry.seq;
            let step = observer.step(
                &mut engine,
                entry,
                &mut replay.published,
                &mut replay.warnings,
            );
            replay.steps.push(step);
            check_snapshot(&engine, latest.as_ref(), last_seq, &mut replay.warnings);
        }
        if !full {
            break;
        }
        page = store
            .history(&service, last_seq, PAGE)
            .await
            .map_err(ReplayError::Store)?
            .1;
    }
    Ok(replay)
}
