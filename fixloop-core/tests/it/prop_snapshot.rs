//! Properties of persistence: a snapshot taken anywhere in a random story, serialized and restored, makes exactly
//! the decisions the original engine makes for the rest of the story; and a journal of the story's inputs
//! (serialized as `RecordedInput`s) replayed into a fresh engine reproduces every effect.

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_core::engine::{Effect, Engine, Input, Recorded, RecordedInput, Snapshot};
use proptest::prelude::*;

use crate::engine_harness::{Harness, demo_config, start_time};
use crate::prop_engine::{SampleLog, apply, step};

/// Feeds `log` to `engine` as a driver would, collecting every effect.
fn replay(engine: &mut Engine, log: &[(DateTime<Utc>, Option<Input>)]) -> Vec<Effect> {
    let mut effects = Vec::new();
    for (now, input) in log.iter().cloned() {
        match input {
            Some(input) => {
                // Rejections are decisions too: the original got the same answer.
                let _ = engine.handle_input(now, input);
            }
            None => engine.handle_timeout(now),
        }
        while let Some(effect) = engine.poll_effect() {
            effects.push(effect);
        }
    }
    effects
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_restored_snapshot_makes_the_same_decisions(
        steps in prop::collection::vec(step(), 1..80),
        split in any::<prop::sample::Index>(),
    ) {
        let mut h = Harness::demo();
        let mut samples = SampleLog::new();
        let split = split.index(steps.len());
        for step in &steps[..split] {
            apply(&mut h, step, &mut samples);
        }
        let snapshot = h.engine.snapshot().expect("the harness drains after every call");
        let json = serde_json::to_string(&snapshot).expect("a snapshot serializes");
        let decoded: Snapshot = serde_json::from_str(&json).expect("and reads back");
        prop_assert_eq!(&decoded, &snapshot);
        let mut restored = Engine::restore(demo_config(), decoded).expect("same format and service");

        let (mark, log_mark) = (h.mark(), h.log.len());
        for step in &steps[split..] {
            apply(&mut h, step, &mut samples);
        }
        let effects = replay(&mut restored, &h.log[log_mark..]);
        prop_assert_eq!(&effects[..], h.effects_since(mark));
        prop_assert_eq!(restored.snapshot().ok(), h.engine.snapshot().ok());
        prop_assert_eq!(restored.recovery_blocker(), h.engine.recovery_blocker());
    }

    #[test]
    fn replaying_a_journal_makes_the_same_decisions(steps in prop::collection::vec(step(), 1..80)) {
        let mut h = Harness::demo();
        let mut samples = SampleLog::new();
        for step in &steps {
            apply(&mut h, step, &mut samples);
        }
        // The journal as a store would hold it: one JSON line per call.
        let journal: Vec<String> = h
            .log
            .iter()
            .map(|(now, input)| {
                serde_json::to_string(&(now, input.as_ref().map(RecordedInput::from)))
                    .expect("a record serializes")
            })
            .collect();
        let log: Vec<(DateTime<Utc>, Option<Input>)> = journal
            .iter()
            .map(|line| {
                let (now, input): (DateTime<Utc>, Option<RecordedInput>) =
                    serde_json::from_str(line).expect("a record reads back");
                let input = input.map(|record| match record.into_recorded() {
                    Recorded::Input(input) => input,
                    Recorded::Configured { .. } => unreachable!("the harness journals inputs only"),
                });
                (now, input)
            })
            .collect();
        // The replay needs no configuration of its own: the first snapshot, as a store keeps it, records the one the
        // engine ran with.
        let first = Engine::new(demo_config(), start_time()).snapshot().expect("a fresh engine snapshots");
        let first: Snapshot = serde_json::from_str(&serde_json::to_string(&first).expect("serializes"))
            .expect("reads back");
        let config = first.config().expect("the snapshot records its configuration");
        prop_assert_eq!(&config, &demo_config());
        let mut fresh = Engine::restore(config, first).expect("restores");
        let effects = replay(&mut fresh, &log);
        prop_assert_eq!(effects, h.effects.clone());
        prop_assert_eq!(fresh.snapshot().ok(), h.engine.snapshot().ok());
    }
}
