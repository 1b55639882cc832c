//! The pure part of retention (see [`Retention`]), shared by every store that compacts: what compaction reads of a
//! stored snapshot ([`SnapshotMark`]), which snapshot thinning drops ([`thinned`]) and where the replay window
//! starts ([`window_start`]). The stores only read their rows and delete what these say.

use std::collections::HashMap;

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};

use super::{Retention, StoreError, decode};

/// [`SnapshotMark`]s by service and seq: what a store caches so it reads each stored snapshot once, not at every
/// compaction.
///
/// At a compaction the store lists the service's kept snapshots, reads the ones [`Marks::unread`] names (handing
/// each text to [`Marks::read`]), and asks [`Marks::window_start`] where the replay window starts.
#[derive(Debug, Default)]
pub(super) struct Marks(HashMap<(String, u64), SnapshotMark>);

impl Marks {
    /// Keeps `mark` as the mark of `service`'s snapshot `seq`.
    pub(super) fn insert(&mut self, service: &str, seq: u64, mark: SnapshotMark) {
        self.0.insert((service.to_owned(), seq), mark);
    }

    /// Reads the mark of `service`'s snapshot `seq` from its stored `text` and keeps it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when `text` is not a snapshot this build can read.
    pub(super) fn read(
        &mut self,
        location: &str,
        service: &str,
        seq: u64,
        text: &str,
    ) -> Result<(), StoreError> {
        let mark = decode::<SnapshotMark>(location, text, "snapshot")?;
        self.insert(service, seq, mark);
        Ok(())
    }

    /// Forgets `service`'s marks of the snapshots deleted since (those not in `seqs`, ascending), and returns the
    /// seqs among `seqs` whose mark is not kept yet: the snapshots to read before [`Marks::window_start`].
    pub(super) fn unread(&mut self, service: &str, seqs: &[u64]) -> Vec<u64> {
        self.0
            .retain(|(other, seq), _| other != service || seqs.binary_search(seq).is_ok());
        seqs.iter()
            .copied()
            .filter(|seq| !self.0.contains_key(&(service.to_owned(), *seq)))
            .collect()
    }

    /// Where `service`'s replay window starts (see [`window_start`]), given its kept snapshots `seqs` (oldest
    /// first), whose marks were read.
    pub(super) fn window_start(
        &self,
        service: &str,
        seqs: &[u64],
        retention: &Retention,
    ) -> Option<u64> {
        let marks: Vec<(u64, SnapshotMark)> = seqs
            .iter()
            .filter_map(|seq| {
                self.0
                    .get(&(service.to_owned(), *seq))
                    .map(|mark| (*seq, *mark))
            })
            .collect();
        window_start(service, &marks, retention)
    }

    /// Takes `service`'s marks out (to use them where no lock may be held), leaving the other services' ones.
    pub(super) fn take(&mut self, service: &str) -> Self {
        let keys: Vec<_> = self
            .0
            .keys()
            .filter(|(other, _)| other == service)
            .cloned()
            .collect();
        Self(
            keys.into_iter()
                .filter_map(|key| self.0.remove_entry(&key))
                .collect(),
        )
    }

    /// Keeps every mark of `marks` (marks taken out with [`Marks::take`], put back).
    pub(super) fn put_back(&mut self, marks: Self) {
        self.0.extend(marks.0);
    }
}

/// What compaction reads of a stored snapshot: its time, how many incidents the engine had opened, and whether
/// one was open (the snapshot format's own `now`, `next_incident` and `phase` fields; the rest of the text is
/// skipped).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub(super) struct SnapshotMark {
    now: DateTime<Utc>,
    /// The number the next incident opened will get (from 1): `next_incident - 1` incidents were opened.
    #[serde(default)]
    next_incident: u64,
    /// Whether an incident was open (any phase but `HEALTHY`; a recovered incident soaking is still open).
    #[serde(default, rename = "phase", deserialize_with = "incident_open")]
    open: bool,
}

impl SnapshotMark {
    /// How many incidents had been closed.
    fn closed(&self) -> u64 {
        self.next_incident
            .saturating_sub(1)
            .saturating_sub(u64::from(self.open))
    }
}

/// Reads a snapshot's `phase` object (`{"phase": "HEALTHY", ...}`): whether an incident is open.
fn incident_open<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    struct Tag {
        phase: String,
    }
    let tag = <Tag as serde::Deserialize>::deserialize(deserializer)?;
    Ok(tag.phase != "HEALTHY")
}

