//! Scenarios of the engine's own polling with a fake clock and a simulated service whose counters the engine reads
//! over the windows it asks for: adaptive confirmation, recovery judged on measurements taken after the fix (with a
//! 5-minute detection window that still holds the outage), an immediate rerun on improvement, inconclusive checks
//! up to "needs a human", and a hung service.

use std::time::Duration;

use fixloop_contract::chrono::{DateTime, TimeDelta, Utc};
use fixloop_contract::{IncidentState, TimelineKind, WsMessage};
use fixloop_core::IncidentId;
use fixloop_core::engine::{Config, Effect, Input, PortFailure, SignalSample};

use crate::engine_harness::{BASE_URL, Harness, valid_plan};
use crate::shop::shop_spec;

/// A service with steady traffic whose error ratio is `broken_ratio` while broken, read like the scrape source does:
/// the increase of its counters since the oldest earlier read within the window (or the newest earlier one).
struct World {
    requests_per_second: f64,
    broken_ratio: f64,
    /// `[from, to)` spans during which the service is broken.
    broken: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// When it was read (scraped).
    scrapes: Vec<DateTime<Utc>>,
}

impl World {
    fn new(requests_per_second: f64) -> Self {
        Self {
            requests_per_second,
            broken_ratio: 0.5,
            broken: Vec::new(),
            scrapes: Vec::new(),
        }
    }

    fn break_at(&mut self, at: DateTime<Utc>) {
        self.broken.push((at, None));
    }

    fn fix_at(&mut self, at: DateTime<Utc>) {
        if let Some(span) = self.broken.last_mut() {
            span.1 = Some(at);
        }
    }

    /// The sample the scrape source gives when read at `now` over `window`.
    fn read(&mut self, now: DateTime<Utc>, window: Duration) -> SignalSample {
        let reach = now - TimeDelta::from_std(window).unwrap_or_default();
        let baseline = self
            .scrapes
            .iter()
            .copied()
            .find(|at| *at >= reach)
            .or_else(|| self.scrapes.last().copied());
        self.scrapes.push(now);
        match baseline {
            Some(from) => self.sample(from, now),
            // The first read has no baseline: no data.
            None => self.sample(now, now),
        }
    }

    /// The increase of the counters between `from` and `now`.
    fn sample(&self, from: DateTime<Utc>, now: DateTime<Utc>) -> SignalSample {
        let seconds =
            |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_milliseconds().max(0) as f64 / 1000.0;
        let total = seconds(from, now);
        let broken: f64 = self
            .broken
            .iter()
            .map(|(start, end)| {
                let start = (*start).max(from);
                let end = end.unwrap_or(now).min(now);
                if end > start {
                    seconds(start, end)
                } else {
                    0.0
                }
            })
            .sum();
        let requests = (total * self.requests_per_second).round() as u64;
        let errors = broken * self.requests_per_second * self.broken_ratio;
        SignalSample {
            at: now,
            error_rate: (requests > 0).then(|| (errors / requests as f64).min(1.0)),
            p95_latency_ms: (requests > 0).then_some(80.0),
            top_error: (errors > 0.0).then(|| "HTTP 500 POST /checkout".to_owned()),
            requests,
        }
    }
}

/// Moves the clock to the engine's next read (firing the timers on the way) and returns the window it asked for.
fn next_read(h: &mut Harness) -> Duration {
    for _ in 0..50 {
        let mark = h.mark();
        let due = h
            .engine
            .poll_timeout()
            .expect("the polling timer is always armed");
        h.advance_to(due.max(h.now));
        let asked = h
            .effects_since(mark)
            .iter()
            .find_map(|effect| match effect {
                Effect::SampleSignals { window } => Some(*window),
                _ => None,
            });
        if let Some(window) = asked {
            return window;
        }
    }
    panic!("no read was asked for");
}

/// Answers the engine's next read from `world`; returns the window.
fn poll(h: &mut Harness, world: &mut World) -> Duration {
    let window = next_read(h);
    let sample = world.read(h.now, window);
    h.ok(Input::SignalSampled(sample));
    window
}

