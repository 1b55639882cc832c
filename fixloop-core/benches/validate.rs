//! Criterion benchmarks of the pure parts of the core: plan validations per second, and criteria parsing and
//! evaluation. Run with `cargo bench -p fixloop-core --bench validate`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use fixloop_contract::Signal;
use fixloop_contract::chrono::{TimeZone, Utc};
use fixloop_core::{Criteria, IncidentId, Observation, PlanContext, PlanId, rule_plan, validate};

#[path = "../tests/fixtures/shop.rs"]
mod shop;

const BASE: &str = "http://127.0.0.1:8081";
const CRITERIA: &str =
    "status == 200 && json.status == \"confirmed\" && json.order_id exists && latency_ms < 2000";

fn bench_validate(c: &mut Criterion) {
    let context = PlanContext {
        incident_id: IncidentId::new("inc-1"),
        service: "demo-shop".to_owned(),
        base_url: BASE.to_owned(),
        signal: Signal {
            error_rate_5m: 0.42,
            p95_latency_ms_5m: 1250.0,
            top_error: Some("payment provider timeout".to_owned()),
        },
        title: "Checkout error rate above 5%".to_owned(),
        ..shop::shop_context(BASE)
    };
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 10, 15, 0).unwrap();
    let plan = rule_plan(&context, PlanId::new("plan-1"), now);
    let policy = shop::shop_spec(BASE).policy;

    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rule_plan", |b| {
        b.iter(|| validate(black_box(plan.clone()), black_box(&policy)).is_ok());
    });
    let mut broken = plan.clone();
    broken.items[2].target.url = "http://user@evil.example/%2e%2e/health".to_owned();
    broken.items[1].pass_criteria = "status in [400 422]".to_owned();
    group.bench_function("rejected_plan", |b| {
        b.iter(|| validate(black_box(broken.clone()), black_box(&policy)).is_err());
    });
    group.finish();
}

fn bench_criteria(c: &mut Criterion) {
    let criteria = Criteria::parse(CRITERIA).unwrap();
    let observation = Observation {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: r#"{"order_id":"ord-1","status":"confirmed","sku":"sku-1","quantity":1,"total_cents":1299}"#
            .to_owned(),
        latency_ms: 12,
    };
    let mut group = c.benchmark_group("criteria");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |b| b.iter(|| Criteria::parse(black_box(CRITERIA))));
    group.bench_function("evaluate", |b| {
        b.iter(|| criteria.evaluate(black_box(&observation)));
    });
    group.bench_function("parse_and_evaluate", |b| {
        b.iter(|| {
            Criteria::parse(black_box(CRITERIA))
                .map(|criteria| criteria.evaluate(black_box(&observation)).passed)
        });
    });
    group.finish();
}

/// The benchmark group; the macro generates an undocumented public function.
mod groups {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench_validate, super::bench_criteria);
}

criterion_main!(groups::benches);
