//! Conversions between what the ports and the wire speak and what the core's engine takes, kept together.

use chrono::{DateTime, Utc};
use fixloop_adapters::{ContextFindings, SignalReading};
use fixloop_contract::SimulateMode;
use fixloop_core::engine::{IncidentContext, Input, SignalSample};

/// A signal reading taken at `at`, as the engine's sample.
#[must_use]
pub fn signal_sample(reading: SignalReading, at: DateTime<Utc>) -> SignalSample {
    SignalSample {
        at,
        error_rate: reading.error_rate,
        p95_latency_ms: reading.p95_latency_ms,
        top_error: reading.top_error,
        requests: reading.requests,
    }
}

/// A signal reading as an incident's context; a window without traffic reads as zero.
#[must_use]
pub fn incident_context(reading: SignalReading) -> IncidentContext {
    IncidentContext {
        error_rate: reading.error_rate.unwrap_or(0.0),
        p95_latency_ms: reading.p95_latency_ms.unwrap_or(0.0),
        top_error: reading.top_error,
        evidence_links: reading.evidence_links,
    }
}

/// The signals' context with a context source's findings added: its top error when the signals had none, and its
/// evidence links after theirs (no URL twice). Its notes are not part of the engine's context.
#[must_use]
pub fn with_findings(
    mut context: IncidentContext,
    findings: Option<ContextFindings>,
) -> IncidentContext {
    let Some(findings) = findings else {
        return context;
    };
    if context.top_error.is_none() {
        context.top_error = findings.top_error;
    }
    for link in findings.evidence_links {
        if !context
            .evidence_links
            .iter()
            .any(|known| known.url == link.url)
        {
            context.evidence_links.push(link);
        }
    }
    context
}

/// The engine input of `POST /api/incidents/simulate`.
#[must_use]
pub const fn simulate_input(mode: SimulateMode) -> Input {
    match mode {
        SimulateMode::IncidentOn => Input::SimulateOn,
        SimulateMode::IncidentOff => Input::SimulateOff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_without_traffic_is_a_sample_without_numbers_and_a_zero_context() {
        let reading = SignalReading {
            requests: 0,
            ..SignalReading::default()
        };
        let at = "2026-11-21T10:15:00Z".parse().unwrap();
        let sample = signal_sample(reading.clone(), at);
        assert_eq!(
            (sample.error_rate, sample.p95_latency_ms, sample.at),
            (None, None, at)
        );
        let context = incident_context(reading);
        assert_eq!((context.error_rate, context.p95_latency_ms), (0.0, 0.0));
    }
}