/// Thinning: given the two snapshots just below the latest (`below`, newest first), the one to delete, if any: the
/// snapshot before the latest goes when it is closer than `spacing` entries to the one before it, so the kept
/// snapshots (the places a compacted journal can start from) are `spacing` apart.
pub(super) fn thinned(below: &[u64], spacing: u64) -> Option<u64> {
    match *below {
        [previous, before] if previous - before < spacing => Some(previous),
        _ => None,
    }
}

/// Where `service`'s replay window starts, given its kept snapshots (`marks`, oldest first): `None` when it starts
/// at the oldest one already (nothing to delete), else `Some(start)`: the entries up to `start` and the snapshots
/// before it go.
///
/// The window is the journal from the oldest kept snapshot to the latest. It starts at the oldest snapshot from
/// which it holds at most `keep_entries` entries and either at most `keep_incidents` closed incidents (the last
/// ones closed) or nothing older than `keep_age` before the latest snapshot: the window keeps the last
/// `keep_incidents` closed incidents and every incident closed within `keep_age`, as far as `keep_entries`
/// allows. An incident open at the latest snapshot is kept whole: the window never starts after the snapshot
/// before its opening, whatever the limits say, so its timeline can be replayed from its first input, unless that
/// reaches back more than [`Retention::open_incident_entries`] (an incident held open by an alert storm): then the
/// window holds that many entries. The entries after the latest snapshot (a restart's tail) are never touched.
pub(super) fn window_start(
    service: &str,
    marks: &[(u64, SnapshotMark)],
    retention: &Retention,
) -> Option<u64> {
    if marks.len() < 2 {
        return None;
    }
    let (latest_seq, latest) = *marks.last()?;
    let oldest_time =
        latest.now - TimeDelta::from_std(retention.keep_age).unwrap_or(TimeDelta::MAX);
    let mut start = latest_seq;
    for (seq, candidate) in marks {
        let within_count =
            latest.closed().saturating_sub(candidate.closed()) <= retention.keep_incidents;
        let within_age = candidate.now >= oldest_time;
        if latest_seq - seq <= retention.keep_entries && (within_count || within_age) {
            start = *seq;
            break;
        }
    }
    if latest.open {
        // The open incident is the `latest.next_incident - 1`th: start no later than the last snapshot taken
        // before it opened (one is kept: every compaction since its opening kept it, and thinning only drops a
        // snapshot with an older one below it), nor more than `Retention::open_incident_entries` back. Held open
        // beyond that (an alert storm reopening it again and again), it loses its oldest entries rather than the
        // store growing without bound.
        let ceiling = retention.open_incident_entries();
        let before_opening = marks
            .iter()
            .rev()
            .find(|(_, candidate)| candidate.next_incident < latest.next_incident)
            .map(|(seq, _)| *seq);
        let within_ceiling = marks
            .iter()
            .find(|(seq, _)| latest_seq - seq <= ceiling)
            .map_or(latest_seq, |(seq, _)| *seq);
        let keep_from = before_opening.map_or(within_ceiling, |seq| seq.max(within_ceiling));
        if before_opening != Some(keep_from) {
            tracing::debug!(%service, from = keep_from, "the open incident outgrew the replay window's ceiling");
        }
        start = start.min(keep_from);
    }
    (start != marks[0].0).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seconds: i64, next_incident: u64, open: bool) -> SnapshotMark {
        SnapshotMark {
            now: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(seconds),
            next_incident,
            open,
        }
    }

    #[test]
    fn thinning_drops_the_snapshot_before_the_latest_only_when_too_close() {
        assert_eq!(thinned(&[300, 256], 256), Some(300));
        assert_eq!(thinned(&[512, 256], 256), None);
        assert_eq!(thinned(&[256], 256), None);
        assert_eq!(thinned(&[], 256), None);
    }

    #[test]
    fn the_window_starts_at_the_oldest_snapshot_within_the_limits() {
        let retention = Retention {
            keep_entries: 600,
            keep_incidents: 0,
            keep_age: std::time::Duration::from_secs(1_000_000),
            max_bytes: None,
        };
        let marks = [
            (0, mark(0, 1, false)),
            (256, mark(256, 1, false)),
            (512, mark(512, 1, false)),
            (768, mark(768, 1, false)),
        ];
        assert_eq!(window_start("shop", &marks, &retention), Some(256));
        assert_eq!(window_start("shop", &marks[2..], &retention), None);
        // An incident open since before 256 holds the window there, whatever keep_entries says.
        let open = [
            (0, mark(0, 1, false)),
            (256, mark(256, 1, false)),
            (512, mark(512, 2, true)),
            (768, mark(768, 2, true)),
            (1_024, mark(1_024, 2, true)),
        ];
        assert_eq!(window_start("shop", &open, &retention), Some(256));
    }
}
