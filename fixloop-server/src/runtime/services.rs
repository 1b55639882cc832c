//! The watched services of one process: one driver (and so one engine) per service, and the rules that turn
//! several of them into the v1 contract's single answers.
//!
//! With one service everything is as before. With several:
//! - `GET /api/status` answers the worst status (INCIDENT_ACTIVE, then VALIDATING, RECOVERED, HEALTHY; the first
//!   service in profile order on a tie), naming its service;
//! - `GET /api/incidents/current` answers the open incident of that same service;
//! - run and incident ids are unique across services (each engine has its own id prefix), so a request naming an
//!   id goes to the service that owns it;
//! - `GET /api/incidents` merges every service's incidents, newest first, and `GET /api/incidents/{id}` asks
//!   each service in turn;
//! - a WebSocket client gets the events of every service, each service's join snapshot first, merged in `seq`
//!   order ([`crate::runtime::stream::merge::merge_queues`]);
//! - a client resuming with `since` gets every service's kept events after it, or, if any service cannot replay
//!   from it, a `stream.reset` marker and every service's join snapshot ([`Services::subscribe`]);
//! - alerts go to the service whose `alert_labels` they carry ([`ServiceSet::route_alert`]).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use fixloop_adapters::{ContextSource, SignalSource};

use fixloop_contract::{
    IncidentCard, IncidentDetail, IncidentPage, IncidentState, StreamReset, SystemStatus, TestRun,
};

use fixloop_core::{IncidentId, RunId};

use crate::runtime::stream::EventGroups;
use crate::runtime::stream::feed::{Feed, reset_marker};
use crate::runtime::stream::merge::Subscription;
use crate::runtime::{Error, ServiceHandle};

/// The ports of a watched service the copilot's look-ups may read (beyond its driver). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CopilotSources {
    /// The service's signal source; `None` answers the engine's latest reading instead.
    pub signals: Option<Arc<dyn SignalSource>>,
    /// The configured context source (logs, metrics, monitors), if any.
    pub context: Option<Arc<dyn ContextSource>>,
}

/// One watched service as the HTTP layer sees it.
#[derive(Debug, Clone)]
pub struct WatchedService {
    /// The service's name (unique).
    pub name: String,
    /// Its base URL.
    pub base_url: String,
    /// Labels an alert must carry (all of them) to be routed here; empty matches nothing unless it is the only
    /// service.
    pub alert_labels: BTreeMap<String, String>,
    /// Where its signals come from, in words (for `/api/services`).
    pub signals: String,
    /// Its driver.
    pub driver: ServiceHandle,
    /// The ports the copilot's look-ups read (its signal and context sources).
    pub copilot_sources: CopilotSources,
}

/// The watched services, live: the [`crate::runtime::supervisor::Supervisor`] replaces the set when it starts or
/// stops a service, and each request works on one [`ServiceSet`] snapshot taken when it starts. Cheap to clone
/// (every clone sees the same set).
#[derive(Debug, Clone)]
pub struct Services {
    current: Arc<RwLock<ServiceSet>>,
    /// With replicas: the event log's feed every WebSocket client subscribes to ([`Services::use_feed`]).
    feed: Arc<OnceLock<Feed>>,
}

impl Services {
    /// The services, in profile order.
    ///
    /// # Panics
    ///
    /// When `services` is empty: a server watches at least one service (the start-up code guarantees it).
    #[must_use]
    pub fn new(services: Vec<WatchedService>) -> Self {
        Self {
            current: Arc::new(RwLock::new(ServiceSet::new(services))),
            feed: Arc::default(),
        }
    }

    /// One service with no alert labels (every alert goes to it), as a single-service server has.
    #[must_use]
    pub fn single(name: &str, base_url: &str, driver: ServiceHandle) -> Self {
        Self {
            current: Arc::new(RwLock::new(ServiceSet::single(name, base_url, driver))),
            feed: Arc::default(),
        }
    }

