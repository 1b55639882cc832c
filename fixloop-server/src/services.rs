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
//! - a WebSocket client gets the events of every service, each service's join snapshot first;
//! - alerts go to the service whose `alert_labels` they carry ([`Services::route_alert`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use fixloop_contract::{
    ErrorDetail, IncidentCard, IncidentDetail, IncidentPage, IncidentState, SystemStatus, TestRun,
};
use tokio::sync::mpsc;

use crate::driver::DriverHandle;
use crate::error::ApiError;
use crate::ws::Outgoing;

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
    pub driver: DriverHandle,
}

/// The watched services, in profile order; never empty. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Services {
    services: Arc<[WatchedService]>,
}

impl Services {
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
    pub fn single(name: &str, base_url: &str, driver: DriverHandle) -> Self {
        Self::new(vec![WatchedService {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            alert_labels: BTreeMap::new(),
            signals: "injected by the caller".to_owned(),
            driver,
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
    /// [`ApiError::Unavailable`] when a driver does not answer.
    pub async fn statuses(&self) -> Result<Vec<(&WatchedService, SystemStatus)>, ApiError> {
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
    /// As [`Services::statuses`].
    pub async fn worst(&self) -> Result<(&WatchedService, SystemStatus), ApiError> {
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
    /// As [`Services::statuses`].
    pub async fn status(&self) -> Result<SystemStatus, ApiError> {
        Ok(self.worst().await?.1)
    }

    /// `GET /api/incidents/current`: the open incident of the service whose status matters most, else of any.
    ///
    /// # Errors
    ///
    /// As [`Services::statuses`].
    pub async fn current_incident(&self) -> Result<Option<IncidentCard>, ApiError> {
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
    /// As [`Services::statuses`].
    pub async fn owner_of_incident(
        &self,
        incident_id: &str,
    ) -> Result<Option<&WatchedService>, ApiError> {
        if self.services.len() == 1 {
            return Ok(Some(self.first()));
        }
        for service in self.iter() {
            if service.driver.has_incident(incident_id.to_owned()).await? {
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
    /// [`ApiError::InvalidQuery`] when `before` names no incident any service remembers; otherwise as
    /// [`Services::statuses`].
    pub async fn incidents(
        &self,
        limit: usize,
        before: Option<&str>,
    ) -> Result<IncidentPage, ApiError> {
        let before = match before {
            None => None,
            Some(id) => {
                let detail = self.incident_history(id).await?.ok_or_else(|| {
                    ApiError::InvalidQuery(vec![ErrorDetail {
                        path: "before".to_owned(),
                        message: "no incident has this id: pass the next_before of a previous page"
                            .to_owned(),
                    }])
                })?;
                Some((detail.incident.detected_at, detail.incident.incident_id))
            }
        };
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
        incidents
            .sort_by(|a, b| (b.detected_at, &b.incident_id).cmp(&(a.detected_at, &a.incident_id)));
        let next_before = if incidents.len() > limit {
            incidents.truncate(limit);
            incidents.last().map(|last| last.incident_id.clone())
        } else {
            None
        };
        Ok(IncidentPage {
            incidents,
            next_before,
        })
    }

    /// `GET /api/incidents/{incident_id}` across services.
    ///
    /// # Errors
    ///
    /// As [`Services::statuses`].
    pub async fn incident_history(
        &self,
        incident_id: &str,
    ) -> Result<Option<IncidentDetail>, ApiError> {
        for service in self.iter() {
            if let Some(detail) = service
                .driver
                .incident_history(incident_id.to_owned())
                .await?
            {
                return Ok(Some(detail));
            }
        }
        Ok(None)
    }

    /// `GET /api/tests/runs/{run_id}` across services.
    ///
    /// # Errors
    ///
    /// As [`Services::statuses`].
    pub async fn run(&self, run_id: &str) -> Result<Option<TestRun>, ApiError> {
        for service in self.iter() {
            if let Some(run) = service.driver.run(run_id.to_owned()).await? {
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

    /// Registers a WebSocket client with every service: the queues start with each service's join snapshot.
    ///
    /// # Errors
    ///
    /// As [`Services::statuses`].
    pub async fn subscribe(&self) -> Result<Vec<mpsc::Receiver<Outgoing>>, ApiError> {
        let mut queues = Vec::with_capacity(self.services.len());
        for service in self.iter() {
            queues.push(service.driver.subscribe().await?);
        }
        Ok(queues)
    }
}

/// Merges the queues of several services into one: forwards until any source closes (its hub dropped this
/// client, or the server is stopping) or the merged queue's receiver is gone. Run it beside the connection, in the
/// same task; with one queue, use that queue directly instead.
pub async fn merge_queues(
    mut sources: Vec<mpsc::Receiver<Outgoing>>,
    merged: mpsc::Sender<Outgoing>,
) {
    loop {
        let next = futures_util::future::select_all(
            sources.iter_mut().map(|source| Box::pin(source.recv())),
        );
        let (message, _, _) = tokio::select! {
            next = next => next,
            () = merged.closed() => return,
        };
        let Some(message) = message else { return };
        if merged.send(message).await.is_err() {
            return;
        }
    }
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

fn pick_worst(statuses: Vec<(&WatchedService, SystemStatus)>) -> (&WatchedService, SystemStatus) {
    let mut worst: Option<(&WatchedService, SystemStatus)> = None;
    for (service, status) in statuses {
        let worse = worst
            .as_ref()
            .is_none_or(|(_, current)| severity(status.status) > severity(current.status));
        if worse {
            worst = Some((service, status));
        }
    }
    // `Services::new` refuses an empty list, and `statuses` has one entry per service.
    worst.unwrap_or_else(|| unreachable!("there is at least one service"))
}
