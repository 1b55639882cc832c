//! Leading services by lease, for replicas sharing one database ([`Leasing`]).
//!
//! A replica leads a service (runs its driver) only while it holds the service's lease. [`Supervisor::keep_leases`]
//! runs every third of the lease time, in the supervisor's task:
//!
//! 1. a driver that stopped by itself was fenced (the store refused its write: another replica leads now);
//! 2. each lease held is renewed; one that is gone (taken over, lapsed) stops its driver at once, and one that
//!    cannot be confirmed (the database unreachable) stops its driver before it could have lapsed: its last
//!    confirmation plus the lease time is less than one renewal interval away. The database's fence refuses
//!    every later write of that driver anyway;
//! 3. it records its heartbeat (its id, advertised URL and start) and learns how many replicas are live; its
//!    bound is its fair share, `ceil(watched services / live replicas)`, never more than `FIXLOOP_MAX_LEADS`;
//! 4. over its bound (a replica joined), it hands the latest started services over: it stops each one's driver,
//!    then releases its lease, so another replica takes it at once instead of waiting for the lease to lapse;
//! 5. while it leads fewer services than its bound, it tries the free or lapsed leases of the services it watches
//!    and starts the driver of each lease it wins (restored from the journal, as after a restart).
//! 6. it reads the saved kill switch, which any replica may have switched, and when it changed since the last
//!    round it tells every driver it runs (a driver started later reads it before it runs), so the switch stops
//!    the actions of every replica within one round.
//!
//! Lease times are the database's clock; the replica's own clock only measures how long ago it last confirmed a
//! lease (a monotonic `Instant`), so clock skew between replicas does not matter.

use std::sync::Arc;
use std::time::Duration;

use fixloop_adapters::{EventLog, Lease, Leases, ReplicaBeat};
use fixloop_contract::chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{ServiceToWatch, Supervisor};
use crate::runtime::ServiceHandle;
use crate::runtime::ports::build_ports;
use crate::runtime::remediation::{KILL_SWITCH_SETTING, kill_switch};
use crate::runtime::services::{CopilotSources, WatchedService};

/// How a replica shares the watched services with the other replicas of its database.
#[derive(Debug, Clone)]
pub struct Leasing {
    /// The shared leases (the PostgreSQL store).
    pub leases: Arc<dyn Leases>,
    /// This replica's id, the holder of its leases.
    pub replica: String,
    /// How long a lease lasts unless renewed; renewed every third of it. A replica whose heartbeat is older is
    /// not live.
    pub ttl: Duration,
    /// The most services this replica leads at once (`None`: no bound but its fair share).
    pub max_leads: Option<usize>,
    /// Where the other replicas reach this one's API (`FIXLOOP_ADVERTISE_URL`, or its own listener).
    pub url: String,
    /// When this replica started.
    pub started_at: DateTime<Utc>,
    /// The shared event log each leader's driver writes its WebSocket events to (`stream::writer`), read by every
    /// replica's feed; `None` keeps each driver's events on its own replica.
    pub events: Option<Arc<dyn EventLog>>,
}

impl Supervisor {
    /// Whether the leases are shared with other replicas.
    pub(super) fn shared(&self) -> bool {
        self.config.leasing.is_some() && self.leases.shared()
    }

    /// How often [`Supervisor::keep_leases`] must run: a third of the lease time (`None`: a single process).
    #[must_use]
    pub fn lease_interval(&self) -> Option<Duration> {
        self.leasing().map(|leasing| leasing.ttl / 3)
    }

    fn leasing(&self) -> Option<Leasing> {
        self.config.leasing.clone().filter(|_| self.shared())
    }

    /// Records `watch` as watched by this replica and tries its lease: the lease and when it was confirmed when
    /// this replica won it and leads fewer services than its bound.
    pub(super) async fn want(&mut self, watch: ServiceToWatch) -> Option<(Lease, Instant)> {
        let leasing = self.leasing()?;
        let name = watch.service.spec.name.clone();
        self.wanted
            .retain(|wanted| wanted.service.spec.name != name);
        self.wanted.push(watch.clone());
        if self.live_replicas.is_none() {
            self.heartbeat(&leasing).await;
        }
        let won = if self.running.len() < self.share(&leasing) {
            self.try_acquire(&leasing, &name).await
        } else {
            None
        };
        if won.is_none() {
            tracing::info!(service = %name, replica = %leasing.replica, "service led by another replica (or over this replica's bound); standing by");
            if self.copilot.is_none() {
                // The API's copilot, before this replica leads anything.
                self.copilot = match &self.config.injected_ports {
                    Some(ports) => Some(ports.copilot.clone()),
                    None => build_ports(
                        &self.config.config,
                        &watch.service,
                        watch.builtin_demo,
                        &self.config.http,
                    )
                    .ok()
                    .map(|(ports, _)| ports.copilot),
                };
            }
        }
        won
    }

