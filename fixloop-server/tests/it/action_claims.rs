//! Fenced remediation actions (issue 24): the driver claims an action in the store under its lease before it carries
//! it out. A claim the store refuses as fenced means no executor call and a driver that stops; an action claimed
//! before is not carried out again (the proposal finishes failed, saying so); a claim that is recorded lets the
//! action run once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::fake::{
    FakeCopilot, FakeExecutor, FakePlanner, FakeSignalSource, FakeStore, FakeTestRunner,
};
use fixloop_adapters::{
    ActionClaim, Claimed, JournalEntry, Lease, Leases, ReplicaBeat, ReplicaRecord, SoleLeases,
    Store, StoreError,
};
use fixloop_contract::{RemediationOutcome, RemediationProposal, RemediationState, SimulateMode};
use fixloop_core::IncidentId;
use fixloop_core::engine::{Config as EngineConfig, Snapshot};
use fixloop_core::remediation::{
    ActionSpec, IncidentMatch, RemediationMode, RemediationSpec, RiskTier, Strategy, StrategyStep,
};
use fixloop_server::runtime::ServiceHandle;
use fixloop_server::runtime::driver::{Driver, DriverConfig, Fence, Ports};
use fixloop_server::runtime::metrics::ServerMetrics;
use fixloop_server::runtime::stream::Sequence;
use tokio::sync::watch;

use crate::support::{FAKE_SERVICE_URL, WAIT};

const ACTION: &str = "payment-flag-off";

/// How the store answers the driver's claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// As the store decides (the fake store's claims).
    Store,
    /// Fenced: another replica took the lease.
    Fenced,
    /// Claimed before, by another holder.
    Taken,
}

/// Single-process leases whose claims answer as the test says, counting them.
#[derive(Debug)]
struct Gate {
    sole: SoleLeases,
    answer: Answer,
    claims: AtomicUsize,
    last: Mutex<Option<ActionClaim>>,
}

#[async_trait]
impl Leases for Gate {
    fn shared(&self) -> bool {
        false
    }

    async fn acquire(
        &self,
        service: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        self.sole.acquire(service, holder, ttl).await
    }

    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Option<Lease>, StoreError> {
        self.sole.renew(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.sole.release(lease).await
    }

    async fn append_fenced(&self, lease: &Lease, entry: JournalEntry) -> Result<(), StoreError> {
        self.sole.append_fenced(lease, entry).await
    }

    async fn save_snapshot_fenced(
        &self,
        lease: &Lease,
        seq: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        self.sole.save_snapshot_fenced(lease, seq, snapshot).await
    }

    async fn claim_action(
        &self,
        lease: &Lease,
        claim: &ActionClaim,
    ) -> Result<Claimed, StoreError> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().expect("not poisoned") = Some(claim.clone());
        match self.answer {
            Answer::Store => self.sole.claim_action(lease, claim).await,
            Answer::Fenced => Err(StoreError::Fenced {
                service: lease.service.clone(),
                epoch: lease.epoch,
            }),
            Answer::Taken => Ok(Claimed::Taken {
                holder: "replica-b".to_owned(),
                epoch: lease.epoch + 1,
            }),
        }
    }

    async fn heartbeat(
        &self,
        beat: &ReplicaBeat,
        live_within: Duration,
    ) -> Result<usize, StoreError> {
        self.sole.heartbeat(beat, live_within).await
    }

    async fn depart(&self, replica: &str) -> Result<(), StoreError> {
        self.sole.depart(replica).await
    }

    async fn replicas(&self, live_within: Duration) -> Result<Vec<ReplicaRecord>, StoreError> {
        self.sole.replicas(live_within).await
    }
}

/// An `auto` remediation whose one step (every incident) is safe: proposed after a failing run and carried out
/// at once, without an approval.
fn spec() -> RemediationSpec {
    RemediationSpec {
        mode: RemediationMode::Auto,
        actions: vec![ActionSpec {
            id: ACTION.to_owned(),
            executor: "http".to_owned(),
            description: "payment flag off (test)".to_owned(),
        }],
        strategies: vec![Strategy {
            kind: "payment-errors".to_owned(),
            matches: IncidentMatch::default(),
            steps: vec![StrategyStep {
                action: ACTION.to_owned(),
                tier: RiskTier::Safe,
                tiers_by_environment: std::collections::BTreeMap::new(),
                cooldown: Duration::ZERO,
                max_per_incident: 1,
                rank: 0,
            }],
        }],
        suppress_window: Duration::from_millis(200),
        judge_window: Duration::from_secs(10),
        ..RemediationSpec::default()
    }
}

