//! Drives one incident from HEALTHY to RECOVERED and back with a plain `loop`: no async runtime, no network, a
//! simulated clock and a simulated world (a demo service whose checkout breaks while its bug is on).
//! It is the proof that the core is sans-IO: everything the engine asks for is carried out right here.
//!
//! Run with `cargo run -p fixloop-core --example incident_loop`.

use std::collections::VecDeque;

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{HttpMethod, IncidentState, TestStatus, WsMessage};
use fixloop_core::engine::{Config, Effect, Engine, IncidentContext, Input, SignalSample};
use fixloop_core::{Observation, rule_plan};

// The shop's journeys and coverage, as plain core types (the same fixture the core's tests plan for).
#[path = "../tests/fixtures/shop.rs"]
mod shop;

/// The simulated demo service.
struct World {
    bug_enabled: bool,
}

impl World {
    /// What the service answers to a test's request.
    fn respond(&self, method: HttpMethod, url: &str, body_quantity: Option<i64>) -> Observation {
        let (status, body) = match (method, url.rsplit_once('/').map(|(_, path)| path)) {
            (HttpMethod::Post, Some("checkout")) if self.bug_enabled => {
                (500, r#"{"error":"boom"}"#.to_owned())
            }
            (HttpMethod::Post, Some("checkout")) if body_quantity.unwrap_or(0) < 1 => {
                (422, r#"{"error":"invalid_order"}"#.to_owned())
            }
            (HttpMethod::Post, Some("checkout")) => {
                (200, r#"{"status":"confirmed","order_id":"o-1"}"#.to_owned())
            }
            (_, Some("health")) => (200, r#"{"status":"ok"}"#.to_owned()),
            (_, Some("catalog")) => (200, r#"{"products":[{"sku":"sku-1"}]}"#.to_owned()),
            (_, Some("me")) => (200, r#"{"user":"demo"}"#.to_owned()),
            _ => (404, String::new()),
        };
        Observation {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
            latency_ms: 40,
        }
    }

    /// A metrics sample: 30% errors while the bug is on.
    fn sample(&self, at: DateTime<Utc>) -> SignalSample {
        SignalSample {
            at,
            error_rate: Some(if self.bug_enabled { 0.3 } else { 0.0 }),
            p95_latency_ms: Some(if self.bug_enabled { 450.0 } else { 90.0 }),
            top_error: self
                .bug_enabled
                .then(|| "HTTP 500 POST /checkout".to_owned()),
            requests: 120,
        }
    }
}

fn main() {
    let start: DateTime<Utc> = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
    let config = Config::short_windows(shop::shop_spec("http://127.0.0.1:8001"), "example");
    let mut engine = Engine::new(config, start);
    let mut world = World { bug_enabled: false };
    let mut now = start;
    let mut inputs: VecDeque<Input> = VecDeque::new();
    let mut last_status = IncidentState::Healthy;
    let mut recovered_once = false;
    println!("[+{:>3}s] {:?}", 0, last_status);

    loop {
        let elapsed = (now - start).num_seconds();
        // The operator's script: break checkout at 3 s, fix it at 12 s.
        if elapsed == 3
            && !world.bug_enabled
            && !recovered_once
            && engine.current_incident().is_none()
        {
            world.bug_enabled = true;
            inputs.push_back(Input::ServiceChanged { repair: false });
            println!("[+{elapsed:>3}s] operator: bug on");
        }
        if elapsed >= 12 && world.bug_enabled {
            world.bug_enabled = false;
            inputs.push_back(Input::ServiceChanged { repair: true });
            println!("[+{elapsed:>3}s] operator: bug off");
        }
        // Timers first (the engine's polling timer asks for reads), then one input at a time, draining every
        // effect after each call (the driving contract).
        if engine
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            engine.handle_timeout(now);
            drain(&mut engine, &world, now, &mut inputs);
        }
        while let Some(input) = inputs.pop_front() {
            if let Err(rejected) = engine.handle_input(now, input) {
                println!("rejected: {rejected}");
            }
            drain(&mut engine, &world, now, &mut inputs);
        }

        let status = engine.status().status;
        if status != last_status {
            let blocker = engine
                .recovery_blocker()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default();
            println!("[+{:>3}s] {status:?}{blocker}", (now - start).num_seconds());
            recovered_once |= status == IncidentState::Recovered;
            last_status = status;
        }
        if recovered_once && status == IncidentState::Healthy {
            println!("incident closed: the loop is complete");
            break;
        }
        if elapsed > 120 {
            println!("gave up: the incident did not complete");
            std::process::exit(1);
        }
        // Sleep until the next thing to do; here the clock simply jumps.
        // The engine's own polling timer means there is always a next deadline.
        let wake = engine.poll_timeout().unwrap_or(now + TimeDelta::seconds(1));
        now = wake.max(now + TimeDelta::milliseconds(100));
    }
}

/// Carries out every effect; answers become inputs for later.
fn drain(engine: &mut Engine, world: &World, now: DateTime<Utc>, inputs: &mut VecDeque<Input>) {
    while let Some(effect) = engine.poll_effect() {
        match effect {
            Effect::Publish(envelope) => match &envelope.message {
                WsMessage::SystemStatus(status) => println!(
                    "        ws system.status {:?} error_rate={:.1}% incident={}",
                    status.status,
                    status.error_rate_5m * 100.0,
                    status.active_incident_id.as_deref().unwrap_or("-")
                ),
                WsMessage::IncidentCreated(card) => println!(
                    "        ws incident.created {}: {}",
                    card.incident_id, card.title
                ),
                WsMessage::PlanGenerated(generated) => {
                    println!(
                        "        ws plan.generated {} ({} tests)",
                        generated.plan.plan_id,
                        generated.plan.items.len()
                    );
                }
                WsMessage::TestsUpdated(run) => {
                    let verdicts: Vec<String> = run
                        .tests
                        .iter()
                        .map(|test| format!("{:?}", test.status))
                        .collect();
                    println!(
                        "        ws tests.updated {} {:?} [{}]",
                        run.run_id,
                        run.status,
                        verdicts.join(" ")
                    );
                }
                other => println!("        ws {}", other.kind()),
            },
            Effect::FetchContext { effect, .. } => inputs.push_back(Input::ContextFetched {
                effect,
                result: Ok(IncidentContext {
                    error_rate: 0.3,
                    p95_latency_ms: 450.0,
                    top_error: Some("HTTP 500 POST /checkout".to_owned()),
                    evidence_links: Vec::new(),
                }),
            }),
            Effect::RequestPlan {
                effect,
                plan_id,
                context,
                ..
            } => inputs.push_back(Input::PlanProposed {
                effect,
                plan: rule_plan(&context, plan_id, now),
            }),
            Effect::StartRun { effect, plan, .. } => {
                // The simulated runner executes every test at once and evaluates its criteria.
                for (item, criteria) in plan.tests() {
                    let quantity = item
                        .target
                        .body_json
                        .get("quantity")
                        .and_then(|value| value.as_i64());
                    let observation = world.respond(item.target.method, &item.target.url, quantity);
                    let verdict = criteria.evaluate(&observation);
                    inputs.push_back(Input::TestProgressed {
                        effect,
                        test_id: item.test_id.clone(),
                        status: if verdict.passed {
                            TestStatus::Pass
                        } else {
                            TestStatus::Fail
                        },
                        details: Some(verdict.explanation),
                    });
                }
                inputs.push_back(Input::RunFinished {
                    effect,
                    result: Ok(()),
                });
            }
            Effect::CancelRun { effect } => println!("        cancel {effect}"),
            // The engine's polling timer asks for a read; the simulated world answers at once.
            Effect::SampleSignals { .. } => {
                inputs.push_back(Input::SignalSampled(world.sample(now)))
            }
            other => println!("        unhandled effect {other:?}"),
        }
    }
}
