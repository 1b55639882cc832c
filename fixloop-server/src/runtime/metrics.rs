//! The orchestrator's own Prometheus metrics (`GET /metrics`): incidents opened, runs started and finished by
//! status, run durations, the closed incidents' times to detect, to first run and to recover (the engine's figures,
//! observed at each close), signal reads, journal appends, WebSocket clients, and copilot answers by who wrote them.
//! Counters are atomics. The driver updates them from the engine's facts (the events it publishes, the runs the
//! engine asked for and their recorded outcome), so the metrics and the WebSocket stream cannot disagree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use fixloop_contract::{AnsweredBy, IncidentFigures};

mod remediation;

/// Upper bounds of the run duration histogram, in seconds (`+Inf` is implicit).
pub const RUN_DURATION_BUCKETS: [f64; 8] = [0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Upper bounds of the incident time histograms (detect, first run, recover), in seconds (`+Inf` is implicit).
pub const INCIDENT_TIME_BUCKETS: [f64; 10] = [
    1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// The orchestrator's metrics.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    incidents_opened: AtomicU64,
    runs_started: AtomicU64,
    runs_completed: AtomicU64,
    runs_failed: AtomicU64,
    signal_reads_ok: AtomicU64,
    signal_reads_failed: AtomicU64,
    journal_appends_ok: AtomicU64,
    journal_appends_failed: AtomicU64,
    websocket_clients: AtomicU64,
    websocket_clients_dropped: AtomicU64,
    /// Events the replica's feed read from the shared event log and delivered (replicas only).
    events_fed: AtomicU64,
    /// Milliseconds from the latest fed event's `ts` to its delivery here.
    event_feed_lag_ms: AtomicU64,
    copilot_model: AtomicU64,
    copilot_grounded: AtomicU64,
    copilot_fallback: AtomicU64,
    run_duration: Mutex<DurationHistogram>,
    /// Closed incidents' times (detect, first run, recover), from the engine's figures.
    incident_times: Mutex<IncidentTimes>,
    /// Per watched service: whether its signals are degraded (the source is blind; the reason is in the log and
    /// in `SystemStatus.signals_degraded`).
    signals_degraded: Mutex<BTreeMap<String, bool>>,
    /// Incidents that came to need a human (the recovery gate stayed inconclusive).
    incidents_needing_human: AtomicU64,
    /// Per watched service: whether its open incident needs a human now.
    needs_human: Mutex<BTreeMap<String, bool>>,
    /// Per watched service: why its journal is failing (appends are lost until a snapshot heals it), or `None`.
    journal_failing: Mutex<BTreeMap<String, Option<String>>>,
    /// The store, for its size and rows (as its latest compaction measured them).
    store: Mutex<Option<std::sync::Arc<dyn fixloop_adapters::Store>>>,
    /// This replica's leases (`None`: a single process, which leads every service without sharing).
    leadership: Mutex<Option<Leadership>>,
    lease_acquired: AtomicU64,
    lease_renewals: AtomicU64,
    lease_lost: AtomicU64,
    journal_fenced: AtomicU64,
    /// Alerts about FixLoop itself that the webhooks ignored (self-protection).
    self_alerts_ignored: AtomicU64,
    /// The engines' remediation figures and kill switch.
    remediation: remediation::RemediationFigures,
}

/// Which services this replica leads, for `GET /healthz` (replicas sharing one database only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    /// This replica's id (`FIXLOOP_REPLICA_ID` or a generated one).
    pub replica: String,
    /// The services it leads, with the epoch of each lease.
    pub leads: BTreeMap<String, u64>,
}

/// The journal's health, for `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalHealth {
    /// Each failing service's reason, one per service, joined.
    pub failing: Option<String>,
    /// Inputs not journaled since the start (each failed or skipped append counts once).
    pub lost_appends: u64,
}

