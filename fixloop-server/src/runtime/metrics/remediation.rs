//! The remediation gauges of `/metrics`: the engines' figures per (service, incident kind, action) and the kill
//! switch, as each driver last read them from its engine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use fixloop_core::engine::ActionStats;

use super::{escape_label, family};

/// One service's figures: (incident kind, action) → (attempts, effective).
type ServiceFigures = BTreeMap<(String, String), (u32, u32)>;

/// What the drivers last read of their engines.
#[derive(Debug, Default)]
pub(super) struct RemediationFigures {
    /// Per service: (kind, action) → (attempts, effective).
    actions: Mutex<BTreeMap<String, ServiceFigures>>,
    /// Per service: whether its engine's kill switch is engaged.
    kill_switch: Mutex<BTreeMap<String, bool>>,
}

impl RemediationFigures {
    pub(super) fn observe(&self, service: &str, stats: &[ActionStats], kill_switch: bool) {
        let figures = stats
            .iter()
            .map(|stats| {
                (
                    (stats.kind.clone(), stats.action_id.clone()),
                    (stats.attempts, stats.effective),
                )
            })
            .collect();
        self.actions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(service.to_owned(), figures);
        self.kill_switch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(service.to_owned(), kill_switch);
    }

    pub(super) fn render(&self, out: &mut String) {
        let actions = self.actions.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, help, pick) in [
            (
                "fixloop_remediation_attempts",
                "Remediation actions carried out and judged, per service, incident kind and action (the engine's figure).",
                (|(attempts, _): &(u32, u32)| *attempts) as fn(&(u32, u32)) -> u32,
            ),
            (
                "fixloop_remediation_effective",
                "Remediation actions judged effective (RECOVERED after them), per service, incident kind and action.",
                |(_, effective): &(u32, u32)| *effective,
            ),
        ] {
            family(out, name, "gauge", help);
            for (service, figures) in actions.iter() {
                for ((kind, action), counts) in figures {
                    let _ = writeln!(
                        out,
                        "{name}{{service=\"{}\",kind=\"{}\",action=\"{}\"}} {}",
                        escape_label(service),
                        escape_label(kind),
                        escape_label(action),
                        pick(counts)
                    );
                }
            }
        }
        drop(actions);
        let engaged = self
            .kill_switch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .any(|engaged| *engaged);
        family(
            out,
            "fixloop_remediation_kill_switch",
            "gauge",
            "1 while the global remediation kill switch is engaged (no action runs, approvals are refused), else 0.",
        );
        let _ = writeln!(out, "fixloop_remediation_kill_switch {}", u8::from(engaged));
    }
}
