//! The store's own thread: every call on a store's SQLite connection (appends, snapshots and compaction, reads,
//! the flush at close) runs on one dedicated thread named [`THREAD_NAME`], in the order the calls were made, so
//! no SQLite call ever blocks one of tokio's async worker threads and no append can overtake an earlier one.
//!
//! The thread owns the connection; callers send it jobs over a channel and await the answer. It ends, closing the
//! connection, once every handle to the store is dropped.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use rusqlite::Connection;

use super::super::StoreError;

/// The name of the thread every call on a store's connection runs on.
pub const THREAD_NAME: &str = "fixloop-store";

/// A call on the connection (`None` once the store is closed).
type Job = Box<dyn FnOnce(&mut Option<Connection>) + Send>;

/// A handle to a store's thread. Cheap to clone; the thread ends when the last handle is dropped.
#[derive(Clone)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread that owns `connection`.
    pub(super) fn start(connection: Connection, location: &str) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let mut connection = Some(connection);
                while let Ok(job) = queue.recv() {
                    // A job that panics answers nothing (its caller gets an error); the next job still runs.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
                }
            })
            .map_err(|error| StoreError::Failed {
                location: location.to_owned(),
                why: format!("cannot start the store's thread: {error}"),
            })?;
        Ok(Self { jobs })
    }

    /// Runs `job` on the store's thread, after every job sent before it, and awaits its answer.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        location: &str,
        job: impl FnOnce(&mut Option<Connection>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let lost = |why: &str| StoreError::Failed {
            location: location.to_owned(),
            why: why.to_owned(),
        };
        self.jobs
            .send(Box::new(move |connection| {
                let _ = reply.send(job(connection));
            }))
            .map_err(|_| lost("the store's thread has stopped"))?;
        answer
            .await
            .map_err(|_| lost("the store call failed unexpectedly (it panicked)"))?
    }
}