/// Every published `system.status` so far says HEALTHY only with an error rate at or below the trigger.
fn assert_healthy_never_shows_a_breach(h: &Harness, trigger_percent: f64) {
    for message in Harness::published(&h.effects) {
        if let WsMessage::SystemStatus(status) = message {
            assert!(
                status.status != IncidentState::Healthy || status.error_rate_5m <= trigger_percent,
                "HEALTHY published with {}%",
                status.error_rate_5m
            );
        }
    }
    let status = h.engine.status();
    assert!(status.status != IncidentState::Healthy || status.error_rate_5m <= trigger_percent);
}

fn timeline(h: &Harness, incident: &str, kind: TimelineKind) -> Vec<String> {
    h.engine
        .incident_history(&IncidentId::new(incident))
        .expect("history")
        .timeline
        .into_iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| entry.summary)
        .collect()
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

#[test]
fn the_engine_polls_at_its_interval_over_the_time_since_the_previous_measurement() {
    let mut h = Harness::demo();
    let mut world = World::new(15.0);
    let mut reads = Vec::new();
    for _ in 0..5 {
        poll(&mut h, &mut world);
        reads.push(h.now);
    }
    for pair in reads.windows(2) {
        assert_eq!(seconds_between(pair[0], pair[1]), 1.0, "{reads:?}");
    }
    // Each window reaches back to the previous read, plus a slack under the confirmation delay.
    let window = next_read(&mut h);
    assert!(
        window >= Duration::from_secs(1) && window < Duration::from_millis(1400),
        "{window:?}"
    );
}

#[test]
fn a_hot_measurement_is_confirmed_a_third_of_an_interval_later() {
    let mut h = Harness::demo();
    let mut world = World::new(15.0);
    for _ in 0..3 {
        poll(&mut h, &mut world);
    }
    world.break_at(h.now + TimeDelta::milliseconds(400));
    poll(&mut h, &mut world);
    assert_eq!(
        h.status(),
        IncidentState::Healthy,
        "one hot measurement is not an incident"
    );
    let first_hot = h.now;
    poll(&mut h, &mut world);
    assert_eq!(
        h.status(),
        IncidentState::IncidentActive,
        "the confirmation opened it"
    );
    // The confirmation came `confirm_delay` after the first hot read, not a full interval later.
    assert_eq!(seconds_between(first_hot, h.now), 0.333);
    assert_healthy_never_shows_a_breach(&h, 5.0);
}

