//! Playing a scenario: the fake ports it scripts, the demo started over them with scaled timing, and the player
//! task that applies each step to the fakes at its (scaled) time.
//!
//! The steps change the fakes' sticky state (the signal reading or cycle, the simulated shop's bug, forced
//! verdicts, held runs, delays); the driver reads the ports when the engine asks, as it would real adapters. Steps
//! at time 0 are applied before the orchestrator starts, so its first sample is already the script's.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use fixloop_adapters::fake::{
    FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner, PlanDefect, erroring_reading,
    healthy_reading,
};
use fixloop_adapters::{AdapterError, ErrorKind, SignalReading};
use fixloop_contract::TestStatus;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::file::{PlannerAnswer, Preset, SampleFile, SignalsFile, StepFile};
use super::{Scenario, Speed};
use crate::app::{DemoOptions, RunningDemo, StartError, start_demo_tuned};
use crate::config::Config;
use crate::runtime::driver::Ports;

/// How long a test of a run takes unless a step says otherwise, in story seconds.
const DEFAULT_VERDICT_DELAY_SECS: f64 = 0.3;

/// Options of [`start_scenario`].
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    /// Address both servers bind to.
    pub bind: IpAddr,
    /// Orchestrator port; 0 picks an ephemeral port.
    pub port: u16,
    /// Demo service port; 0 picks an ephemeral port.
    pub demo_port: u16,
    /// How much faster than written the story plays.
    pub speed: Speed,
    /// The server's settings (webhooks, CORS, body limits, API tokens); its vendor keys and engine tunables are not
    /// used.
    pub config: Config,
    /// Start without API tokens on a non-loopback address (`--insecure-no-auth`).
    pub insecure_no_auth: bool,
}

impl ScenarioOptions {
    /// Ephemeral ports on loopback, the empty environment's settings, at `speed` (for tests).
    #[must_use]
    pub fn ephemeral(speed: Speed) -> Self {
        let demo = DemoOptions::ephemeral();
        Self {
            bind: demo.bind,
            port: 0,
            demo_port: 0,
            speed,
            config: demo.config,
            insecure_no_auth: false,
        }
    }
}

/// The fakes a scenario scripts, shared with the driver (tests read their recorded calls).
#[derive(Debug, Clone)]
pub struct ScenarioFakes {
    /// The signal source.
    pub signals: Arc<FakeSignalSource>,
    /// FixLoop's own probes of the service (used when the signals are unavailable): the last reading scripted.
    pub prober: Arc<FakeSignalSource>,
    /// The configured planner (the scenario's `planner.answers`, then the rule plan).
    pub planner: Arc<FakePlanner>,
    /// The rule planner the engine falls back to.
    pub rule_planner: Arc<FakePlanner>,
    /// The test runner (verdicts from the simulated shop, forced failures, holds).
    pub runner: Arc<FakeTestRunner>,
}

/// A scenario playing: the demo servers over the scenario's fakes, and the player task.
#[derive(Debug)]
pub struct RunningScenario {
    /// The orchestrator's base URL.
    pub orchestrator_url: String,
    /// The demo service's base URL.
    pub demo_url: String,
    /// The scripted fakes.
    pub fakes: ScenarioFakes,
    demo: RunningDemo,
    stop: watch::Sender<bool>,
    player: JoinHandle<()>,
}

/// Starts the demo over the scenario's fakes with its timing divided by `options.speed`, and plays the steps.
///
/// # Errors
///
/// [`StartError`] when a port cannot be bound.
pub async fn start_scenario(
    scenario: &Scenario,
    options: ScenarioOptions,
) -> Result<RunningScenario, StartError> {
    let speed = options.speed;
    let fakes = ScenarioFakes::new(speed);
    for answer in &scenario.file.planner.answers {
        match answer {
            PlannerAnswer::TooFewTests => fakes.planner.push_defect(PlanDefect::TooFewTests),
            PlannerAnswer::OffAllowlist => fakes.planner.push_defect(PlanDefect::OffAllowlist),
            PlannerAnswer::Unavailable => fakes.planner.push_error(AdapterError::unavailable(
                "scenario: the planner is unavailable",
            )),
        }
    }
    if let Some(delay) = scenario.file.planner.delay_secs {
        fakes.planner.set_delay(speed.secs(delay));
    }
    let (initial, later): (Vec<StepFile>, Vec<StepFile>) = scenario
        .file
        .steps
        .iter()
        .cloned()
        .partition(|step| step.at_secs <= 0.0);
    for step in &initial {
        fakes.apply(step, speed, &scenario.file.name);
    }
    let ports = Ports {
        signals: fakes.signals.clone(),
        planner: fakes.planner.clone(),
        rule_planner: fakes.rule_planner.clone(),
        runner: fakes.runner.clone(),
        copilot: Arc::new(FakeCopilot::new()),
        prober: fakes.prober.clone(),
        context: None,
    };
    let mut config = options.config;
    // The shop's metrics are not the story's: nothing is submitted to a vendor while a scenario plays.
    config.datadog = None;
    let demo_options = DemoOptions {
        bind: options.bind,
        port: options.port,
        demo_port: options.demo_port,
        config,
        traffic: false,
        ports: Some(ports),
        insecure_no_auth: options.insecure_no_auth,
        remediate: false,
        environment: None,
    };
    let tuned = scenario.clone();
    let tune = Arc::new(move |driver: &mut crate::runtime::driver::DriverConfig| {
        tuned.tune(driver, speed);
    });
    let demo = start_demo_tuned(demo_options, Some(tune)).await?;
    let start = Instant::now();
    let (stop, stopped) = watch::channel(false);
    let player = tokio::spawn(play(
        scenario.file.name.clone(),
        later,
        scenario.file.end_secs,
        fakes.clone(),
        speed,
        start,
        stopped,
    ));
    tracing::info!(scenario = %scenario.file.name, origin = %scenario.origin, %speed, "scenario started");
    Ok(RunningScenario {
        orchestrator_url: demo.orchestrator_url.clone(),
        demo_url: demo.demo_url.clone(),
        fakes,
        demo,
        stop,
        player,
    })
}

