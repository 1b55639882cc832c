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
//! 3. while it leads fewer services than its bound, it tries the free or lapsed leases of the services it watches
//!    and starts the driver of each lease it wins (restored from the journal, as after a restart).
//!
//! Lease times are the database's clock; the replica's own clock only measures how long ago it last confirmed a
//! lease (a monotonic `Instant`), so clock skew between replicas does not matter.

use std::time::Duration;

use fixloop_adapters::Lease;
use tokio::time::Instant;

use super::{Leasing, ServiceToWatch, Supervisor};
use crate::runtime::ServiceHandle;
use crate::runtime::ports::build_ports;
use crate::runtime::services::{CopilotSources, WatchedService};

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
        let won = if self.running.len() < leasing.max_leads.unwrap_or(usize::MAX) {
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
        for running in &mut self.running {
            let name = running.watched.name.clone();
            if running.watched.driver.is_stopped() {
                lost.push((name, "its driver stopped (a write was fenced)"));
                continue;
            }
            let sent = Instant::now();
            let renewed =
                tokio::time::timeout(interval, leasing.leases.renew(&running.lease, leasing.ttl))
                    .await;
            match renewed {
                Ok(Ok(Some(lease))) => {
                    running.lease = lease;
                    running.confirmed = sent;
                    self.config.metrics.lease_renewed();
                }
                Ok(Ok(None)) => lost.push((name, "the lease was taken over or lapsed")),
                failed => {
                    // Unconfirmed: stop before the lease could lapse, i.e. before the next renewal is due.
                    if Instant::now() + interval >= running.confirmed + leasing.ttl {
                        lost.push((
                            name,
                            "the lease cannot be confirmed (the store is unreachable)",
                        ));
                    } else {
                        let why = match failed {
                            Ok(Err(error)) => error.to_string(),
                            _ => "no answer in time".to_owned(),
                        };
                        tracing::warn!(service = %running.watched.name, %why, "lease renewal failed; trying again");
                    }
                }
            }
        }
        for (name, why) in lost {
            tracing::warn!(service = %name, replica = %leasing.replica, why, "lease lost: the driver stops");
            self.stop_driver(&name).await;
            self.config.metrics.lease_ended(&name, true);
        }
        let bound = leasing.max_leads.unwrap_or(usize::MAX);
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