    /// The services watched right now: a request answers from one snapshot, even if the set changes meanwhile.
    #[must_use]
    pub fn snapshot(&self) -> ServiceSet {
        // The guarded value is replaced whole, so it is consistent even if a holder panicked.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the watched set (a service started or stopped); requests already under way keep their snapshot.
    ///
    /// # Panics
    ///
    /// When `services` is empty, as [`Services::new`].
    pub fn replace(&self, services: Vec<WatchedService>) {
        let set = ServiceSet::new(services);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = set;
    }

    /// `GET /api/status`: the worst status ([`ServiceSet::status`]).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn status(&self) -> Result<SystemStatus, Error> {
        self.snapshot().status().await
    }

    /// `GET /api/incidents/current` ([`ServiceSet::current_incident`]).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn current_incident(&self) -> Result<Option<IncidentCard>, Error> {
        self.snapshot().current_incident().await
    }

    /// `GET /api/incidents` across services ([`ServiceSet::incidents`]).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::incidents`].
    pub async fn incidents(
        &self,
        limit: usize,
        before: Option<&IncidentId>,
    ) -> Result<IncidentPage, Error> {
        self.snapshot().incidents(limit, before).await
    }

    /// `GET /api/incidents/{incident_id}` across services.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn incident_history(
        &self,
        incident_id: &IncidentId,
    ) -> Result<Option<IncidentDetail>, Error> {
        self.snapshot().incident_history(incident_id).await
    }

    /// `GET /api/tests/runs/{run_id}` across services.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn run(&self, run_id: &RunId) -> Result<Option<TestRun>, Error> {
        self.snapshot().run(run_id).await
    }

    /// Serves every WebSocket client from `feed` (the shared event log of replicas) instead of this process's
    /// drivers; a second feed is ignored.
    pub fn use_feed(&self, feed: Feed) {
        let _ = self.feed.set(feed);
    }

    /// Registers a WebSocket client with every service ([`ServiceSet::subscribe`]), or, with replicas, with the
    /// event log's feed ([`Feed::subscribe`]: every service's events, whichever replica leads it).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn subscribe(
        &self,
        since: Option<u64>,
        groups: EventGroups,
    ) -> Result<Subscription, Error> {
        let set = self.snapshot();
        if let Some(feed) = self.feed.get() {
            let names: Vec<&str> = set.iter().map(|service| service.name.as_str()).collect();
            return Ok(feed.subscribe(since, groups, &names).await);
        }
        set.subscribe(since, groups).await
    }
}

/// The watched services at one moment, in profile order; never empty. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServiceSet {
    services: Arc<[WatchedService]>,
}

impl ServiceSet {
    /// The services, in profile order.
    ///
    /// # Panics
    ///
    /// When `services` is empty: a server watches at least one service (the start-up code guarantees it).
    #[must_use]
    pub fn new(services: Vec<WatchedService>) -> Self {
        assert!(
            !services.is_empty(),
            "a server watches at least one service"
        );
        Self {
            services: services.into(),
        }
    }

    /// One service with no alert labels (every alert goes to it), as a single-service server has.
    #[must_use]
    pub fn single(name: &str, base_url: &str, driver: ServiceHandle) -> Self {
        Self::new(vec![WatchedService {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            alert_labels: BTreeMap::new(),
            signals: "injected by the caller".to_owned(),
            driver,
            copilot_sources: CopilotSources::default(),
        }])
    }

    /// Every service, in profile order.
    pub fn iter(&self) -> impl Iterator<Item = &WatchedService> {
        self.services.iter()
    }

    /// The first service (the demo shop in `fixloop demo`).
    #[must_use]
    pub fn first(&self) -> &WatchedService {
        // `new` refuses an empty list.
        &self.services[0]
    }

    /// The service the demo's operations (the bug switch, simulation) act on: the one called `demo_service` when
    /// given (the built-in demo shop's), else the only watched service; `None` when neither names one (several
    /// services and no demo shop among them).
    #[must_use]
    pub fn demo_target(&self, demo_service: Option<&str>) -> Option<&WatchedService> {
        match demo_service {
            Some(name) => self.get(name),
            None => (self.services.len() == 1).then(|| self.first()),
        }
    }

