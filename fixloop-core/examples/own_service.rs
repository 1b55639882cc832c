//! Embeds the core for a service of your own: a payments API described with plain core types (no profile file,
//! no server, no async runtime), driven from HEALTHY to RECOVERED with a plain `loop` and a simulated clock.
//!
//! It shows what an embedder writes: a [`ServiceSpec`] (base URL, journeys, coverage rules, a secret placeholder),
//! a driver loop that carries out each effect (here by simulating the service), and the answers fed back as inputs.
//! The rule planner picks five of the six journeys, the one on the failing route first.
//!
//! Run with `cargo run -p fixloop-core --example own_service`.

use std::collections::{BTreeMap, VecDeque};

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{
    HttpMethod, IncidentState, JsonObject, PlanItemType, TestStatus, WsMessage,
};
use fixloop_core::engine::{Config, Effect, Engine, IncidentContext, Input, SignalSample};
use fixloop_core::policy::{CoverageCheck, CoverageRule};
use fixloop_core::{Journey, Observation, ServiceSpec, rule_plan};

/// The payments API: `POST /charges` breaks while `broken`.
struct Payments {
    broken: bool,
}

impl Payments {
    fn respond(
        &self,
        method: HttpMethod,
        url: &str,
        headers: &BTreeMap<String, String>,
    ) -> Observation {
        let path = url.trim_start_matches("https://payments.internal");
        let authorized = headers
            .get("authorization")
            .is_some_and(|value| value == "Bearer ${env:PAYMENTS_TOKEN}");
        let (status, body) = match (method, path) {
            (_, "/livez") => (200, r#"{"live":true}"#),
            (_, _) if !authorized => (401, r#"{"error":"unauthenticated"}"#),
            (HttpMethod::Post, "/charges") if self.broken => (502, r#"{"error":"acquirer down"}"#),
            (HttpMethod::Post, "/charges") => (201, r#"{"charge_id":"ch_1","state":"captured"}"#),
            (HttpMethod::Post, "/charges/invalid") => (400, r#"{"error":"amount_required"}"#),
            (HttpMethod::Get, "/charges/ch_1") => (200, r#"{"charge_id":"ch_1"}"#),
            (HttpMethod::Get, "/balance") => (200, r#"{"available":1200}"#),
            (HttpMethod::Get, "/payouts") => (200, r#"{"payouts":[]}"#),
            _ => (404, "{}"),
        };
        Observation {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_owned(),
            latency_ms: 30,
        }
    }
}

fn journey(id: &str, method: HttpMethod, path: &str, priority: u32, criteria: &str) -> Journey {
    Journey {
        id: id.to_owned(),
        name: format!("{} {path}", method.as_str()),
        kind: PlanItemType::Api,
        method,
        path: path.to_owned(),
        // The runner substitutes the secret at send time; the core, the plan and the wire keep the placeholder.
        headers: BTreeMap::from([(
            "authorization".to_owned(),
            "Bearer ${env:PAYMENTS_TOKEN}".to_owned(),
        )]),
        body: JsonObject::new(),
        pass_criteria: criteria.to_owned(),
        priority,
        what_it_checks: format!("{} {path} answers as documented", method.as_str()),
        route: None,
    }
}

fn payments_spec() -> ServiceSpec {
    let mut spec = ServiceSpec::new("payments", "https://payments.internal");
    spec.description = "Charges cards and pays out merchants.".to_owned();
    spec.policy.secrets = vec!["PAYMENTS_TOKEN".to_owned()];
    spec.policy.coverage = vec![CoverageRule {
        name: "invalid charge is refused".to_owned(),
        path: "/charges/invalid".to_owned(),
        method: Some(HttpMethod::Post),
        check: CoverageCheck::ExpectsClientError,
    }];
    spec.journeys = vec![
        journey("livez", HttpMethod::Get, "/livez", 1, "status == 200"),
        journey(
            "balance",
            HttpMethod::Get,
            "/balance",
            2,
            "status == 200 && json.available >= 0",
        ),
        journey("payouts", HttpMethod::Get, "/payouts", 3, "status == 200"),
        journey(
            "charge-read",
            HttpMethod::Get,
            "/charges/ch_1",
            4,
            "status == 200",
        ),
        journey(
            "charge",
            HttpMethod::Post,
            "/charges",
            5,
            "status == 201 && json.state == \"captured\"",
        ),
        journey(
            "charge-invalid",
            HttpMethod::Post,
            "/charges/invalid",
            9,
            "status == 400",
        ),
    ];
    spec
}

fn main() {
    let start: DateTime<Utc> = DateTime::UNIX_EPOCH + TimeDelta::days(20_000);
    let mut engine = Engine::new(Config::short_windows(payments_spec(), "example"), start);
    let mut payments = Payments { broken: false };
    let mut now = start;
    let mut inputs: VecDeque<Input> = VecDeque::new();
    let mut recovered = false;

    for tick in 0..120 {
        // Timers first (calling it early is harmless), then drain, as the driving contract says.
        engine.handle_timeout(now);
        carry_out(
            &mut engine,
            &payments,
            now,
            &mut inputs,
            &mut recovered,
            start,
        );
        // The operator's script: the acquirer fails at 3 s and comes back at 12 s.
        payments.broken = (3..12).contains(&tick);
        while let Some(input) = inputs.pop_front() {
            // Inputs about the past never fail except an operator's run request; this loop sends none.
            let _ = engine.handle_input(now, input);
            carry_out(
                &mut engine,
                &payments,
                now,
                &mut inputs,
                &mut recovered,
                start,
            );
        }
        now += TimeDelta::seconds(1);
    }
    assert!(
        recovered,
        "the payments incident went all the way to RECOVERED"
    );
}

/// Drains every effect and carries it out; answers become the next inputs.
fn carry_out(
    engine: &mut Engine,
    payments: &Payments,
    now: DateTime<Utc>,
    inputs: &mut VecDeque<Input>,
    recovered: &mut bool,
    start: DateTime<Utc>,
) {
    while let Some(effect) = engine.poll_effect() {
        match effect {
            Effect::Publish(envelope) => match envelope.message {
                WsMessage::SystemStatus(status) => {
                    println!("[+{:>2}s] {:?}", (now - start).num_seconds(), status.status);
                    *recovered |= status.status == IncidentState::Recovered;
                }
                WsMessage::PlanGenerated(generated) => {
                    let ids: Vec<&str> = generated
                        .plan
                        .items
                        .iter()
                        .map(|item| item.test_id.as_str())
                        .collect();
                    println!("        plan: {}", ids.join(", "));
                }
                other => println!("        ws {}", other.kind()),
            },
            Effect::FetchContext { effect, .. } => inputs.push_back(Input::ContextFetched {
                effect,
                result: Ok(IncidentContext {
                    error_rate: 0.4,
                    p95_latency_ms: 40.0,
                    top_error: Some("POST /charges -> 502 acquirer down".to_owned()),
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
                for (item, criteria) in plan.tests() {
                    let observed = payments.respond(
                        item.target.method,
                        &item.target.url,
                        &item.target.headers,
                    );
                    let verdict = criteria.evaluate(&observed);
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
            Effect::CancelRun { .. } => {}
            // The engine's polling timer asks for a read of the payments API's signals.
            Effect::SampleSignals { .. } => inputs.push_back(Input::SignalSampled(SignalSample {
                at: now,
                error_rate: Some(if payments.broken { 0.4 } else { 0.0 }),
                p95_latency_ms: Some(40.0),
                top_error: payments
                    .broken
                    .then(|| "POST /charges -> 502 acquirer down".to_owned()),
                requests: 200,
            })),
            // The metrics never fail in this simulation; a blind source would be probed here.
            Effect::ProbeService { effect } => inputs.push_back(Input::ServiceProbed {
                effect,
                result: Ok(SignalSample {
                    at: now,
                    error_rate: Some(0.0),
                    p95_latency_ms: Some(30.0),
                    top_error: None,
                    requests: 1,
                }),
            }),
            // This profile declares no remediation strategy, so the engine never asks for an action.
            Effect::ExecuteAction { effect, .. } => inputs.push_back(Input::ActionFinished {
                effect,
                result: Ok(()),
            }),
            Effect::CancelAction { .. } => {}
            // No model here: the rules pick.
            Effect::ChooseAction { effect, .. } => inputs.push_back(Input::ActionChosen {
                effect,
                action: None,
                reason: "no model in this example".to_owned(),
            }),
            Effect::Notify(notification) => println!("        notify: {}", notification.summary),
        }
    }
}
