//! [`FakeLookup`]: scripted answers to a copilot's look-ups, per tool, with the calls recorded.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::pause;
use crate::error::{AdapterError, ErrorKind};
use crate::ports::{CopilotLookup, Lookup};

/// A scriptable [`CopilotLookup`]. Unscripted look-ups answer `{"lookup": "<tool name>"}`.
#[derive(Debug, Default)]
pub struct FakeLookup {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    answers: HashMap<&'static str, Result<Value, ErrorKind>>,
    delay: Duration,
    calls: Vec<Lookup>,
}

impl FakeLookup {
    /// A look-up answering `{"lookup": "<tool name>"}` to everything.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `value` to every look-up of the tool `tool_name` (for example `"get_signals"`).
    pub fn set_answer(&self, tool_name: &'static str, value: Value) {
        self.lock().answers.insert(tool_name, Ok(value));
    }

    /// Fails every look-up of the tool `tool_name` with `kind`.
    pub fn set_failure(&self, tool_name: &'static str, kind: ErrorKind) {
        self.lock().answers.insert(tool_name, Err(kind));
    }

    /// Delays every look-up by `delay` (tokio clock).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Every look-up so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Lookup> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CopilotLookup for FakeLookup {
    async fn look_up(&self, lookup: &Lookup) -> Result<Value, AdapterError> {
        let (answer, delay) = {
            let mut inner = self.lock();
            inner.calls.push(lookup.clone());
            (inner.answers.get(lookup.tool_name()).cloned(), inner.delay)
        };
        pause(delay).await;
        match answer {
            Some(Ok(value)) => Ok(value),
            Some(Err(kind)) => Err(AdapterError::new(kind, "fake look-up failure")),
            None => Ok(json!({"lookup": lookup.tool_name()})),
        }
    }
}