struct Scene {
    handle: ServiceHandle,
    gate: Arc<Gate>,
    executor: Arc<FakeExecutor>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A driver journaling in a fake store under `gate`'s leases, with a fake executor, its checkout broken (every
/// run fails, so the safe step is proposed and executed).
async fn scene(answer: Answer) -> Scene {
    let store: Arc<dyn Store> = Arc::new(FakeStore::new());
    let gate = Arc::new(Gate {
        sole: SoleLeases::new(Arc::clone(&store)),
        answer,
        claims: AtomicUsize::new(0),
        last: Mutex::new(None),
    });
    let runner = Arc::new(FakeTestRunner::new());
    runner.model().set_bug(true);
    let ports = Ports {
        signals: Arc::new(FakeSignalSource::new()),
        planner: Arc::new(FakePlanner::new()),
        rule_planner: Arc::new(fixloop_adapters::RulePlanner),
        runner,
        copilot: Arc::new(FakeCopilot::new()),
        prober: Arc::new(FakeSignalSource::new()),
        context: None,
    };
    let mut engine = EngineConfig {
        poll_interval: Duration::from_secs(3600),
        confirm_delay: Duration::from_secs(3600),
        ..EngineConfig::short_windows(
            fixloop_server::profile::demo_profile(FAKE_SERVICE_URL).spec,
            "test",
        )
    };
    engine.remediation = spec();
    let config = DriverConfig {
        engine,
        signal_timeout: Duration::from_secs(5),
        websocket_queue: 256,
        origin: None,
    };
    let lease = gate
        .acquire(&config.engine.service.name, "replica-a", Duration::MAX)
        .await
        .expect("acquire")
        .expect("a sole lease");
    let fence = Fence {
        leases: Arc::clone(&gate) as Arc<dyn Leases>,
        lease,
    };
    let (driver, handle) = Driver::restore_fenced(
        config,
        ports,
        Arc::new(ServerMetrics::default()),
        store,
        Sequence::new(),
        None,
        fence,
    )
    .await
    .expect("restored");
    let executor = Arc::new(FakeExecutor::new().with_action(ACTION, &[]));
    let driver = driver.with_executor(Arc::clone(&executor) as Arc<dyn fixloop_adapters::Executor>);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(driver.run(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    }));
    Scene {
        handle,
        gate,
        executor,
        stop,
        task,
    }
}

/// Opens an incident and starts a (failing) run once its plan is ready (unless the engine already ran one, or the
/// driver stopped), so the safe step is executed.
async fn fail_a_run(handle: &ServiceHandle) -> IncidentId {
    let card = handle
        .simulate(SimulateMode::IncidentOn)
        .await
        .expect("simulate")
        .expect("an incident");
    let incident_id = IncidentId::new(&card.incident_id);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        if handle.is_stopped() {
            return incident_id;
        }
        let proposed = handle
            .proposals(Some(incident_id.clone()))
            .await
            .is_ok_and(|proposals| !proposals.is_empty());
        if proposed || handle.run_tests(incident_id.clone()).await.is_ok() {
            return incident_id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the incident's plan was never ready"
        );
    }
}

/// Polls the proposals of `incident_id` until one satisfies `wanted`.
async fn proposal_until(
    handle: &ServiceHandle,
    incident_id: &IncidentId,
    wanted: impl Fn(&RemediationProposal) -> bool,
) -> RemediationProposal {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let proposals = handle
            .proposals(Some(incident_id.clone()))
            .await
            .expect("proposals");
        if let Some(found) = proposals.into_iter().find(|proposal| wanted(proposal)) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no proposal reached the expected state"
        );
    }
}

#[tokio::test]
async fn a_fenced_claim_means_no_executor_call_and_a_stopped_driver() {
    let scene = scene(Answer::Fenced).await;
    let _incident = fail_a_run(&scene.handle).await;
    tokio::time::timeout(WAIT, scene.handle.stopped())
        .await
        .expect("the fenced driver stops");
    tokio::time::timeout(WAIT, scene.task)
        .await
        .expect("the driver task ends")
        .expect("no panic");
    assert_eq!(
        scene.gate.claims.load(Ordering::SeqCst),
        1,
        "one claim tried"
    );
    assert!(
        scene.executor.calls().is_empty(),
        "a fenced claim means the executor is never called"
    );
}

#[tokio::test]
async fn an_action_claimed_before_is_not_carried_out_again() {
    let scene = scene(Answer::Taken).await;
    let incident = fail_a_run(&scene.handle).await;
    let finished = proposal_until(&scene.handle, &incident, |proposal| {
        proposal.state == RemediationState::Finished
    })
    .await;
    assert_eq!(finished.outcome, Some(RemediationOutcome::Failed));
    assert!(
        finished.note.contains("claimed before by replica-b")
            && finished.note.contains("not carried out again"),
        "{}",
        finished.note
    );
    assert!(scene.executor.calls().is_empty(), "never run twice");
    assert!(!scene.handle.is_stopped(), "a taken claim does not fence");
    let _ = scene.stop.send(true);
    let _ = tokio::time::timeout(WAIT, scene.task).await;
}

#[tokio::test]
async fn a_recorded_claim_lets_the_action_run_once_under_the_proposals_version() {
    let scene = scene(Answer::Store).await;
    let incident = fail_a_run(&scene.handle).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while scene.executor.calls().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the action never ran"
        );
        tick.tick().await;
    }
    let proposal = proposal_until(&scene.handle, &incident, |proposal| {
        proposal.action_id == ACTION
    })
    .await;
    let claim = scene
        .gate
        .last
        .lock()
        .expect("not poisoned")
        .clone()
        .expect("claimed");
    assert_eq!(claim.proposal, proposal.proposal_id);
    assert_eq!(claim.action_id, ACTION);
    assert!(claim.version >= 1, "{claim:?}");
    // The store kept the claim: the same action claimed again is taken, by the driver's lease.
    let lease = scene
        .gate
        .acquire(&proposal.service, "replica-a", Duration::MAX)
        .await
        .expect("acquire")
        .expect("a sole lease");
    assert_eq!(
        scene
            .gate
            .sole
            .claim_action(&lease, &claim)
            .await
            .expect("claim"),
        Claimed::Taken {
            holder: "replica-a".to_owned(),
            epoch: SoleLeases::EPOCH
        }
    );
    assert_eq!(scene.executor.calls().len(), 1, "run once");
    assert_eq!(scene.gate.claims.load(Ordering::SeqCst), 1, "claimed once");
    let _ = scene.stop.send(true);
    let _ = tokio::time::timeout(WAIT, scene.task).await;
}
