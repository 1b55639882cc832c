//! [`ServiceHandle`]: how everything outside the driver (the HTTP layer, the copilot's look-ups, the supervisor)
//! asks a service's driver something. Each request is a `Command` with a oneshot reply, bounded by a timeout;
//! ids are the core's types, and every failure is one [`Error`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use fixloop_adapters::CopilotState;
use fixloop_contract::{
    CopilotAnswer, IncidentCard, IncidentDetail, IncidentSummary, RemediationActionStats,
    RemediationProposal, SimulateMode, SystemStatus, TestRun,
};
use fixloop_core::engine::Input;
use fixloop_core::{IncidentId, ProposalId, RunId};
use tokio::sync::{mpsc, oneshot};

use super::Error;
use super::stream::{EventGroups, Outgoing, Subscribed};

/// How long a caller waits for the driver to take and answer a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A handle on one service's driver: cheap to clone. Once the driver stops, every request fails with
/// [`Error::Unavailable`].
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    commands: mpsc::Sender<Command>,
}

/// A request to the driver, with the channel its answer goes back on.
#[derive(Debug)]
pub(crate) enum Command {
    Status(oneshot::Sender<SystemStatus>),
    CurrentIncident(oneshot::Sender<Option<IncidentCard>>),
    ServiceChanged(bool, oneshot::Sender<SystemStatus>),
    Simulate(SimulateMode, oneshot::Sender<Option<IncidentCard>>),
    RunTests(IncidentId, oneshot::Sender<Result<TestRun, Error>>),
    Run(RunId, oneshot::Sender<Option<TestRun>>),
    HasIncident(IncidentId, oneshot::Sender<bool>),
    CopilotState(
        Option<IncidentId>,
        oneshot::Sender<Result<CopilotState, Error>>,
    ),
    CopilotAnswered(CopilotAnswer, oneshot::Sender<()>),
    Alert(Input, oneshot::Sender<()>),
    Subscribe(Option<u64>, EventGroups, oneshot::Sender<Subscribed>),
    Incidents(
        usize,
        Option<(DateTime<Utc>, IncidentId)>,
        oneshot::Sender<Vec<IncidentSummary>>,
    ),
    IncidentHistory(IncidentId, oneshot::Sender<Option<IncidentDetail>>),
    Proposals(
        Option<IncidentId>,
        oneshot::Sender<Vec<RemediationProposal>>,
    ),
    Decide(
        Decision,
        oneshot::Sender<Result<RemediationProposal, Error>>,
    ),
    KillSwitch(bool, String, oneshot::Sender<()>),
    RemediationStats(oneshot::Sender<Vec<RemediationActionStats>>),
}

/// An operator's approval or rejection of a remediation proposal, as the driver feeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) proposal: ProposalId,
    pub(crate) version: u64,
    pub(crate) by: String,
    pub(crate) approve: bool,
}

impl ServiceHandle {
    /// A handle sending to `commands` (the driver keeps the receiving end).
    pub(crate) fn new(commands: mpsc::Sender<Command>) -> Self {
        Self { commands }
    }

    /// A handle with no driver behind it (a service another replica leads): every request fails with
    /// [`Error::Unavailable`].
    #[must_use]
    pub fn closed() -> Self {
        let (commands, _) = mpsc::channel(1);
        Self { commands }
    }

    /// `GET /api/incidents`: at most `limit` incidents of this service, newest first, older than `before` (a
    /// `(detected_at, incident_id)` key) when given.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when the driver is gone or does not answer in time.
    pub async fn incidents(
        &self,
        limit: usize,
        before: Option<(DateTime<Utc>, IncidentId)>,
    ) -> Result<Vec<IncidentSummary>, Error> {
        self.request(|reply| Command::Incidents(limit, before, reply))
            .await
    }

