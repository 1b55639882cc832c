//! [`Script`]: the scripting machinery every fake shares: queued answers (used first, in order), a sticky
//! injected failure, a delay, the record of every call, and the fake's own extra state, all behind one lock.
//!
//! A fake asks its script for a [`Turn`] at the start of each call; the turn carries the scripted answer (or
//! `None`, meaning "give your default answer"), the delay to apply and a snapshot of the extra state, all read
//! under the same lock that recorded the call.
//!
//! `scripted_methods!` writes the public methods every scripted fake has alike (`push_error`, `set_failure`,
//! `set_delay`, `calls`), each forwarding to the fake's `script` field.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::{AdapterError, ErrorKind};

/// The script of a fake whose calls answer `T` and are recorded as `C`; `S` is the fake's extra state (a sticky
/// default answer, a table of overrides, or nothing).
#[derive(Debug)]
pub(super) struct Script<T, C, S = ()> {
    state: Mutex<State<T, C, S>>,
}

#[derive(Debug)]
struct State<T, C, S> {
    queue: VecDeque<Result<T, AdapterError>>,
    failure: Option<ErrorKind>,
    delay: Duration,
    calls: Vec<C>,
    extra: S,
}

/// What one call of a fake gets from its script.
pub(super) struct Turn<T, S> {
    /// The next queued answer, else the sticky failure; `None` when the fake gives its default answer.
    pub(super) answer: Option<Result<T, AdapterError>>,
    /// The delay set with [`Script::set_delay`].
    pub(super) delay: Duration,
    /// The extra state at the time of the call.
    pub(super) extra: S,
}

impl<T, C, S> Script<T, C, S> {
    /// A script with an empty queue, no failure, no delay and `extra` as the fake's own state.
    pub(super) fn new(extra: S) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                failure: None,
                delay: Duration::ZERO,
                calls: Vec::new(),
                extra,
            }),
        }
    }

    /// Queues one answer (a success or a one-shot failure).
    pub(super) fn push(&self, answer: Result<T, AdapterError>) {
        self.lock().queue.push_back(answer);
    }

    /// Makes every call (once the queue is empty) fail with `kind`, or stops failing with `None`.
    pub(super) fn set_failure(&self, kind: Option<ErrorKind>) {
        self.lock().failure = kind;
    }

    /// The delay handed out with every turn.
    pub(super) fn delay(&self) -> Duration {
        self.lock().delay
    }

    /// Sets the delay handed out with every turn.
    pub(super) fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Changes the fake's extra state.
    pub(super) fn update_extra<R>(&self, update: impl FnOnce(&mut S) -> R) -> R {
        update(&mut self.lock().extra)
    }

    /// Every call recorded so far.
    pub(super) fn calls(&self) -> Vec<C>
    where
        C: Clone,
    {
        self.lock().calls.clone()
    }

    /// Records `call` and hands out its scripted answer, the delay and a snapshot of the extra state.
    pub(super) fn turn(&self, call: C) -> Turn<T, S>
    where
        S: Clone,
    {
        let mut state = self.lock();
        state.calls.push(call);
        let answer = match state.queue.pop_front() {
            Some(answer) => Some(answer),
            None => state.failure.map(|kind| Err(injected(kind))),
        };
        Turn {
            answer,
            delay: state.delay,
            extra: state.extra.clone(),
        }
    }

    /// Locks the script; a poisoned lock (a panicking test thread) still gives the data.
    fn lock(&self) -> MutexGuard<'_, State<T, C, S>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T, C, S: Default> Default for Script<T, C, S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

/// The error a fake returns for an injected failure of `kind`.
fn injected(kind: ErrorKind) -> AdapterError {
    AdapterError::new(kind, "fake: injected failure")
}

/// Writes the scripting methods every fake has alike, forwarding to its `script` field (a [`Script`]):
/// `push_error`, `set_failure`, `set_delay` and `calls`.
///
/// `scripted_methods!(Fake, "call", Recorded, "calls doc")` names one call `call` in the docs and records calls as
/// `Recorded`; a trailing `delay: "doc"` replaces the default doc of `set_delay` (for a fake whose delay is not
/// simply a delay of every call).
macro_rules! scripted_methods {
    ($fake:ty, $call:literal, $record:ty, $calls:literal) => {
        scripted_methods!(
            $fake,
            $call,
            $record,
            $calls,
            delay: concat!("Delays every ", $call, " by `delay` (tokio clock).")
        );
    };
    ($fake:ty, $call:literal, $record:ty, $calls:literal, delay: $delay:expr) => {
        impl $fake {
            #[doc = concat!("Queues one failure, for the next ", $call, " that finds it first in the queue.")]
            pub fn push_error(&self, error: $crate::error::AdapterError) {
                self.script.push(Err(error));
            }

            #[doc = concat!(
                "Makes every ",
                $call,
                " (once the queue is empty) fail with `kind`, or stops failing with `None`."
            )]
            pub fn set_failure(&self, kind: Option<$crate::error::ErrorKind>) {
                self.script.set_failure(kind);
            }

            #[doc = $delay]
            pub fn set_delay(&self, delay: std::time::Duration) {
                self.script.set_delay(delay);
            }

            #[doc = $calls]
            #[must_use]
            pub fn calls(&self) -> Vec<$record> {
                self.script.calls()
            }
        }
    };
}

pub(super) use scripted_methods;