    /// The service called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&WatchedService> {
        self.services.iter().find(|service| service.name == name)
    }

    /// How many services are watched.
    #[must_use]
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Always `false`: there is at least one service.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Each service's status, in profile order.
    ///
    /// # Errors
    ///
    /// [`Error::Unavailable`] when a driver does not answer.
    pub async fn statuses(&self) -> Result<Vec<(&WatchedService, SystemStatus)>, Error> {
        let mut statuses = Vec::with_capacity(self.services.len());
        for service in self.iter() {
            statuses.push((service, service.driver.status().await?));
        }
        Ok(statuses)
    }

    /// The service whose status matters most, with that status (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn worst(&self) -> Result<(&WatchedService, SystemStatus), Error> {
        if self.services.len() == 1 {
            let service = self.first();
            return Ok((service, service.driver.status().await?));
        }
        let statuses = self.statuses().await?;
        Ok(pick_worst(statuses))
    }

    /// `GET /api/status`: the worst status.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn status(&self) -> Result<SystemStatus, Error> {
        Ok(self.worst().await?.1)
    }

    /// `GET /api/incidents/current`: the open incident of the service whose status matters most, else of any.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn current_incident(&self) -> Result<Option<IncidentCard>, Error> {
        let (worst, _) = self.worst().await?;
        if let Some(card) = worst.driver.current_incident().await? {
            return Ok(Some(card));
        }
        for service in self.iter() {
            if let Some(card) = service.driver.current_incident().await? {
                return Ok(Some(card));
            }
        }
        Ok(None)
    }

    /// The service that has an incident with this id (open or recently closed).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn owner_of_incident(
        &self,
        incident_id: &IncidentId,
    ) -> Result<Option<&WatchedService>, Error> {
        if self.services.len() == 1 {
            return Ok(Some(self.first()));
        }
        for service in self.iter() {
            if service.driver.has_incident(incident_id.clone()).await? {
                return Ok(Some(service));
            }
        }
        Ok(None)
    }

    /// `GET /api/incidents` across services: the newest `limit` incidents of every service merged, newest
    /// `detected_at` first (ties by id, descending), older than the incident `before` names.
    ///
    /// # Errors
    ///
    /// [`Error::IncidentNotFound`] when `before` names no incident any service remembers; otherwise as
    /// [`ServiceSet::statuses`].
    pub async fn incidents(
        &self,
        limit: usize,
        before: Option<&IncidentId>,
    ) -> Result<IncidentPage, Error> {
        let before = match before {
            None => None,
            Some(id) => {
                // A well-formed cursor that names no incident (never known, or aged out of the kept history) is
                // a resource that does not exist, not a malformed request: 404, like GET /api/incidents/{id}.
                let detail = self
                    .incident_history(id)
                    .await?
                    .ok_or_else(|| Error::IncidentNotFound(id.clone()))?;
                Some((
                    detail.incident.detected_at,
                    IncidentId::new(detail.incident.incident_id),
                ))
            }
        };
        self.incidents_before(limit, before).await
    }

    /// `GET /api/incidents` across services from a resolved cursor: the newest `limit` incidents of every service
    /// merged, newest `detected_at` first (ties by id, descending), older than the `(detected_at, incident_id)` key
    /// `before` when given.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn incidents_before(
        &self,
        limit: usize,
        before: Option<(chrono::DateTime<chrono::Utc>, IncidentId)>,
    ) -> Result<IncidentPage, Error> {
        // One more than the page, to know whether another page follows.
        let mut incidents = Vec::new();
        for service in self.iter() {
            incidents.extend(
                service
                    .driver
                    .incidents(limit.saturating_add(1), before.clone())
                    .await?,
            );
        }
        Ok(page_of(incidents, limit, false))
    }

    /// `GET /api/incidents/{incident_id}` across services.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn incident_history(
        &self,
        incident_id: &IncidentId,
    ) -> Result<Option<IncidentDetail>, Error> {
        for service in self.iter() {
            if let Some(detail) = service.driver.incident_history(incident_id.clone()).await? {
                return Ok(Some(detail));
            }
        }
        Ok(None)
    }

    /// `GET /api/tests/runs/{run_id}` across services.
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn run(&self, run_id: &RunId) -> Result<Option<TestRun>, Error> {
        for service in self.iter() {
            if let Some(run) = service.driver.run(run_id.clone()).await? {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// The service an alert with these labels belongs to: the first whose `alert_labels` are all present with
    /// the same values; with a single service, an alert without a match still goes to it only if that service
    /// declares no label (an unconfigured single-service deployment keeps working).
    #[must_use]
    pub fn route_alert(&self, labels: &BTreeMap<String, String>) -> Option<&WatchedService> {
        let matching = self.iter().find(|service| {
            !service.alert_labels.is_empty()
                && service
                    .alert_labels
                    .iter()
                    .all(|(name, value)| labels.get(name) == Some(value))
        });
        matching.or_else(|| {
            (self.services.len() == 1 && self.first().alert_labels.is_empty()).then(|| self.first())
        })
    }

    /// Registers a WebSocket client with every service. Without `since`, the queues start with each service's join
    /// snapshot. With `since`, they start with each service's kept events after it; when any service cannot
    /// replay from it, every service's queue starts with its join snapshot instead (a client never gets a replay of
    /// some services and a gap in others), and the subscription carries the `stream.reset` marker to send first.
    /// The client also gets the events of the optional `groups` it asked for (`GET /ws?events=`).
    ///
    /// # Errors
    ///
    /// As [`ServiceSet::statuses`].
    pub async fn subscribe(
        &self,
        since: Option<u64>,
        groups: EventGroups,
    ) -> Result<Subscription, Error> {
        let mut subscribed = Vec::with_capacity(self.services.len());
        for service in self.iter() {
            subscribed.push(service.driver.subscribe_to(since, groups).await?);
        }
        let reason = subscribed.iter().find_map(|one| one.reset);
        let (Some(since), Some(reason)) = (since, reason) else {
            return Ok(Subscription {
                marker: None,
                queues: subscribed.into_iter().map(|one| one.queue).collect(),
            });
        };
        // The services that replayed start over with their snapshot; dropping the replayed queue unregisters it.
        for (service, one) in self.iter().zip(&mut subscribed) {
            if one.reset.is_none() {
                *one = service.driver.subscribe_to(None, groups).await?;
            }
        }
        let reset = StreamReset {
            since,
            oldest_available: subscribed
                .iter()
                .map(|one| one.oldest_available)
                .max()
                .unwrap_or(1),
            reason,
        };
        Ok(Subscription {
            marker: Some(reset_marker(reset)),
            queues: subscribed.into_iter().map(|one| one.queue).collect(),
        })
    }
}

/// One page of `GET /api/incidents` from the incidents of several services (each service's newest, at least `limit`
/// of them when it has that many): newest `detected_at` first, ties by id descending, at most `limit`; another page
/// follows when more than `limit` were given or `more` says a part held back more.
#[must_use]
pub fn page_of(
    mut incidents: Vec<fixloop_contract::IncidentSummary>,
    limit: usize,
    more: bool,
) -> IncidentPage {
    incidents.sort_by(|a, b| (b.detected_at, &b.incident_id).cmp(&(a.detected_at, &a.incident_id)));
    let next_before = if incidents.len() > limit || (more && !incidents.is_empty()) {
        incidents.truncate(limit);
        incidents.last().map(|last| last.incident_id.clone())
    } else {
        None
    };
    IncidentPage {
        incidents,
        next_before,
    }
}

/// Which of `statuses` (in profile order) matters most: the worst (INCIDENT_ACTIVE, then VALIDATING, RECOVERED,
/// HEALTHY), the first on a tie; `None` when there is none.
#[must_use]
pub fn worst_of(statuses: impl IntoIterator<Item = IncidentState>) -> Option<usize> {
    let mut worst: Option<(usize, IncidentState)> = None;
    for (index, status) in statuses.into_iter().enumerate() {
        if worst.is_none_or(|(_, current)| severity(status) > severity(current)) {
            worst = Some((index, status));
        }
    }
    worst.map(|(index, _)| index)
}

/// Severity of a status for picking the one that matters most.
fn severity(status: IncidentState) -> u8 {
    match status {
        IncidentState::IncidentActive => 3,
        IncidentState::Validating => 2,
        IncidentState::Recovered => 1,
        IncidentState::Healthy => 0,
    }
}

fn pick_worst(
    mut statuses: Vec<(&WatchedService, SystemStatus)>,
) -> (&WatchedService, SystemStatus) {
    let worst = worst_of(statuses.iter().map(|(_, status)| status.status))
        // `Services::new` refuses an empty list, and `statuses` has one entry per service.
        .unwrap_or_else(|| unreachable!("there is at least one service"));
    statuses.swap_remove(worst)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fixloop_contract::{WsEnvelope, WsMessage};

    use super::*;
    use tokio::sync::mpsc;

    use crate::runtime::stream::{Outgoing, Sequence};

    /// A driver on fake ports numbering its events with `sequence`, running until the handle's last clone is gone.
    fn start_driver(
        name: &str,
        sequence: &Sequence,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> ServiceHandle {
        use fixloop_adapters::fake::{FakeCopilot, FakePlanner, FakeSignalSource, FakeTestRunner};

        use crate::runtime::driver::{Driver, DriverConfig, Ports};

        let mut spec = crate::profile::demo_profile("http://127.0.0.1:9").spec;
        spec.name = name.to_owned();
        let ports = Ports {
            signals: Arc::new(FakeSignalSource::new()),
            planner: Arc::new(FakePlanner::new()),
            rule_planner: Arc::new(fixloop_adapters::RulePlanner),
            runner: Arc::new(FakeTestRunner::new()),
            copilot: Arc::new(FakeCopilot::new()),
            prober: Arc::new(FakeSignalSource::new()),
            context: None,
        };
        let config = DriverConfig {
            // Reads once at start, then not for an hour: the test feeds what it needs.
            engine: fixloop_core::engine::Config {
                poll_interval: Duration::from_secs(3600),
                confirm_delay: Duration::from_secs(3600),
                ..fixloop_core::engine::Config::short_windows(spec, name)
            },
            signal_timeout: Duration::from_secs(5),
            websocket_queue: 8,
            origin: None,
        };
        let (driver, handle) = Driver::sharing(
            config,
            ports,
            Arc::new(crate::runtime::metrics::ServerMetrics::default()),
            sequence.clone(),
        );
        tasks.spawn(driver.run(std::future::pending()));
        handle
    }

    fn answer(question: usize) -> fixloop_contract::CopilotAnswer {
        fixloop_contract::CopilotAnswer {
            incident_id: None,
            question: format!("question {question}"),
            answer: "an answer".to_owned(),
            citations: Vec::new(),
            created_at: "2026-11-21T10:15:00Z".parse().unwrap(),
            answered_by: None,
            fallback_reason: None,
            redacted: None,
        }
    }

    fn first_type(queue: &mut mpsc::Receiver<Outgoing>) -> Option<String> {
        let Ok(Outgoing::Event { text, .. }) = queue.try_recv() else {
            return None;
        };
        let envelope: WsEnvelope = serde_json::from_str(text.as_str()).unwrap();
        Some(envelope.message.kind().to_owned())
    }

    fn summary(id: &str, second: u32) -> fixloop_contract::IncidentSummary {
        fixloop_contract::IncidentSummary {
            incident_id: id.to_owned(),
            title: "t".to_owned(),
            service: "s".to_owned(),
            detected_at: format!("2026-11-21T10:15:{second:02}Z").parse().unwrap(),
            incident_end: None,
            status: None,
            resolution: None,
        }
    }

    #[test]
    fn parts_of_pages_merge_into_the_page_one_process_gives() {
        // One process: each service gives limit + 1, and a next page follows when more than limit came.
        let whole = page_of(
            vec![summary("a1", 1), summary("b1", 2), summary("a2", 3)],
            2,
            false,
        );
        let ids: Vec<&str> = whole
            .incidents
            .iter()
            .map(|one| one.incident_id.as_str())
            .collect();
        assert_eq!(ids, ["a2", "b1"]);
        assert_eq!(whole.next_before.as_deref(), Some("b1"));
        // Replicas: each part is a page of limit; one that held back more says so.
        let merged = page_of(vec![summary("b1", 2), summary("a2", 3)], 2, true);
        assert_eq!(merged.incidents, whole.incidents);
        assert_eq!(merged.next_before, whole.next_before);
        // Nothing held back, no more than limit: the last page.
        assert_eq!(page_of(vec![summary("a1", 1)], 2, false).next_before, None);
    }

    #[test]
    fn the_worst_status_is_the_first_of_the_most_severe() {
        use IncidentState::{Healthy, IncidentActive, Recovered, Validating};
        assert_eq!(
            worst_of([Healthy, Validating, IncidentActive, IncidentActive]),
            Some(2)
        );
        assert_eq!(worst_of([Recovered, Healthy, Recovered]), Some(0));
        assert_eq!(worst_of([]), None);
    }

    #[tokio::test]
    async fn a_since_one_service_cannot_replay_resets_every_service() {
        let sequence = Sequence::new();
        let mut tasks = tokio::task::JoinSet::new();
        let watched = ["east", "west"].map(|name| WatchedService {
            name: name.to_owned(),
            base_url: "http://127.0.0.1:9".to_owned(),
            alert_labels: BTreeMap::new(),
            signals: "fake".to_owned(),
            driver: start_driver(name, &sequence, &mut tasks),
            copilot_sources: CopilotSources::default(),
        });
        let services = Services::new(watched.to_vec());
        let wait = Duration::from_secs(10);
        let [east, west] = &watched;
        tokio::time::timeout(wait, west.driver.copilot_answered(answer(0)))
            .await
            .unwrap()
            .unwrap();
        // Both services can replay from 0: no marker, no snapshot, every event of the process once.
        let mut whole = tokio::time::timeout(wait, services.subscribe(Some(0), EventGroups::NONE))
            .await
            .unwrap()
            .unwrap();
        assert!(whole.marker.is_none());
        let mut replayed: Vec<u64> = whole
            .queues
            .iter_mut()
            .flat_map(|queue| {
                std::iter::from_fn(|| match queue.try_recv() {
                    Ok(Outgoing::Event { seq, .. }) => Some(seq),
                    _ => None,
                })
                .collect::<Vec<_>>()
            })
            .collect();
        replayed.sort_unstable();
        assert_eq!(replayed, (1..=sequence.latest()).collect::<Vec<_>>());
        // East drops events from its ring; west still has everything after 0.
        for question in 1..=crate::runtime::stream::DEFAULT_REPLAY_CAPACITY + 1 {
            tokio::time::timeout(wait, east.driver.copilot_answered(answer(question)))
                .await
                .unwrap()
                .unwrap();
        }
        let mut reset = tokio::time::timeout(wait, services.subscribe(Some(0), EventGroups::NONE))
            .await
            .unwrap()
            .unwrap();
        let marker: WsEnvelope =
            serde_json::from_str(reset.marker.expect("a marker").as_str()).unwrap();
        let WsMessage::StreamReset(marker) = marker.message else {
            panic!("expected stream.reset, got {}", marker.message.kind());
        };
        assert_eq!(marker.since, 0);
        assert_eq!(marker.reason, fixloop_contract::StreamResetReason::TooOld);
        // East dropped the oldest of its events: the first (west's answer, and any status either driver published
        // when it started) came before them.
        assert!(marker.oldest_available > 2, "{marker:?}");
        assert!(marker.oldest_available <= sequence.latest(), "{marker:?}");
        for queue in &mut reset.queues {
            assert_eq!(
                first_type(queue).as_deref(),
                Some("system.status"),
                "every service starts over with its snapshot, none with a partial replay"
            );
        }
        // From right before the oldest kept event, both replay again.
        let since = marker.oldest_available - 1;
        let mut resumed =
            tokio::time::timeout(wait, services.subscribe(Some(since), EventGroups::NONE))
                .await
                .unwrap()
                .unwrap();
        assert!(resumed.marker.is_none());
        assert_eq!(
            resumed.queues[0].len(),
            crate::runtime::stream::DEFAULT_REPLAY_CAPACITY
        );
        let west_after: Vec<u64> = std::iter::from_fn(|| match resumed.queues[1].try_recv() {
            Ok(Outgoing::Event { seq, .. }) => Some(seq),
            _ => None,
        })
        .collect();
        assert!(west_after.iter().all(|seq| *seq > since), "{west_after:?}");
        assert!(
            !west_after.is_empty() || resumed.queues[1].is_empty(),
            "only west's events after since"
        );
        tasks.abort_all();
    }
}