impl RunningScenario {
    /// Stops the player and every server task, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // The player only sleeps and sets fakes; it stops at once when told.
        let _ = self.player.await;
        self.demo.shutdown().await;
    }

    /// Waits until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl ScenarioFakes {
    /// Fresh fakes: healthy signals, the rule plan, a healthy shop, the default verdict delay at `speed`.
    fn new(speed: Speed) -> Self {
        let runner = Arc::new(FakeTestRunner::new());
        runner.set_delay(speed.secs(DEFAULT_VERDICT_DELAY_SECS));
        Self {
            signals: Arc::new(FakeSignalSource::new()),
            prober: Arc::new(FakeSignalSource::new()),
            planner: Arc::new(FakePlanner::new()),
            rule_planner: Arc::new(FakePlanner::new()),
            runner,
        }
    }

    /// Applies one step: each field it names replaces what the previous steps set.
    fn apply(&self, step: &StepFile, speed: Speed, scenario: &str) {
        if let Some(note) = &step.note {
            tracing::info!(scenario, at_secs = step.at_secs, "{note}");
        }
        match &step.signals {
            None => {}
            Some(SignalsFile::Unavailable(_)) => {
                self.signals.set_failure(Some(ErrorKind::Unavailable));
            }
            Some(SignalsFile::Sample(sample)) => {
                let reading = reading(sample);
                self.signals.set_failure(None);
                self.signals.set_reading(reading.clone());
                self.prober.set_reading(reading);
            }
            Some(SignalsFile::Cycle(samples)) => {
                let readings: Vec<SignalReading> = samples.iter().map(reading).collect();
                self.signals.set_failure(None);
                self.signals.set_cycle(readings.clone());
                self.prober.set_cycle(readings);
            }
        }
        let model = self.runner.model();
        if let Some(bug) = step.bug {
            model.set_bug(bug);
        }
        if let Some(down) = step.down {
            model.set_down(down);
        }
        if let Some(fail) = &step.fail {
            self.runner.clear_results();
            for (test_id, details) in fail {
                self.runner
                    .set_result(test_id, TestStatus::Fail, Some(details));
            }
        }
        match step.hold_runs {
            Some(true) => self.runner.hold(),
            Some(false) => self.runner.release(),
            None => {}
        }
        if let Some(delay) = step.verdict_delay_secs {
            self.runner.set_delay(speed.secs(delay));
        }
    }
}

/// Applies each step at its scaled time after `start`, until the steps run out or `stopped` says stop.
async fn play(
    name: String,
    steps: Vec<StepFile>,
    end_secs: Option<f64>,
    fakes: ScenarioFakes,
    speed: Speed,
    start: Instant,
    mut stopped: watch::Receiver<bool>,
) {
    let stop = async move {
        // An error means the sender is gone, which also means stop.
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    for step in &steps {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep_until(start + speed.secs(step.at_secs)) => {
                fakes.apply(step, speed, &name);
            }
        }
    }
    if let Some(end) = end_secs {
        tokio::select! {
            () = &mut stop => {}
            () = tokio::time::sleep_until(start + speed.secs(end)) => {
                tracing::info!(scenario = %name, "scenario played to its end; the servers keep running");
            }
        }
    }
}

/// The reading of a sample.
fn reading(sample: &SampleFile) -> SignalReading {
    match sample {
        SampleFile::Preset(Preset::Healthy) => healthy_reading(),
        SampleFile::Preset(Preset::Erroring) => erroring_reading(),
        SampleFile::Reading(explicit) => SignalReading {
            error_rate: Some(explicit.error_rate_percent / 100.0),
            p95_latency_ms: explicit.p95_latency_ms,
            requests: explicit.requests,
            top_error: explicit.top_error.clone(),
            ..healthy_reading()
        },
    }
}
