//! The run context every case records into: which cases this run reports, the outcomes recorded so far, the
//! budget and the deadlines derived from it, and the HTTP clients bounded by it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::case::{CaseInfo, CaseResult, Outcome, Phase, Profile};
use crate::client::{Http, Recorder};
use crate::spec::{Spec, truncate};
use crate::target::{Selection, Target};

/// The longest wait for a run to start by itself (the seed does not promise one) before `POST /api/tests/run`.
const AUTO_RUN_WAIT: Duration = Duration::from_secs(8);

/// The part of the budget kept for every case not judged yet: a wait ends early enough to leave the cases after
/// it this much time each (at most a quarter of the budget in all).
const PER_CASE_RESERVE: Duration = Duration::from_millis(500);

/// The part of the budget kept for the flow's clean-up (bug off, incident closed), at most.
pub(super) const CLEANUP_RESERVE: Duration = Duration::from_secs(5);

/// The state of a run: what to report and how to reach the server.
pub(crate) struct Ctx<'a> {
    pub(crate) target: &'a Target,
    pub(crate) spec: &'a Spec,
    pub(super) selection: &'a Selection,
    pub(super) catalog: BTreeMap<String, CaseInfo>,
    /// The case ids in execution order.
    pub(super) order: Vec<String>,
    /// The ids reported by this run: selected and applicable.
    pub(super) wanted: BTreeSet<String>,
    pub(super) results: Vec<CaseResult>,
    pub(super) recorded: BTreeSet<String>,
    pub(super) timings: BTreeMap<String, u64>,
    pub(super) last: Instant,
    /// When the budget for judging ends (the rest is kept for the clean-up).
    pub(super) work_end: Instant,
    /// When the whole budget ends.
    pub(super) end: Instant,
    /// Whether a wait since the last recorded case was cut short by the budget.
    pub(super) cut_short: AtomicBool,
    pub(super) on_case: &'a mut (dyn FnMut(&CaseResult) + Send),
    pub(super) http: Http,
    pub(super) cleanup_http: Http,
}

