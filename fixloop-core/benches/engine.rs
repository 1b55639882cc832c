//! Engine throughput: inputs per second, for steady-state signal samples and for whole incident cycles.
//!
//! Run with `cargo bench -p fixloop-core --bench engine`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{IncidentState, TestStatus};
use fixloop_core::engine::{Config, Effect, Engine, IncidentContext, Input, SignalSample};
use fixloop_core::{IncidentId, PlanId, rule_plan};

#[path = "../tests/fixtures/shop.rs"]
mod shop;

fn start() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

fn sample(at: DateTime<Utc>, error_rate: f64) -> Input {
    Input::SignalSampled(SignalSample {
        at,
        error_rate: Some(error_rate),
        p95_latency_ms: Some(120.0),
        top_error: None,
        requests: 100,
    })
}

/// Drives one incident from detection to HEALTHY, answering every effect; returns the number of inputs fed.
fn incident_cycle(engine: &mut Engine, now: &mut DateTime<Utc>) -> u64 {
    let mut pending = vec![sample(*now, 0.3), sample(*now, 0.3)];
    let mut fed = 0;
    while let Some(input) = pending.pop() {
        *now += TimeDelta::milliseconds(10);
        let _ = engine.handle_input(*now, input);
        fed += 1;
        while let Some(effect) = engine.poll_effect() {
            match effect {
                Effect::FetchContext { effect, .. } => pending.push(Input::ContextFetched {
                    effect,
                    result: Ok(IncidentContext::default()),
                }),
                Effect::RequestPlan {
                    effect, context, ..
                } => pending.push(Input::PlanProposed {
                    effect,
                    plan: rule_plan(&context, PlanId::new("bench"), *now),
                }),
                Effect::StartRun { effect, plan, .. } => {
                    pending.push(sample(*now, 0.0));
                    pending.push(sample(*now, 0.0));
                    pending.push(Input::RunFinished {
                        effect,
                        result: Ok(()),
                    });
                    for (item, _) in plan.tests() {
                        pending.push(Input::TestProgressed {
                            effect,
                            test_id: item.test_id.clone(),
                            status: TestStatus::Pass,
                            details: None,
                        });
                    }
                }
                other => {
                    black_box(other);
                }
            }
        }
    }
    // Let the soak window pass (the incident closes), then the cooldown.
    *now += TimeDelta::seconds(60);
    engine.handle_timeout(*now);
    while let Some(effect) = engine.poll_effect() {
        black_box(effect);
    }
    *now += TimeDelta::seconds(60);
    fed
}

fn benches(c: &mut Criterion) {
    let config = Config::short_windows(shop::shop_spec("http://127.0.0.1:8001"), "bench");
    let mut group = c.benchmark_group("engine");

    group.throughput(Throughput::Elements(1));
    group.bench_function("healthy_sample", |b| {
        let mut now = start();
        let mut engine = Engine::new(config.clone(), now);
        b.iter(|| {
            now += TimeDelta::seconds(1);
            let _ = engine.handle_input(now, sample(now, 0.0));
            while let Some(effect) = engine.poll_effect() {
                black_box(effect);
            }
        });
    });

    // A probe: each cycle opens and closes a new incident, and counts its inputs.
    let mut probe_now = start();
    let mut probe = Engine::new(config.clone(), probe_now);
    let inputs_per_cycle = incident_cycle(&mut probe, &mut probe_now);
    incident_cycle(&mut probe, &mut probe_now);
    assert!(
        probe.has_incident(&IncidentId::new("inc-bench-2")),
        "each cycle is a whole incident"
    );
    assert_eq!(probe.status().status, IncidentState::Healthy);
    group.throughput(Throughput::Elements(inputs_per_cycle));
    group.bench_function("incident_cycle", |b| {
        let mut now = start();
        let mut engine = Engine::new(config.clone(), now);
        b.iter(|| black_box(incident_cycle(&mut engine, &mut now)));
    });
    group.finish();
}

mod group {
    //! The criterion group, in a module of its own because the macro's function has no doc comment.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(engine, super::benches);
}

criterion_main!(group::engine);