    /// The most services this replica should lead: its fair share of the watched services among the live
    /// replicas, rounded up, and never more than its configured bound.
    fn share(&self, leasing: &Leasing) -> usize {
        let live = self.live_replicas.unwrap_or(1).max(1);
        let fair = self.wanted.len().max(1).div_ceil(live);
        fair.min(leasing.max_leads.unwrap_or(usize::MAX))
    }

    /// Records this replica's heartbeat and the live replicas' count (kept as it was when the store fails).
    async fn heartbeat(&mut self, leasing: &Leasing) {
        let beat = ReplicaBeat {
            replica: leasing.replica.clone(),
            url: leasing.url.clone(),
            started_at: leasing.started_at,
        };
        let beaten = tokio::time::timeout(
            leasing.ttl / 3,
            leasing.leases.heartbeat(&beat, leasing.ttl),
        )
        .await;
        match beaten {
            Ok(Ok(live)) => {
                if self.live_replicas != Some(live) {
                    tracing::info!(replica = %leasing.replica, live_replicas = live, "live replicas changed");
                }
                self.live_replicas = Some(live);
            }
            Ok(Err(error)) => tracing::warn!(%error, "heartbeat not recorded: the store failed"),
            Err(_) => tracing::warn!("heartbeat not recorded: the store did not answer in time"),
        }
    }

    /// Over its share, hands the latest started services over: stops each one's driver, then releases its lease
    /// so another replica takes it without waiting for it to lapse.
    async fn hand_over(&mut self, leasing: &Leasing) {
        let share = self.share(leasing);
        while self.running.len() > share {
            let Some(name) = self
                .running
                .last()
                .map(|running| running.watched.name.clone())
            else {
                break;
            };
            let Some(running) = self.stop_driver(&name).await else {
                break;
            };
            let released =
                tokio::time::timeout(leasing.ttl / 3, leasing.leases.release(&running.lease)).await;
            match released {
                Ok(Ok(_)) => {
                    tracing::info!(service = %name, replica = %leasing.replica, share, "lease handed over: over this replica's fair share");
                }
                _ => {
                    tracing::warn!(service = %name, "lease handed over but not released; it lapses by itself");
                }
            }
            self.config.metrics.lease_ended(&name, false);
        }
    }

    /// One attempt at `service`'s lease, bounded by the renewal interval.
    async fn try_acquire(&self, leasing: &Leasing, service: &str) -> Option<(Lease, Instant)> {
        let sent = Instant::now();
        let attempt = tokio::time::timeout(
            leasing.ttl / 3,
            leasing
                .leases
                .acquire(service, &leasing.replica, leasing.ttl),
        )
        .await;
        match attempt {
            Ok(Ok(Some(lease))) => {
                tracing::info!(service, replica = %leasing.replica, epoch = lease.epoch, takeover = lease.epoch > 1, "lease acquired");
                Some((lease, sent))
            }
            Ok(Ok(None)) => None,
            Ok(Err(error)) => {
                tracing::warn!(service, %error, "lease not acquired: the store failed");
                None
            }
            Err(_) => {
                tracing::warn!(
                    service,
                    "lease not acquired: the store did not answer in time"
                );
                None
            }
        }
    }

