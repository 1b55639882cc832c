//! The engine's own polling timer: when to read the signals next ([`Effect::SampleSignals`]) and over which window.
//!
//! The engine issues one read at a time. Each measurement covers only the time since the previous measurement
//! began: the window of a read is the time since the read that ended the previous measurement was issued (plus a
//! small slack, so the source's sample taken just after that issue falls inside it). A read with too few requests
//! does not end its measurement, so the next window reaches back to the same start (the measurement extends), up to
//! `max_measurement`. The cadence is `poll_interval`, or `confirm_delay` after a hot measurement that has not
//! opened an incident yet (adaptive polling). Nothing here reads a clock: every time is a `now` argument.

use std::time::Duration;

use fixloop_contract::chrono::{DateTime, Utc};
use tracing::{debug, warn};

use super::{Config, Effect, after};

/// The shortest cadence, whatever the configuration says (a zero interval must not spin the timer).
const MIN_CADENCE: Duration = Duration::from_millis(100);
/// A read unanswered for this long is taken as lost (the driver bounds every read by a timeout, so this only
/// catches a driver that dropped one): a new read is issued.
const MIN_LOST_AFTER: Duration = Duration::from_secs(1);

/// The polling timer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Polling {
    /// When the next read is due (none while one is in flight).
    pub(super) next_read_at: Option<DateTime<Utc>>,
    /// When the read in flight was issued.
    pub(super) in_flight: Option<DateTime<Utc>>,
    /// When the current measurement began: the issue time of the read that ended the previous one (`None` before
    /// the first measurement ended).
    pub(super) measurement_start: Option<DateTime<Utc>>,
}

/// How soon the next read should come after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cadence {
    /// The polling interval.
    Normal,
    /// The confirmation delay: a hot measurement waits for confirmation.
    Confirm,
}

impl Polling {
    /// A timer whose first read is due at `now`.
    pub(super) fn new(now: DateTime<Utc>) -> Self {
        Self {
            next_read_at: Some(now),
            in_flight: None,
            measurement_start: None,
        }
    }

    /// When [`Polling::fire`] must next be called.
    pub(super) fn next_deadline(&self, config: &Config) -> Option<DateTime<Utc>> {
        match self.in_flight {
            Some(issued) => Some(after(issued, lost_after(config))),
            None => self.next_read_at,
        }
    }

    /// Issues the read that is due at `now`, if any.
    pub(super) fn fire(&mut self, now: DateTime<Utc>, config: &Config) -> Option<Effect> {
        if let Some(issued) = self.in_flight {
            if after(issued, lost_after(config)) > now {
                return None;
            }
            warn!(issued = %issued, "a signal read was never answered; reading again");
        } else if self.next_read_at.is_none_or(|due| due > now) {
            return None;
        }
        self.in_flight = Some(now);
        self.next_read_at = None;
        let window = self.window(now, config);
        debug!(window_ms = window.as_millis() as u64, "reading the signals");
        Some(Effect::SampleSignals { window })
    }

    /// The window of a read issued at `now`.
    pub(super) fn window(&self, now: DateTime<Utc>, config: &Config) -> Duration {
        let cadence = config.poll_interval.max(MIN_CADENCE);
        let Some(start) = self.measurement_start else {
            return cadence;
        };
        let since = (now - start).to_std().unwrap_or_default();
        let slack = config
            .confirm_delay
            .min(config.poll_interval)
            .max(MIN_CADENCE)
            / 2;
        since.min(config.max_measurement.max(cadence)) + slack
    }

    /// A read was answered at `now` (or a sample arrived unasked); returns when the read was issued (`now` for an
    /// unasked sample): the start of the next measurement if this answer ends the current one.
    pub(super) fn answered(&mut self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.in_flight.take().unwrap_or(now)
    }

    /// The current measurement ended with the read issued at `issued`: the next one starts there.
    pub(super) fn measurement_ended(&mut self, issued: DateTime<Utc>) {
        self.measurement_start = Some(issued);
    }

    /// How long the current measurement has lasted at `now`.
    pub(super) fn measurement_age(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.measurement_start
            .map(|start| (now - start).to_std().unwrap_or_default())
    }

    /// Schedules the next read after an answer to the read issued at `issued`.
    pub(super) fn schedule(
        &mut self,
        issued: DateTime<Utc>,
        now: DateTime<Utc>,
        cadence: Cadence,
        config: &Config,
    ) {
        if self.in_flight.is_some() {
            return;
        }
        let delay = match cadence {
            Cadence::Normal => config.poll_interval,
            Cadence::Confirm => config.confirm_delay.min(config.poll_interval),
        }
        .max(MIN_CADENCE);
        self.next_read_at = Some(after(issued, delay).max(now));
    }

    /// Moves the next read to `now + confirm_delay` (something changed: look soon, and not so soon that the change
    /// has had no time to show: a read due a few milliseconds after the change would see nothing of it, and the next
    /// one would come a full interval later).
    pub(super) fn hurry(&mut self, now: DateTime<Utc>, config: &Config) {
        if self.next_read_at.is_some() {
            self.next_read_at = Some(after(now, config.confirm_delay.max(MIN_CADENCE)));
        }
    }

    /// The driver restarted: the read in flight died with it; read again at once.
    pub(super) fn restarted(&mut self, now: DateTime<Utc>) {
        self.in_flight = None;
        self.next_read_at = Some(now);
    }
}

fn lost_after(config: &Config) -> Duration {
    (config.signal_max_age * 2).max(MIN_LOST_AFTER)
}
