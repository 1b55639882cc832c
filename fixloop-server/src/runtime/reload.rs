//! Live reload: the profile read again and the running services brought in line with it, while the process runs.
//!
//! [`spawn`] moves the [`Supervisor`] into one task, which alone changes the running set: a reload (from SIGHUP or
//! `POST /api/admin/reload`, both through a [`Reloader`]) is taken one at a time, in arrival order. A reload reads
//! the profile through the [`ProfileSource`] the command line built (the file and the environment; the runtime reads
//! neither), then:
//!
//! 1. a profile with problems is refused whole, with every problem, and nothing changes;
//! 2. every service it would start (added or changed) is checked first (its ports, its run deadline): one that
//!    cannot start refuses the reload whole, and nothing changes;
//! 3. removed services stop (their journal kept), changed services restart (their engine restored from the journal,
//!    so an open incident survives), added services start; unchanged services are not touched. The running set
//!    handed to the HTTP layer changes once, at the end, in the profile's order. While a changed service restarts
//!    (a few milliseconds: its last snapshot saved, its engine restored), requests for it answer that it is
//!    unavailable; no two drivers of one service ever run at once (they would write one journal).
//!
//! With shared leases (replicas), a reload changes which services this replica *watches*: a service is started only
//! when its lease is won, and [`Supervisor::keep_leases`] runs here too, every third of the lease time.
//!
//! The outcome is logged once per reload, whoever asked (`profile reloaded`, or `profile reload refused` with the
//! problems). A restart that fails after the checks (its journal cannot be read) is logged as an error and leaves that
//! service stopped; the others go on.

use std::sync::Arc;
use std::time::Duration;

use fixloop_contract::ReloadReport;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::profile::reload::changes;
use crate::profile::{Profile, ProfileError, ProfileProblem};
use crate::runtime::supervisor::{ServiceToWatch, Supervisor};

/// Reads the profile again: the file the server started from, with the secrets of its environment. Built by the
/// command line, which alone reads files named on it and the environment. It may block (it reads a file).
#[derive(Clone)]
pub struct ProfileSource(Arc<dyn Fn() -> Result<Profile, ProfileError> + Send + Sync>);

impl ProfileSource {
    /// A source that calls `read` on every reload.
    pub fn new(read: impl Fn() -> Result<Profile, ProfileError> + Send + Sync + 'static) -> Self {
        Self(Arc::new(read))
    }
}

impl std::fmt::Debug for ProfileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProfileSource")
    }
}

/// Why a reload changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The server was not started from a profile file.
    #[error("the server was not started from a profile file: there is nothing to reload")]
    NoProfile,
    /// The profile has problems, or one of its services cannot start; the running services are unchanged.
    #[error("{0}")]
    Invalid(ProfileError),
    /// The process is stopping.
    #[error("the server is stopping")]
    Stopped,
}

type Request = oneshot::Sender<Result<ReloadReport, ReloadError>>;

/// Asks the supervisor's task for a reload. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloader {
    /// `None`: no supervisor's task (an API built around a single driver): nothing to reload.
    requests: Option<mpsc::Sender<Request>>,
}

impl Reloader {
    /// A reloader with no profile behind it: every reload answers [`ReloadError::NoProfile`] (for an API built
    /// around drivers it did not start).
    #[must_use]
    pub fn without_profile() -> Self {
        Self { requests: None }
    }

    /// Reloads the profile and waits for the outcome (it is logged too).
    ///
    /// # Errors
    ///
    /// [`ReloadError`]: nothing to reload, a profile refused whole, or the process stopping.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let Some(requests) = &self.requests else {
            return Err(ReloadError::NoProfile);
        };
        let (reply, answer) = oneshot::channel();
        requests
            .send(reply)
            .await
            .map_err(|_| ReloadError::Stopped)?;
        answer.await.map_err(|_| ReloadError::Stopped)?
    }
}

