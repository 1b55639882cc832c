//! The recovery gate's bookkeeping for an open incident: measurements that cannot be judged (no traffic, too few
//! requests, a failed read) are *inconclusive*, never healthy; the first of a run of them is written to the
//! incident's timeline with its reason, and after `inconclusive_limit` in a row the incident records that it needs
//! a human (a `NEEDS_HUMAN` timeline entry, [`Engine::needs_human`](super::Engine::needs_human), and the recovery
//! blocker says so). It still never turns RECOVERED on missing data: the gate needs healthy measurements.

use fixloop_contract::TimelineKind;
use fixloop_contract::chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::machine::{Shared, Validating};

/// Called after every measurement (ended, inconclusive or failed) while VALIDATING.
pub(super) fn after_measurement(
    validating: &mut Validating,
    shared: &mut Shared,
    now: DateTime<Utc>,
) {
    let count = shared.signals.inconclusive;
    let incident_id = validating.incident.id.clone();
    if count == 0 {
        validating.inconclusive_noted = false;
        if validating.needs_human {
            validating.needs_human = false;
            info!(%incident_id, "the signals can be judged again");
            shared.history.note(
                &incident_id,
                now,
                TimelineKind::RecoveryInconclusive,
                "signals conclusive again: the recovery gate judges them".to_owned(),
            );
        }
        return;
    }
    let reason = shared
        .signals
        .inconclusive_reason
        .clone()
        .unwrap_or_default();
    if !validating.inconclusive_noted {
        validating.inconclusive_noted = true;
        info!(%incident_id, %reason, "recovery gate inconclusive");
        shared.history.note(
            &incident_id,
            now,
            TimelineKind::RecoveryInconclusive,
            format!("recovery gate inconclusive: {reason} (no data is never recovery)"),
        );
    }
    let limit = shared.config.inconclusive_limit.max(1);
    if count >= limit && !validating.needs_human {
        validating.needs_human = true;
        warn!(%incident_id, count, %reason, "the recovery gate cannot judge the signals; the incident needs a human");
        shared.history.note(
            &incident_id,
            now,
            TimelineKind::NeedsHuman,
            format!(
                "needs a human: {count} inconclusive checks in a row (last: {reason}); FixLoop will not declare \
                 RECOVERED without data"
            ),
        );
    }
}