    /// Renews the leases held, stops the drivers of the leases lost, and takes free leases up to the bound (see
    /// the module docs of `runtime::supervisor::leases`). Does nothing for a single process.
    pub async fn keep_leases(&mut self) {
        let Some(leasing) = self.leasing() else {
            return;
        };
        let interval = leasing.ttl / 3;
        let mut lost = Vec::new();
        for running in &self.running {
            if running.watched.driver.is_stopped() {
                lost.push((
                    running.watched.name.clone(),
                    "its driver stopped (a write was fenced)",
                ));
            }
        }
        // One renewal for every lease held, on the store's lease connections.
        let held: Vec<Lease> = self
            .running
            .iter()
            .filter(|running| !running.watched.driver.is_stopped())
            .map(|running| running.lease.clone())
            .collect();
        let sent = Instant::now();
        let renewed = if held.is_empty() {
            Ok(Ok(Vec::new()))
        } else {
            tokio::time::timeout(interval, leasing.leases.renew_all(&held, leasing.ttl)).await
        };
        let renewed = match renewed {
            Ok(Ok(answers)) if answers.len() == held.len() => Ok(answers),
            Ok(Ok(_)) => Err("the store answered for other leases".to_owned()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("no answer in time".to_owned()),
        };
        for running in &mut self.running {
            let Some(index) = held
                .iter()
                .position(|lease| lease.service == running.watched.name)
            else {
                continue;
            };
            let name = running.watched.name.clone();
            match &renewed {
                Ok(answers) => match &answers[index] {
                    Some(lease) => {
                        running.lease = lease.clone();
                        running.confirmed = sent;
                        self.config.metrics.lease_renewed();
                    }
                    None => lost.push((name, "the lease was taken over or lapsed")),
                },
                // Unconfirmed: stop before the lease could lapse, i.e. before the next renewal is due.
                Err(_) if Instant::now() + interval >= running.confirmed + leasing.ttl => {
                    lost.push((
                        name,
                        "the lease cannot be confirmed (the store is unreachable)",
                    ));
                }
                Err(why) => {
                    tracing::warn!(service = %name, %why, "lease renewal failed; trying again");
                }
            }
        }
        for (name, why) in lost {
            tracing::warn!(service = %name, replica = %leasing.replica, why, "lease lost: the driver stops");
            self.stop_driver(&name).await;
            self.config.metrics.lease_ended(&name, true);
        }
        self.heartbeat(&leasing).await;
        self.hand_over(&leasing).await;
        let bound = self.share(&leasing);
        let candidates: Vec<ServiceToWatch> = self
            .wanted
            .iter()
            .filter(|watch| {
                !self
                    .running
                    .iter()
                    .any(|running| running.watched.name == watch.service.spec.name)
            })
            .cloned()
            .collect();
        for watch in candidates {
            if self.running.len() >= bound {
                break;
            }
            let name = watch.service.spec.name.clone();
            let Some((lease, confirmed)) = self.try_acquire(&leasing, &name).await else {
                continue;
            };
            let epoch = lease.epoch;
            if let Err(error) = self.start_led(watch, lease.clone(), confirmed).await {
                tracing::error!(service = %name, %error, "a service whose lease was won could not start; lease released");
                let _ = leasing.leases.release(&lease).await;
            } else {
                // Only now: a replica says it leads a service once its driver answers.
                self.config.metrics.lease_acquired(&name, epoch);
            }
        }
        self.follow_kill_switch(interval).await;
    }

    /// Step 6 of the module docs: the saved kill switch, told to every driver run here when it changed since the
    /// last round. A store that does not answer within `within` is asked again next round.
    async fn follow_kill_switch(&mut self, within: Duration) {
        let store = Arc::clone(&self.config.store);
        let Ok(Ok(text)) = tokio::time::timeout(within, store.setting(KILL_SWITCH_SETTING)).await
        else {
            return;
        };
        if text == self.kill_switch_seen {
            return;
        }
        let state = match kill_switch(store.as_ref()).await {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, "the saved kill switch cannot be read; asked again next round");
                return;
            }
        };
        self.kill_switch_seen = text;
        let Some(by) = state.changed_by else {
            return;
        };
        for running in &self.running {
            let told = running
                .watched
                .driver
                .set_kill_switch(state.engaged, by.clone());
            if tokio::time::timeout(within, told).await.is_err() {
                tracing::warn!(service = %running.watched.name, "a driver did not take the kill switch in time; its engine gets it at its next start");
            }
        }
    }
}

/// The watched services of a replica that leads none of them: each answers that it is unavailable here.
pub(super) fn standby(wanted: &[ServiceToWatch]) -> Vec<WatchedService> {
    wanted
        .iter()
        .map(|watch| WatchedService {
            name: watch.service.spec.name.clone(),
            base_url: watch.service.spec.base_url.clone(),
            alert_labels: watch.service.alert_labels.clone(),
            signals: "led by another replica".to_owned(),
            driver: ServiceHandle::closed(),
            copilot_sources: CopilotSources::default(),
        })
        .collect()
}