impl Ctx<'_> {
    /// The HTTP client; no request outlives the budget.
    pub(crate) fn http(&self) -> &Http {
        &self.http
    }

    /// The HTTP client for the flow's clean-up, which may use the part of the budget kept for it.
    pub(crate) fn cleanup_http(&self) -> &Http {
        &self.cleanup_http
    }

    /// The run's profile.
    pub(crate) fn profile(&self) -> Profile {
        self.selection.profile
    }

    /// Whether the case with this id is reported by this run.
    pub(crate) fn wants(&self, id: &str) -> bool {
        self.wanted.contains(id)
    }

    /// Whether some of the budget is left for judging.
    pub(crate) fn budget_left(&self) -> bool {
        Instant::now() < self.work_end
    }

    /// The time left for judging, for a handshake timeout: at most `bound`.
    pub(crate) fn bounded_by_budget(&self, bound: Duration) -> Duration {
        bound.min(self.work_end.saturating_duration_since(Instant::now()))
    }

    /// Why a case was not judged once the budget ran out.
    pub(super) fn budget_reason(&self) -> String {
        format!(
            "the run's budget of {} s ran out before this case could be judged (raise it with --budget)",
            self.target.budget.as_secs()
        )
    }

    /// Records a skip with `reason` for every reported case that has no outcome yet.
    pub(super) fn skip_unrecorded(&mut self, reason: &str) {
        let missing: Vec<String> = self
            .order
            .iter()
            .filter(|id| self.wanted.contains(*id) && !self.recorded.contains(*id))
            .cloned()
            .collect();
        for id in missing {
            self.record(&id, Outcome::skip(reason));
        }
    }

    /// Whether the strict rules apply.
    pub(crate) fn strict(&self) -> bool {
        self.selection.strict
    }

    /// A flow fallback: a skip, or under `--strict` a failure.
    pub(crate) fn fallback(&self, expected: &str, reason: &str) -> Outcome {
        if self.strict() {
            Outcome::fail(expected, format!("{reason} (a failure under --strict)"), "")
        } else {
            Outcome::skip(reason)
        }
    }

    /// The latest end of a wait: the end of the budget for judging, minus [`PER_CASE_RESERVE`] for every case not
    /// judged yet (at most a quarter of the budget), so one long wait cannot use the time of the cases after it.
    fn wait_limit(&self) -> Instant {
        let unjudged = self.wanted.len().saturating_sub(self.recorded.len());
        let reserve = PER_CASE_RESERVE
            .saturating_mul(u32::try_from(unjudged).unwrap_or(u32::MAX))
            .min(self.target.budget / 4);
        self.work_end.checked_sub(reserve).unwrap_or(self.work_end)
    }

    /// The end of a wait of `length` starting now, cut at [`Self::wait_limit`]; a cut is remembered, so the
    /// failure of the case waiting is reported as a skip naming the budget (see [`Self::record`]).
    fn bounded_wait(&self, length: Duration) -> Instant {
        let wanted = Instant::now() + length;
        let limit = self.wait_limit();
        if wanted > limit {
            self.cut_short.store(true, Ordering::Relaxed);
        }
        wanted.min(limit)
    }

    /// The deadline of one flow wait starting now (never after the budget's end).
    pub(crate) fn flow_deadline(&self) -> Instant {
        self.bounded_wait(self.target.flow_timeout)
    }

    /// How long the flow waits for something the seed does not promise (a run starting by itself) before it
    /// uses the contract's own operation instead: the flow timeout, at most [`AUTO_RUN_WAIT`].
    pub(crate) fn auto_run_wait(&self) -> Duration {
        self.target.flow_timeout.min(AUTO_RUN_WAIT)
    }

    /// The deadline of the wait for a run starting by itself ([`Self::auto_run_wait`] from now).
    pub(crate) fn auto_run_deadline(&self) -> Instant {
        self.bounded_wait(self.auto_run_wait())
    }

    /// A short bound for things that must happen promptly: the flow timeout, at most 5 s.
    pub(crate) fn prompt_deadline(&self) -> Instant {
        self.bounded_wait(self.target.flow_timeout.min(Duration::from_secs(5)))
    }

    /// The deadline of a wait for something already due, such as the last messages of a sequence: at most 2 s.
    pub(crate) fn grace_deadline(&self) -> Instant {
        (Instant::now() + self.target.flow_timeout.min(Duration::from_secs(2))).min(self.end)
    }

    /// Records the outcome of case `id` (once; cases this run does not report are dropped). A failure seen
    /// after the budget ran out, or after a wait the budget cut short, is not a judgement of the server, so it is
    /// reported as a skip naming the budget.
    pub(crate) fn record(&mut self, id: &str, outcome: Outcome) {
        let now = Instant::now();
        let elapsed = millis(now - self.last);
        self.last = now;
        if !self.wanted.contains(id) || !self.recorded.insert(id.to_owned()) {
            return;
        }
        let cut_short = self.cut_short.swap(false, Ordering::Relaxed);
        // A failure, or a fallback to the contract's own operation, after a wait the budget cut short says nothing
        // about the server: it might have answered in the time the wait was owed. Either is a skip naming the budget.
        let judged_on_a_cut_wait = outcome.is_fail() || matches!(outcome, Outcome::Skip { .. });
        let outcome = if judged_on_a_cut_wait && (cut_short || !self.budget_left()) {
            Outcome::skip(format!(
                "{}; what was seen: {}",
                self.budget_reason(),
                truncate(&outcome.short_reason(), 300)
            ))
        } else {
            outcome
        };
        let (description, clause, profile) = self.catalog.get(id).map_or_else(
            || {
                (
                    "(a case missing from the catalog)".to_owned(),
                    String::new(),
                    Profile::Fixloop,
                )
            },
            |info| (info.description.clone(), info.clause.clone(), info.profile),
        );
        let result = CaseResult {
            id: id.to_owned(),
            description,
            clause,
            profile,
            outcome,
        };
        (self.on_case)(&result);
        self.timings.insert(id.to_owned(), elapsed);
        self.results.push(result);
    }
}

/// A catalog entry of the given profile.
pub(crate) fn info(
    profile: Profile,
    id: &str,
    description: &str,
    clause: &str,
    phase: Phase,
) -> CaseInfo {
    CaseInfo {
        id: id.to_owned(),
        description: description.to_owned(),
        clause: clause.to_owned(),
        profile,
        needs_webhook_secret: false,
        phase,
    }
}

/// The main recorder, or the reason it is missing.
pub(crate) type MainRecorder = Result<Recorder, String>;

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