#[test]
fn bug_on_to_incident_created_within_1_2_seconds_in_the_demo() {
    // The demo's traffic: 15 requests a second, checkout failing half the time while the bug is on.
    let mut times = Vec::new();
    // The toggle lands anywhere between two reads, including just before a read is due (990 ms).
    for offset_ms in [0, 150, 300, 450, 600, 750, 900, 990] {
        let mut h = Harness::demo();
        let mut world = World::new(15.0);
        for _ in 0..3 {
            poll(&mut h, &mut world);
        }
        h.advance_ms(offset_ms);
        world.break_at(h.now);
        let bug_on = h.now;
        h.ok(Input::ServiceChanged { repair: false });
        while h.status() == IncidentState::Healthy {
            poll(&mut h, &mut world);
            assert!(seconds_between(bug_on, h.now) < 5.0, "no incident");
        }
        // The context answers at once (a local scrape): incident.created now.
        h.context_ok();
        let created = Harness::published(&h.effects)
            .iter()
            .any(|message| matches!(message, WsMessage::IncidentCreated(_)));
        assert!(created);
        times.push(seconds_between(bug_on, h.now));
        assert_healthy_never_shows_a_breach(&h, 5.0);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    assert!(median <= 1.2, "median {median} s over {times:?}");
    // The read after the toggle comes `confirm_delay` later, whatever the phase of the polling: never a full
    // interval of waiting.
    let slowest = times[times.len() - 1];
    assert!(slowest <= 1.0, "slowest {slowest} s over {times:?}");
}

#[test]
fn recovery_with_a_five_minute_window_is_judged_on_measurements_after_the_fix() {
    // serve's defaults: 3 s polling, a 5-minute detection window, 3 healthy measurements of at least 20 requests.
    let mut h = Harness::new(Config::seed(shop_spec(BASE_URL), "t"));
    let mut world = World::new(10.0);
    for _ in 0..5 {
        poll(&mut h, &mut world);
    }
    world.break_at(h.now);
    while h.status() == IncidentState::Healthy {
        poll(&mut h, &mut world);
    }
    h.context_ok();
    h.propose(valid_plan());
    // The first run fails: the bug is still there.
    h.verdicts(&["t1-checkout-valid"]);
    assert_eq!(h.status(), IncidentState::IncidentActive);
    for _ in 0..3 {
        poll(&mut h, &mut world);
    }
    // The fix (a deploy outside FixLoop). A 5-minute average would still hold the outage for minutes.
    world.fix_at(h.now + TimeDelta::milliseconds(500));
    let fixed = h.now + TimeDelta::milliseconds(500);
    let five_minutes = world.sample(
        fixed - TimeDelta::seconds(270),
        fixed + TimeDelta::seconds(30),
    );
    assert!(
        five_minutes.error_rate.is_some_and(|rate| rate > 0.01),
        "the window holds the outage"
    );
    let runs_before = Harness::runs_started(&h.effects);
    let mut rerun_at = None;
    let mut windows = Vec::new();
    while h.status() != IncidentState::Recovered {
        windows.push(poll(&mut h, &mut world));
        if rerun_at.is_none() && Harness::runs_started(&h.effects) > runs_before {
            rerun_at = Some(h.now);
            h.pass_all();
        }
        assert!(
            seconds_between(fixed, h.now) < 60.0,
            "not RECOVERED a minute after the fix"
        );
    }
    let recovered_after = seconds_between(fixed, h.now);
    assert!(
        recovered_after <= 30.0,
        "RECOVERED {recovered_after} s after the fix"
    );
    // The rerun started when the signals turned healthy, not on the 30 s rerun timer.
    let rerun_after = seconds_between(fixed, rerun_at.expect("a rerun"));
    assert!(rerun_after <= 7.0, "rerun {rerun_after} s after the fix");
    // Every measurement covered a few seconds, never the detection window.
    assert!(
        windows
            .iter()
            .all(|window| *window < Duration::from_secs(10)),
        "{windows:?}"
    );
    // The status shows recent signals, not the 5-minute average.
    assert!(
        h.engine.status().error_rate_5m < 1.0,
        "{}",
        h.engine.status().error_rate_5m
    );
}

#[test]
fn healthy_signals_start_a_rerun_at_once_after_a_failed_run() {
    let mut h = Harness::demo();
    let mut world = World::new(15.0);
    poll(&mut h, &mut world);
    world.break_at(h.now);
    h.open_and_plan();
    h.verdicts(&["t1-checkout-valid"]);
    poll(&mut h, &mut world);
    let runs = Harness::runs_started(&h.effects);
    world.fix_at(h.now);
    // The first measurement after the fix is healthy: a rerun starts with it, the rerun timer (5 s) is not waited.
    let fixed = h.now;
    while Harness::runs_started(&h.effects) == runs {
        poll(&mut h, &mut world);
        assert!(
            seconds_between(fixed, h.now) < 5.0,
            "waited for the rerun timer"
        );
    }
    assert_eq!(seconds_between(fixed, h.now), 1.0);
}

#[test]
fn probes_that_pass_again_start_a_rerun_at_once() {
    // No periodic rerun in the way.
    let mut h = Harness::new(Config {
        rerun_interval: Duration::from_secs(600),
        ..crate::engine_harness::demo_config()
    });
    h.open_and_plan();
    h.verdicts(&["t1-checkout-valid"]);
    let probe = |h: &mut Harness| {
        h.effects.iter().rev().find_map(|effect| match effect {
            Effect::ProbeService { effect } => Some(*effect),
            _ => None,
        })
    };
    for _ in 0..3 {
        next_read(&mut h);
        h.ok(Input::SignalSourceFailed {
            failure: PortFailure::Unavailable("connection refused".to_owned()),
        });
    }
    let effect = probe(&mut h).expect("blind: probing");
    h.ok(Input::ServiceProbed {
        effect,
        result: Ok(SignalSample {
            at: h.now,
            error_rate: Some(1.0),
            p95_latency_ms: None,
            top_error: Some("GET /health -> connection refused".to_owned()),
            requests: 3,
        }),
    });
    let runs = Harness::runs_started(&h.effects);
    for _ in 0..3 {
        next_read(&mut h);
        h.ok(Input::SignalSourceFailed {
            failure: PortFailure::Unavailable("connection refused".to_owned()),
        });
    }
    let effect = probe(&mut h).expect("probing again");
    h.ok(Input::ServiceProbed {
        effect,
        result: Ok(SignalSample {
            at: h.now,
            error_rate: Some(0.0),
            p95_latency_ms: Some(20.0),
            top_error: None,
            requests: 3,
        }),
    });
    assert_eq!(
        Harness::runs_started(&h.effects),
        runs + 1,
        "the service answers again: rerun at once\n{}",
        h.trace()
    );
}

#[test]
fn inconclusive_checks_reach_needs_a_human_and_never_recovered() {
    let config = Config {
        inconclusive_limit: 3,
        ..crate::engine_harness::demo_config()
    };
    let mut h = Harness::new(config);
    let mut silent = World::new(0.0);
    poll(&mut h, &mut silent);
    h.open_and_plan();
    h.pass_all();
    assert_eq!(h.status(), IncidentState::Validating);
    // No traffic at all: each measurement extends to `max_measurement` (5 s), then ends inconclusive.
    let mut windows = Vec::new();
    while !h.engine.needs_human() {
        windows.push(poll(&mut h, &mut silent));
        if h.engine
            .current_run()
            .is_some_and(|run| run.status == fixloop_contract::RunStatus::Running)
        {
            h.pass_all();
        }
        assert_ne!(
            h.status(),
            IncidentState::Recovered,
            "no data is never recovery"
        );
        assert!(windows.len() < 40, "never needed a human");
    }
    assert!(
        windows
            .iter()
            .any(|window| *window > Duration::from_secs(4)),
        "measurements extended: {windows:?}"
    );
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(blocker.starts_with("needs a human"), "{blocker}");
    assert!(blocker.contains("no traffic"), "{blocker}");
    let inconclusive = timeline(&h, "inc-t-1", TimelineKind::RecoveryInconclusive);
    assert_eq!(
        inconclusive.len(),
        1,
        "one entry when the run of inconclusive checks starts: {inconclusive:?}"
    );
    assert!(inconclusive[0].contains("no traffic"), "{inconclusive:?}");
    let needs = timeline(&h, "inc-t-1", TimelineKind::NeedsHuman);
    assert_eq!(needs.len(), 1, "{needs:?}");
    assert!(
        needs[0].contains("3 inconclusive checks in a row"),
        "{needs:?}"
    );

    // Traffic comes back, healthy: the gate judges again and recovers.
    let mut healthy = World::new(15.0);
    while h.status() != IncidentState::Recovered {
        poll(&mut h, &mut healthy);
        if h.engine
            .current_run()
            .is_some_and(|run| run.status == fixloop_contract::RunStatus::Running)
        {
            h.pass_all();
        }
        assert!(h.engine.current_run().is_some());
    }
    assert!(!h.engine.needs_human());
}

#[test]
fn a_degraded_source_is_inconclusive_too() {
    let config = Config {
        inconclusive_limit: 4,
        ..crate::engine_harness::demo_config()
    };
    let mut h = Harness::new(config);
    h.open_and_plan();
    h.pass_all();
    for _ in 0..4 {
        next_read(&mut h);
        h.ok(Input::SignalSourceFailed {
            failure: PortFailure::InvalidResponse(
                "metrics lack family http_requests_total".to_owned(),
            ),
        });
    }
    assert!(h.engine.needs_human());
    let blocker = h.engine.recovery_blocker().expect("blocked");
    assert!(blocker.contains("inconclusive"), "{blocker}");
    assert!(blocker.contains("http_requests_total"), "{blocker}");
    assert_eq!(h.status(), IncidentState::Validating);
}

#[test]
fn a_low_traffic_service_is_judged_over_an_extended_measurement() {
    // Two requests a second under serve's 20-request minimum: each measurement extends to about 10 s.
    let mut h = Harness::new(Config::seed(shop_spec(BASE_URL), "t"));
    let mut world = World::new(2.0);
    h.open_and_plan();
    h.pass_all();
    let mut windows = Vec::new();
    while h.status() != IncidentState::Recovered {
        windows.push(poll(&mut h, &mut world));
        if h.engine
            .current_run()
            .is_some_and(|run| run.status == fixloop_contract::RunStatus::Running)
        {
            h.pass_all();
        }
        assert!(
            windows.len() < 40,
            "never judged: {:?}",
            h.engine.recovery_blocker()
        );
    }
    assert!(
        windows
            .iter()
            .any(|window| *window >= Duration::from_secs(9)),
        "{windows:?}"
    );
}

#[test]
fn a_hung_service_opens_an_incident_within_three_polls_and_the_timeout() {
    // serve's defaults: 3 s polling; the driver's reads and probes time out after 5 s.
    let timeout_ms = 5_000;
    let mut h = Harness::new(Config::seed(shop_spec(BASE_URL), "t"));
    let mut world = World::new(10.0);
    for _ in 0..3 {
        poll(&mut h, &mut world);
    }
    // SIGSTOP right after a read: the worst case, a whole interval before the next read starts.
    let hung = h.now;
    next_read(&mut h);
    h.advance_ms(timeout_ms);
    h.ok(Input::SignalSourceFailed {
        failure: PortFailure::Timeout,
    });
    let probe = h.effects.iter().rev().find_map(|effect| match effect {
        Effect::ProbeService { effect } => Some(*effect),
        _ => None,
    });
    let effect = probe.expect("a timed-out read probes at once");
    h.advance_ms(timeout_ms);
    h.ok(Input::ServiceProbed {
        effect,
        result: Err(PortFailure::Timeout),
    });
    assert_eq!(h.status(), IncidentState::IncidentActive);
    let elapsed = seconds_between(hung, h.now);
    assert!(
        elapsed <= 3.0 * 3.0 + 5.0,
        "incident {elapsed} s after the hang"
    );
    let card = h.engine.current_incident().expect("open");
    assert!(card.title.contains("probes failing"), "{}", card.title);
    assert_healthy_never_shows_a_breach(&h, 5.0);
}

#[test]
fn a_few_failed_requests_are_not_shown_as_a_healthy_100_percent() {
    // A synthetic source with three probes per read, all failing: hot (even 17 more passing requests would leave
    // 15%), so confirmed and opened; HEALTHY is never published with 100%.
    let mut h = Harness::new(Config::seed(shop_spec(BASE_URL), "t"));
    for _ in 0..8 {
        next_read(&mut h);
        let now = h.now;
        h.ok(Input::SignalSampled(SignalSample {
            at: now,
            error_rate: Some(1.0),
            p95_latency_ms: Some(5000.0),
            top_error: Some("GET /health -> no answer in time".to_owned()),
            requests: 3,
        }));
        if h.status() != IncidentState::Healthy {
            break;
        }
    }
    assert_eq!(h.status(), IncidentState::IncidentActive);
    assert_healthy_never_shows_a_breach(&h, 5.0);
}