/// Moves `supervisor` into its own task, which applies reloads until `process_stop`, then stops every driver.
/// `source` is `None` when the server was not started from a profile file (every reload then answers
/// [`ReloadError::NoProfile`]). On replicas, `directory` learns the reloaded profile's order of services (the order
/// whole-system reads merge in).
#[must_use]
pub fn spawn(
    mut supervisor: Supervisor,
    source: Option<ProfileSource>,
    directory: Option<crate::runtime::replicas::ReplicaDirectory>,
    mut process_stop: watch::Receiver<bool>,
) -> (Reloader, JoinHandle<()>) {
    // Reloads wait in line; a caller beyond the line waits to send.
    let (requests, mut pending) = mpsc::channel::<Request>(8);
    let task = tokio::spawn(async move {
        // Replicas keep their leases from this task too: it alone changes the running set.
        let lease_interval = supervisor.lease_interval();
        let mut leases = tokio::time::interval(lease_interval.unwrap_or(Duration::from_secs(3600)));
        leases.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = leases.tick(), if lease_interval.is_some() => supervisor.keep_leases().await,
                request = pending.recv() => {
                    let Some(reply) = request else { break };
                    let outcome = reload(&mut supervisor, source.as_ref(), directory.as_ref()).await;
                    let _ = reply.send(outcome);
                }
                // An error means the sender is gone, which also means stop.
                () = stopped(&mut process_stop) => break,
            }
        }
        supervisor.shutdown().await;
    });
    (
        Reloader {
            requests: Some(requests),
        },
        task,
    )
}

/// Resolves when the process stops (the guard `wait_for` gives is dropped here: it must not live across an await).
async fn stopped(process_stop: &mut watch::Receiver<bool>) {
    let _ = process_stop.wait_for(|stop| *stop).await;
}

async fn reload(
    supervisor: &mut Supervisor,
    source: Option<&ProfileSource>,
    directory: Option<&crate::runtime::replicas::ReplicaDirectory>,
) -> Result<ReloadReport, ReloadError> {
    let Some(source) = source else {
        tracing::warn!("profile reload asked, but the server was not started from a profile file");
        return Err(ReloadError::NoProfile);
    };
    let source = Arc::clone(&source.0);
    let loaded = tokio::task::spawn_blocking(move || source())
        .await
        .unwrap_or_else(|error| {
            Err(ProfileError {
                origin: "<profile>".to_owned(),
                problems: vec![problem("", format!("reading the profile failed: {error}"))],
            })
        });
    let outcome = match loaded {
        Ok(profile) => {
            let outcome = apply(supervisor, &profile).await;
            if let (Ok(_), Some(directory)) = (&outcome, directory) {
                directory.set_services(
                    profile
                        .services
                        .iter()
                        .map(|service| service.spec.name.clone())
                        .collect(),
                );
            }
            outcome
        }
        Err(error) => Err(ReloadError::Invalid(error)),
    };
    match &outcome {
        Ok(report) => tracing::info!(
            added = ?report.added,
            removed = ?report.removed,
            restarted = ?report.restarted,
            unchanged = ?report.unchanged,
            "profile reloaded"
        ),
        Err(error) => {
            tracing::warn!(%error, "profile reload refused; the running services are unchanged")
        }
    }
    outcome
}

async fn apply(
    supervisor: &mut Supervisor,
    profile: &Profile,
) -> Result<ReloadReport, ReloadError> {
    let changes = changes(&supervisor.profiles(), profile);
    let starts: Vec<ServiceToWatch> = changes
        .changed
        .iter()
        .chain(&changes.added)
        .map(|service| ServiceToWatch {
            service: service.clone(),
            builtin_demo: false,
            profile_sha256: Some(profile.sha256.clone()),
        })
        .collect();
    let problems: Vec<ProfileProblem> = starts
        .iter()
        .filter_map(|watch| {
            supervisor.check(watch).err().map(|error| {
                problem(
                    &format!("service {}", watch.service.spec.name),
                    format!("cannot start: {error}"),
                )
            })
        })
        .collect();
    if !problems.is_empty() {
        return Err(ReloadError::Invalid(ProfileError {
            origin: "the reloaded profile".to_owned(),
            problems,
        }));
    }
    let report = ReloadReport {
        added: changes.added_names(),
        removed: changes.removed.clone(),
        restarted: changes.changed_names(),
        unchanged: changes.unchanged.clone(),
    };
    if changes.is_empty() {
        return Ok(report);
    }
    supervisor.defer_publishing(true, &changes.order);
    if changes.order.len() > 1 {
        // Ids stay unique across the services' engines once there are several.
        supervisor.name_ids(true);
    }
    for name in changes.removed.iter().chain(&report.restarted) {
        supervisor.stop(name).await;
    }
    for watch in starts {
        let name = watch.service.spec.name.clone();
        if let Err(error) = supervisor.start(watch).await {
            tracing::error!(service = %name, %error, "a reloaded service could not start; it stays stopped");
        }
    }
    supervisor.defer_publishing(false, &changes.order);
    Ok(report)
}

fn problem(path: &str, message: String) -> ProfileProblem {
    ProfileProblem {
        path: path.to_owned(),
        message,
    }
}