#[derive(Debug, Default)]
struct DurationHistogram {
    buckets: [u64; RUN_DURATION_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct IncidentTimes {
    detect: TimeHistogram,
    first_run: TimeHistogram,
    recover: TimeHistogram,
}

#[derive(Debug, Default)]
struct TimeHistogram {
    buckets: [u64; INCIDENT_TIME_BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl TimeHistogram {
    fn observe(&mut self, seconds: Option<f64>) {
        let Some(seconds) = seconds.filter(|seconds| seconds.is_finite()) else {
            return;
        };
        let seconds = seconds.max(0.0);
        if let Some(index) = INCIDENT_TIME_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
        {
            self.buckets[index] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        family(out, name, "histogram", help);
        let mut cumulative = 0;
        for (bound, count) in INCIDENT_TIME_BUCKETS.iter().zip(self.buckets) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            self.count, self.sum, self.count
        );
    }
}

impl ServerMetrics {
    /// Observes a closed incident's figures: each time it has (an incident without a run has no time to first run,
    /// one not opened by polling no time to detect) goes into its histogram.
    pub fn incident_closed(&self, figures: &IncidentFigures) {
        let mut times = self
            .incident_times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        times.detect.observe(figures.time_to_detect_seconds);
        times.first_run.observe(figures.time_to_first_run_seconds);
        times.recover.observe(figures.time_to_recover_seconds);
    }

    /// Records whether `service`'s signals are degraded (from the status the engine published).
    pub fn signals_degraded(&self, service: &str, degraded: bool) {
        let mut services = self
            .signals_degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if services.get(service) != Some(&degraded) {
            services.insert(service.to_owned(), degraded);
        }
    }

    /// Records whether `service`'s signals are degraded when it starts to be watched, unless a published status
    /// already said so: the gauge reads 0 from the start, not only after the first published status.
    pub fn signals_degraded_at_start(&self, service: &str, degraded: bool) {
        self.signals_degraded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(service.to_owned())
            .or_insert(degraded);
    }

    /// Records whether `service`'s open incident needs a human (from the engine); a change to `true` counts one more
    /// incident in `fixloop_incidents_needing_human_total`.
    pub fn needs_human(&self, service: &str, needs: bool) {
        let mut services = self
            .needs_human
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = services.insert(service.to_owned(), needs);
        if needs && before != Some(true) {
            self.incidents_needing_human.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The remediation figures and kill switch of `service`'s engine, as the driver read them after a call.
    pub fn remediation(
        &self,
        service: &str,
        stats: &[fixloop_core::engine::ActionStats],
        kill_switch: bool,
    ) {
        self.remediation.observe(service, stats, kill_switch);
    }

    /// Counts an opened incident.
    pub fn incident_opened(&self) {
        self.incidents_opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a started run.
    pub fn run_started(&self) {
        self.runs_started.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finished run and observes its duration.
    pub fn run_finished(&self, completed: bool, seconds: f64) {
        if completed {
            self.runs_completed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.runs_failed.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = seconds.max(0.0);
        let mut histogram = self
            .run_duration
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = RUN_DURATION_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
        {
            histogram.buckets[index] += 1;
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// Counts a signal read.
    pub fn signal_read(&self, ok: bool) {
        let counter = if ok {
            &self.signal_reads_ok
        } else {
            &self.signal_reads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that `service`'s journal fails (`Some(reason)`: its appends are lost until a snapshot heals it) or
    /// works again (`None`); `GET /healthz` says "degraded" with the reason meanwhile.
    pub fn journal_failing(&self, service: &str, reason: Option<String>) {
        self.journal_failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(service.to_owned(), reason);
    }

    /// The journal's health: the failing services' reasons, and the appends lost so far.
    #[must_use]
    pub fn journal_health(&self) -> JournalHealth {
        let failing = self
            .journal_failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(service, reason)| {
                reason.as_ref().map(|reason| format!("{service}: {reason}"))
            })
            .collect::<Vec<_>>();
        JournalHealth {
            failing: (!failing.is_empty()).then(|| failing.join("; ")),
            lost_appends: self.journal_appends_failed.load(Ordering::Relaxed),
        }
    }

    /// Exposes `store`'s size and rows (`fixloop_store_bytes`, `fixloop_store_rows`).
    pub fn watch_store(&self, store: std::sync::Arc<dyn fixloop_adapters::Store>) {
        *self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(store);
    }

    /// Counts a journal append, by result: `false` for every input that is not journaled (an append that failed,
    /// or one skipped while the journal is broken), so the count is the lost appends, not the outages.
    pub fn journal_append(&self, ok: bool) {
        let counter = if ok {
            &self.journal_appends_ok
        } else {
            &self.journal_appends_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Declares this process a replica called `replica` among others sharing one database's leases.
    pub fn replica(&self, replica: &str) {
        *self
            .leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Leadership {
            replica: replica.to_owned(),
            leads: BTreeMap::new(),
        });
    }

    /// This replica and the services it leads (`None` for a single process).
    #[must_use]
    pub fn leadership(&self) -> Option<Leadership> {
        self.leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// This replica won `service`'s lease in `epoch` (a takeover when the epoch is above 1).
    pub fn lease_acquired(&self, service: &str, epoch: u64) {
        self.lease_acquired.fetch_add(1, Ordering::Relaxed);
        if let Some(leadership) = self
            .leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            leadership.leads.insert(service.to_owned(), epoch);
        }
    }

    /// A lease this replica holds was renewed.
    pub fn lease_renewed(&self) {
        self.lease_renewals.fetch_add(1, Ordering::Relaxed);
    }

    /// This replica no longer leads `service`: `lost` when the lease was lost (taken, lapsed, unconfirmable or
    /// fenced), not stepped down from.
    pub fn lease_ended(&self, service: &str, lost: bool) {
        if lost {
            self.lease_lost.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(leadership) = self
            .leadership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
        {
            leadership.leads.remove(service);
        }
    }

    /// A journal write refused because the driver's lease is no longer the live one.
    pub fn journal_fenced(&self) {
        self.journal_fenced.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an alert about FixLoop itself that a webhook ignored: FixLoop never acts on its own alerts.
    pub fn self_alert_ignored(&self) {
        self.self_alerts_ignored.fetch_add(1, Ordering::Relaxed);
    }

    fn render_leases(&self, out: &mut String) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        family(
            out,
            "fixloop_journal_fenced_total",
            "counter",
            "Journal writes the store refused because the driver's lease was no longer the live one.",
        );
        let _ = writeln!(
            out,
            "fixloop_journal_fenced_total {}",
            load(&self.journal_fenced)
        );
        let Some(leadership) = self.leadership() else {
            return;
        };
        family(
            out,
            "fixloop_leads",
            "gauge",
            "1 for each service this replica leads (holds the lease of), with the lease's epoch.",
        );
        for (service, epoch) in &leadership.leads {
            let _ = writeln!(
                out,
                "fixloop_leads{{replica=\"{}\",service=\"{}\",epoch=\"{epoch}\"}} 1",
                escape_label(&leadership.replica),
                escape_label(service)
            );
        }
        for (name, help, counter) in [
            (
                "fixloop_lease_acquired_total",
                "Leases this replica won (a start, or a takeover of a lapsed lease).",
                &self.lease_acquired,
            ),
            (
                "fixloop_lease_renewals_total",
                "Lease renewals that succeeded.",
                &self.lease_renewals,
            ),
            (
                "fixloop_lease_lost_total",
                "Leases this replica lost (taken over, lapsed, unconfirmable, or fenced).",
                &self.lease_lost,
            ),
        ] {
            family(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", load(counter));
        }
    }

    /// Counts a copilot answer by who wrote it (a rising `GROUNDED_FALLBACK` share means the model misses its budget).
    pub fn copilot_answered(&self, by: AnsweredBy) {
        let counter = match by {
            AnsweredBy::Model => &self.copilot_model,
            AnsweredBy::Grounded => &self.copilot_grounded,
            AnsweredBy::GroundedFallback => &self.copilot_fallback,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the number of connected WebSocket clients and counts dropped ones.
    pub fn websocket_clients(&self, connected: usize, dropped: usize) {
        self.websocket_clients
            .store(connected as u64, Ordering::Relaxed);
        self.websocket_clients_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Counts `fed` events delivered by the replica's feed, the latest `lag_ms` after it was published.
    pub fn events_fed(&self, fed: usize, lag_ms: u64) {
        self.events_fed.fetch_add(fed as u64, Ordering::Relaxed);
        self.event_feed_lag_ms.store(lag_ms, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        family(
            &mut out,
            "fixloop_incidents_opened_total",
            "counter",
            "Incidents opened.",
        );
        let _ = writeln!(
            out,
            "fixloop_incidents_opened_total {}",
            load(&self.incidents_opened)
        );
        family(
            &mut out,
            "fixloop_runs_started_total",
            "counter",
            "Validation runs started.",
        );
        let _ = writeln!(
            out,
            "fixloop_runs_started_total {}",
            load(&self.runs_started)
        );
        family(
            &mut out,
            "fixloop_runs_finished_total",
            "counter",
            "Validation runs finished, by final status.",
        );
        let _ = writeln!(
            out,
            "fixloop_runs_finished_total{{status=\"COMPLETED\"}} {}\nfixloop_runs_finished_total{{status=\"FAILED\"}} {}",
            load(&self.runs_completed),
            load(&self.runs_failed)
        );
        family(
            &mut out,
            "fixloop_copilot_answers_total",
            "counter",
            "Copilot answers, by who wrote them (MODEL, GROUNDED, or GROUNDED_FALLBACK when the model missed its budget or failed).",
        );
        for (by, counter) in [
            (AnsweredBy::Model, &self.copilot_model),
            (AnsweredBy::Grounded, &self.copilot_grounded),
            (AnsweredBy::GroundedFallback, &self.copilot_fallback),
        ] {
            let _ = writeln!(
                out,
                "fixloop_copilot_answers_total{{answered_by=\"{}\"}} {}",
                by.as_str(),
                load(counter)
            );
        }
        family(
            &mut out,
            "fixloop_run_duration_seconds",
            "histogram",
            "Duration of finished validation runs.",
        );
        {
            let histogram = self
                .run_duration
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut cumulative = 0;
            for (bound, count) in RUN_DURATION_BUCKETS.iter().zip(histogram.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "fixloop_run_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "fixloop_run_duration_seconds_bucket{{le=\"+Inf\"}} {}\nfixloop_run_duration_seconds_sum {}\nfixloop_run_duration_seconds_count {}",
                histogram.count, histogram.sum, histogram.count
            );
        }
        {
            let times = self
                .incident_times
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            times.detect.render(
                &mut out,
                "fixloop_incident_time_to_detect_seconds",
                "Closed incidents opened by polling: from the first hot sample of the window to the opening.",
            );
            times.first_run.render(
                &mut out,
                "fixloop_incident_time_to_first_run_seconds",
                "Closed incidents: from detection to the start of the first validation run.",
            );
            times.recover.render(
                &mut out,
                "fixloop_incident_time_to_recover_seconds",
                "Closed incidents that recovered: from detection to the last entry into RECOVERED.",
            );
        }
        family(
            &mut out,
            "fixloop_signal_reads_total",
            "counter",
            "Reads of the signal source, by result.",
        );
        let _ = writeln!(
            out,
            "fixloop_signal_reads_total{{result=\"ok\"}} {}\nfixloop_signal_reads_total{{result=\"error\"}} {}",
            load(&self.signal_reads_ok),
            load(&self.signal_reads_failed)
        );
        family(
            &mut out,
            "fixloop_journal_appends_total",
            "counter",
            "Appends of engine inputs to the journal, by result: error counts every input not journaled (failed, or skipped while the journal is broken until a snapshot heals it).",
        );
        let _ = writeln!(
            out,
            "fixloop_journal_appends_total{{result=\"ok\"}} {}\nfixloop_journal_appends_total{{result=\"error\"}} {}",
            load(&self.journal_appends_ok),
            load(&self.journal_appends_failed)
        );
        family(
            &mut out,
            "fixloop_journal_degraded",
            "gauge",
            "1 while a watched service's journal fails (inputs are lost until a snapshot heals it; GET /healthz says why), else 0.",
        );
        {
            let failing = self
                .journal_failing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (service, reason) in failing.iter() {
                let _ = writeln!(
                    out,
                    "fixloop_journal_degraded{{service=\"{}\"}} {}",
                    escape_label(service),
                    u8::from(reason.is_some())
                );
            }
        }
        let size = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .and_then(|store| store.stats());
        if let Some(size) = size {
            family(
                &mut out,
                "fixloop_store_bytes",
                "gauge",
                "Size of the store file (with its write-ahead log), as its latest compaction measured it.",
            );
            let _ = writeln!(out, "fixloop_store_bytes {}", size.bytes);
            family(
                &mut out,
                "fixloop_store_rows",
                "gauge",
                "Rows in the store, by table, as its latest compaction counted them.",
            );
            let _ = writeln!(
                out,
                "fixloop_store_rows{{table=\"journal\"}} {}\nfixloop_store_rows{{table=\"snapshots\"}} {}",
                size.journal_rows, size.snapshot_rows
            );
        }
        self.render_leases(&mut out);
        family(
            &mut out,
            "fixloop_self_alerts_ignored_total",
            "counter",
            "Webhook alerts about FixLoop itself (a service or job label naming FixLoop), ignored: FixLoop never acts on them.",
        );
        let _ = writeln!(
            out,
            "fixloop_self_alerts_ignored_total {}",
            load(&self.self_alerts_ignored)
        );
        family(
            &mut out,
            "fixloop_signals_degraded",
            "gauge",
            "1 while a watched service's signal source is blind (its status says why), else 0.",
        );
        {
            let services = self
                .signals_degraded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (service, degraded) in services.iter() {
                let _ = writeln!(
                    out,
                    "fixloop_signals_degraded{{service=\"{}\"}} {}",
                    escape_label(service),
                    u8::from(*degraded)
                );
            }
        }
        family(
            &mut out,
            "fixloop_incidents_needing_human_total",
            "counter",
            "Incidents whose recovery gate stayed inconclusive (no traffic, too few requests, a degraded source) for the \
             configured number of checks in a row: they need a human.",
        );
        let _ = writeln!(
            out,
            "fixloop_incidents_needing_human_total {}",
            load(&self.incidents_needing_human)
        );
        family(
            &mut out,
            "fixloop_incident_needs_human",
            "gauge",
            "1 while a watched service's open incident needs a human (its recovery blocker says why), else 0.",
        );
        {
            let services = self
                .needs_human
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (service, needs) in services.iter() {
                let _ = writeln!(
                    out,
                    "fixloop_incident_needs_human{{service=\"{}\"}} {}",
                    escape_label(service),
                    u8::from(*needs)
                );
            }
        }
        family(
            &mut out,
            "fixloop_websocket_clients",
            "gauge",
            "Connected WebSocket clients.",
        );
        let _ = writeln!(
            out,
            "fixloop_websocket_clients {}",
            load(&self.websocket_clients)
        );
        family(
            &mut out,
            "fixloop_websocket_clients_dropped_total",
            "counter",
            "WebSocket clients dropped because their queue was full.",
        );
        let _ = writeln!(
            out,
            "fixloop_websocket_clients_dropped_total {}",
            load(&self.websocket_clients_dropped)
        );
        family(
            &mut out,
            "fixloop_events_fed_total",
            "counter",
            "Events this replica read from the shared event log and delivered to its WebSocket clients (replicas).",
        );
        let _ = writeln!(out, "fixloop_events_fed_total {}", load(&self.events_fed));
        family(
            &mut out,
            "fixloop_event_feed_lag_milliseconds",
            "gauge",
            "From the latest fed event's ts (its leader's clock) to its delivery on this replica.",
        );
        let _ = writeln!(
            out,
            "fixloop_event_feed_lag_milliseconds {}",
            load(&self.event_feed_lag_ms)
        );
        self.remediation.render(&mut out);
        out
    }
}

/// Escapes a label value for the text exposition (backslash, quote, newline).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
