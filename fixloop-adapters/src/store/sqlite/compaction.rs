//! Retention: the thinning of snapshots and the compaction of the journal behind them (see [`Retention`]), and the
//! measure of the file's size.

use fixloop_contract::chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::super::{Retention, StoreError, StoreStats};
use super::checks::classify;
use super::rows::decode;

/// [`SnapshotMark`]s by service and seq.
pub(super) type Marks = std::collections::HashMap<(String, u64), SnapshotMark>;

/// Deletes the snapshot before the latest (`latest`) when it is closer than `spacing` entries to the one before it:
/// the kept snapshots are the places a compacted journal can start from, `spacing` apart.
pub(super) fn thin(
    transaction: &rusqlite::Transaction<'_>,
    service: &str,
    latest: u64,
    spacing: u64,
) -> Result<(), rusqlite::Error> {
    let below: Vec<u64> = transaction
        .prepare_cached(
            "SELECT seq FROM snapshots WHERE service = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 2",
        )?
        .query_map(params![service, latest], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if let [previous, before] = below[..]
        && previous - before < spacing
    {
        transaction.execute(
            "DELETE FROM snapshots WHERE service = ?1 AND seq = ?2",
            params![service, previous],
        )?;
    }
    Ok(())
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

/// Moves the start of `service`'s replay window forward: the window is the journal from the oldest kept snapshot
/// to the latest. It starts at the oldest snapshot from which it holds at most `keep_entries` entries and either
/// at most `keep_incidents` closed incidents (the last ones closed) or nothing older than `keep_age` before the
/// latest snapshot: the window keeps the last `keep_incidents` closed incidents and every incident closed within
/// `keep_age`, as far as `keep_entries` allows. An incident open at the latest snapshot is kept whole: the window
/// never starts after the snapshot before its opening, whatever the limits say, so its timeline can be replayed
/// from its first input, unless that reaches back more than [`Retention::open_incident_entries`] (an incident held
/// open by an alert storm): then the window holds that many entries. The entries up to the start and the snapshots before it are deleted. The entries
/// after the latest snapshot (a restart's tail) are never touched.
pub(super) fn compact(
    transaction: &rusqlite::Transaction<'_>,
    location: &str,
    service: &str,
    retention: &Retention,
    cache: &mut Marks,
) -> Result<(), StoreError> {
    let fail = |error: rusqlite::Error| classify(location, &error);
    let seqs: Vec<u64> = transaction
        .prepare_cached("SELECT seq FROM snapshots WHERE service = ?1 ORDER BY seq")
        .map_err(fail)?
        .query_map(params![service], |row| row.get(0))
        .map_err(fail)?
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    if seqs.len() < 2 {
        return Ok(());
    }
    cache.retain(|(other, seq), _| other != service || seqs.binary_search(seq).is_ok());
    let mut marks = Vec::with_capacity(seqs.len());
    for seq in &seqs {
        let key = (service.to_owned(), *seq);
        let mark = match cache.get(&key) {
            Some(mark) => *mark,
            None => {
                let text: String = transaction
                    .query_row(
                        "SELECT snapshot FROM snapshots WHERE service = ?1 AND seq = ?2",
                        params![service, seq],
                        |row| row.get(0),
                    )
                    .map_err(fail)?;
                let mark = decode::<SnapshotMark>(location, &text, "snapshot")?;
                cache.insert(key, mark);
                mark
            }
        };
        marks.push((*seq, mark));
    }
    let Some((latest_seq, latest)) = marks.last().copied() else {
        return Ok(());
    };
    let oldest_time = latest.now
        - fixloop_contract::chrono::TimeDelta::from_std(retention.keep_age)
            .unwrap_or(fixloop_contract::chrono::TimeDelta::MAX);
    let mut start = latest_seq;
    for (seq, candidate) in &marks {
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
    if start == marks[0].0 {
        return Ok(());
    }
    transaction
        .execute(
            "DELETE FROM journal WHERE service = ?1 AND seq <= ?2",
            params![service, start],
        )
        .map_err(fail)?;
    transaction
        .execute(
            "DELETE FROM snapshots WHERE service = ?1 AND seq < ?2",
            params![service, start],
        )
        .map_err(fail)?;
    Ok(())
}

/// The file's size and rows now.
pub(super) fn measure(connection: &Connection) -> Result<StoreStats, rusqlite::Error> {
    let pages: u64 = connection.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let page_size: u64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(StoreStats {
        bytes: pages * page_size,
        journal_rows: connection.query_row("SELECT count(*) FROM journal", [], |row| row.get(0))?,
        snapshot_rows: connection
            .query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0))?,
    })
}