    /// `GET /api/incidents/{incident_id}`: the incident with its timeline and figures, if this service has it.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn incident_history(
        &self,
        incident_id: IncidentId,
    ) -> Result<Option<IncidentDetail>, Error> {
        self.request(|reply| Command::IncidentHistory(incident_id, reply))
            .await
    }

    /// `GET /api/remediations`: this service's kept remediation proposals (of `incident_id` only, when given),
    /// newest first, as the engine has them now.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn proposals(
        &self,
        incident_id: Option<IncidentId>,
    ) -> Result<Vec<RemediationProposal>, Error> {
        self.request(|reply| Command::Proposals(incident_id, reply))
            .await
    }

    /// `POST /api/remediations/{proposal_id}/approve` (`approve`) or `/reject`: feeds the operator's decision on
    /// the proposal at the `version` they saw, and answers the proposal after it.
    ///
    /// # Errors
    ///
    /// [`Error::ProposalNotFound`] when this service has no such proposal, [`Error::VersionConflict`],
    /// [`Error::NotAwaitingApproval`] or [`Error::KillSwitchEngaged`] as the engine decides, or as
    /// [`ServiceHandle::incidents`].
    pub async fn decide(
        &self,
        proposal: ProposalId,
        version: u64,
        by: String,
        approve: bool,
    ) -> Result<RemediationProposal, Error> {
        let decision = Decision {
            proposal,
            version,
            by,
            approve,
        };
        self.request(|reply| Command::Decide(decision, reply))
            .await?
    }

    /// Engages or releases the remediation kill switch of this service's engine (`by` says who).
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn set_kill_switch(&self, engaged: bool, by: String) -> Result<(), Error> {
        self.request(|reply| Command::KillSwitch(engaged, by, reply))
            .await
    }

    /// `GET /api/remediations/stats`: this service's figures per (incident kind, action).
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn remediation_stats(&self) -> Result<Vec<RemediationActionStats>, Error> {
        self.request(Command::RemediationStats).await
    }

    /// `GET /api/status`.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn status(&self) -> Result<SystemStatus, Error> {
        self.request(Command::Status).await
    }

    /// `GET /api/incidents/current`.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn current_incident(&self) -> Result<Option<IncidentCard>, Error> {
        self.request(Command::CurrentIncident).await
    }

    /// The service was changed (the demo shop's bug switch set to `enabled`): feeds the engine the change and
    /// returns the status.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn service_changed(&self, enabled: bool) -> Result<SystemStatus, Error> {
        self.request(|reply| Command::ServiceChanged(enabled, reply))
            .await
    }

    /// `POST /api/incidents/simulate`: returns the open incident after the change.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn simulate(&self, mode: SimulateMode) -> Result<Option<IncidentCard>, Error> {
        self.request(|reply| Command::Simulate(mode, reply)).await
    }

    /// `POST /api/tests/run`: the new or in-progress run.
    ///
    /// # Errors
    ///
    /// [`Error::IncidentNotFound`], [`Error::IncidentClosed`] or [`Error::PlanNotReady`] as the engine decides, or
    /// as [`ServiceHandle::incidents`].
    pub async fn run_tests(&self, incident_id: IncidentId) -> Result<TestRun, Error> {
        self.request(|reply| Command::RunTests(incident_id, reply))
            .await?
    }

    /// `GET /api/tests/runs/{run_id}`.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn run(&self, run_id: RunId) -> Result<Option<TestRun>, Error> {
        self.request(|reply| Command::Run(run_id, reply)).await
    }

    /// Whether this service's engine knows an incident with this id (open or recently closed).
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn has_incident(&self, incident_id: IncidentId) -> Result<bool, Error> {
        self.request(|reply| Command::HasIncident(incident_id, reply))
            .await
    }

    /// The state the copilot may see about `incident_id` (the open incident when `None`).
    ///
    /// # Errors
    ///
    /// [`Error::IncidentNotFound`] when `incident_id` names no incident, or as [`ServiceHandle::incidents`].
    pub async fn copilot_state(
        &self,
        incident_id: Option<IncidentId>,
    ) -> Result<CopilotState, Error> {
        self.request(|reply| Command::CopilotState(incident_id, reply))
            .await?
    }

    /// Feeds the copilot's answer (published as `copilot.answer`).
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn copilot_answered(&self, answer: CopilotAnswer) -> Result<(), Error> {
        self.request(|reply| Command::CopilotAnswered(answer, reply))
            .await
    }

    /// Feeds an alert input (`AlertFired` or `AlertResolved`); the engine deduplicates repeats.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn alert(&self, input: Input) -> Result<(), Error> {
        self.request(|reply| Command::Alert(input, reply)).await
    }

    /// Registers a WebSocket client; its queue starts with the join snapshot.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn subscribe(&self) -> Result<mpsc::Receiver<Outgoing>, Error> {
        Ok(self.subscribe_since(None).await?.queue)
    }

    /// Registers a WebSocket client that saw every event up to `since`: its queue starts with the kept events after
    /// it, or, when there is no `since` or the hub cannot replay from it ([`Subscribed::reset`]), with the join
    /// snapshot.
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn subscribe_since(&self, since: Option<u64>) -> Result<Subscribed, Error> {
        self.subscribe_to(since, EventGroups::NONE).await
    }

    /// [`ServiceHandle::subscribe_since`] for a client that asked for the optional event `groups`: it also gets
    /// their events (replayed or live), and its join snapshot also carries the open incident's remediation
    /// proposals when it asked for [`EventGroups::REMEDIATION`].
    ///
    /// # Errors
    ///
    /// As [`ServiceHandle::incidents`].
    pub async fn subscribe_to(
        &self,
        since: Option<u64>,
        groups: EventGroups,
    ) -> Result<Subscribed, Error> {
        self.request(|reply| Command::Subscribe(since, groups, reply))
            .await
    }

    /// Whether the driver is gone (its command queue is closed).
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }

    /// Resolves once the driver is gone (stopped with its service or with the process).
    pub async fn stopped(&self) {
        self.commands.closed().await;
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        tokio::time::timeout(COMMAND_TIMEOUT, self.commands.send(command(reply)))
            .await
            .map_err(|_| Error::Unavailable)?
            .map_err(|_| Error::Unavailable)?;
        tokio::time::timeout(COMMAND_TIMEOUT, answer)
            .await
            .map_err(|_| Error::Unavailable)?
            .map_err(|_| Error::Unavailable)
    }
}
