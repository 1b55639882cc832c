//! [`CommandExecutor`]: an action that runs one program with an argv, never through a shell.
//!
//! The program must be an absolute path on the executor's allowlist; the argv's `{name}` placeholders are filled
//! from the request's arguments, each argument landing inside one argv element (no shell, so no word splitting,
//! globbing or substitution). The child starts with an empty environment plus the configured variables (secrets,
//! resolved by the binary, never shown in `Debug`, descriptions or captured output), standard input closed, in a
//! process group of its own; at the deadline the whole group is killed, so a command cannot leave workers behind.
//! Standard output and standard error are captured, each capped; the action ends when the child has exited and
//! both pipes are closed, so a background process that keeps them open holds the action until the deadline
//! (redirect its output to detach it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::time::Instant;

use super::capture::{Captured, DEFAULT_OUTPUT_LIMIT, read_capped};
use super::template::{check_arguments, fill};
use super::{
    ActionDescription, ActionOutcome, ActionRequest, ActionStatus, Executor, effective_deadline,
    find_action,
};
use crate::error::AdapterError;
use crate::secret::Secret;

/// One command action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAction {
    /// Absolute path of the program, which must be on the allowlist.
    pub program: PathBuf,
    /// The argv after the program, each element a template (`"{unit}"` is filled with the `unit` argument).
    pub args: Vec<String>,
}

/// Configuration of a [`CommandExecutor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandExecutorConfig {
    /// Programs an action may run, as absolute paths compared exactly.
    pub allowed_programs: Vec<PathBuf>,
    /// The actions by id.
    pub actions: BTreeMap<String, CommandAction>,
    /// Plain variables of the child's environment (`PATH`, `LANG`); with `secret_environment`, its whole
    /// environment: nothing else is inherited.
    pub environment: BTreeMap<String, String>,
    /// Secret variables of the child's environment (tokens, resolved by name by the binary); their values are
    /// redacted from descriptions and captured output.
    pub secret_environment: BTreeMap<String, Secret>,
    /// The child's working directory; the server's when `None`.
    pub working_directory: Option<PathBuf>,
    /// Longest one action may take (a request's shorter deadline wins). Default 30 s.
    pub timeout: Duration,
    /// Largest standard output and standard error kept, each, in bytes. Default [`DEFAULT_OUTPUT_LIMIT`].
    pub output_limit: usize,
}

impl Default for CommandExecutorConfig {
    fn default() -> Self {
        Self {
            allowed_programs: Vec::new(),
            actions: BTreeMap::new(),
            environment: BTreeMap::new(),
            secret_environment: BTreeMap::new(),
            working_directory: None,
            timeout: Duration::from_secs(30),
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// Runs [`CommandAction`]s (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    config: CommandExecutorConfig,
}

impl CommandExecutor {
    /// An executor with `config`.
    #[must_use]
    pub fn new(config: CommandExecutorConfig) -> Self {
        Self { config }
    }

    /// The program and the filled argv of `request`, checked against the configuration.
    fn prepare(&self, request: &ActionRequest) -> Result<(PathBuf, Vec<String>), AdapterError> {
        let action = find_action(&self.config.actions, request)?;
        if !action.program.is_absolute() {
            return Err(AdapterError::refused(format!(
                "program {} is not an absolute path",
                action.program.display()
            )));
        }
        if !self.config.allowed_programs.contains(&action.program) {
            return Err(AdapterError::refused(format!(
                "program {} is not on the allowlist",
                action.program.display()
            )));
        }
        check_arguments(action.args.iter().map(String::as_str), &request.arguments)?;
        let args = action
            .args
            .iter()
            .map(|template| fill(template, &request.arguments, str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((action.program.clone(), args))
    }

    fn secrets(&self) -> Vec<&Secret> {
        self.config.secret_environment.values().collect()
    }
}

#[async_trait]
impl Executor for CommandExecutor {
    fn action_ids(&self) -> Vec<String> {
        self.config.actions.keys().cloned().collect()
    }

    fn describe(&self, request: &ActionRequest) -> Result<ActionDescription, AdapterError> {
        let (program, args) = self.prepare(request)?;
        let mut summary = program.display().to_string();
        for arg in args {
            summary.push(' ');
            summary.push_str(&shell_quote(&redact(&arg, &self.secrets())));
        }
        Ok(ActionDescription {
            action_id: request.action_id.clone(),
            summary,
        })
    }

    async fn execute(&self, request: &ActionRequest) -> Result<ActionOutcome, AdapterError> {
        let (program, args) = self.prepare(request)?;
        let deadline = effective_deadline(request, self.config.timeout);
        let mut command = Command::new(&program);
        command
            .args(&args)
            .env_clear()
            .envs(&self.config.environment)
            .envs(
                self.config
                    .secret_environment
                    .iter()
                    .map(|(name, value)| (name, value.expose())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(directory) = &self.config.working_directory {
            command.current_dir(directory);
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|error| {
            AdapterError::unavailable(format!("could not start {}", program.display()))
                .with_source(error)
        })?;
        // Armed until the child has been waited for: a timeout, or the caller dropping this future (the driver
        // cancelling the action), kills the whole group, not only the child that `kill_on_drop` reaches.
        let mut group = GroupGuard(
            child
                .id()
                .and_then(|id| i32::try_from(id).ok())
                .map(Pid::from_raw),
        );
        let limit = self.config.output_limit;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let finished = tokio::time::timeout(deadline, async {
            let read_out = async {
                match stdout {
                    Some(pipe) => read_capped(pipe, limit).await,
                    None => Ok((Vec::new(), 0)),
                }
            };
            let read_err = async {
                match stderr {
                    Some(pipe) => read_capped(pipe, limit).await,
                    None => Ok((Vec::new(), 0)),
                }
            };
            tokio::join!(child.wait(), read_out, read_err)
        })
        .await;
        let Ok((status, out, err)) = finished else {
            // The deadline passed: kill the whole group (the child and anything it started), then reap the child.
            drop(group);
            let _ = child.kill().await;
            return Err(
                AdapterError::timeout(deadline).with_source(std::io::Error::other(format!(
                    "{} killed with its process group",
                    program.display()
                ))),
            );
        };
        group.disarm();
        let duration = started.elapsed();
        let status = status.map_err(|error| {
            AdapterError::unavailable("could not wait for the command").with_source(error)
        })?;
        let secrets = self.secrets();
        let capture = |read: std::io::Result<(Vec<u8>, u64)>| {
            read.map(|(bytes, total)| Captured::from_bytes(&bytes, total, limit, &secrets))
                .unwrap_or_default()
        };
        let detail = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        Ok(ActionOutcome {
            status: if status.success() {
                ActionStatus::Completed
            } else {
                ActionStatus::Failed
            },
            detail,
            output: capture(out),
            error_output: capture(err),
            duration,
        })
    }
}

/// Kills a process group with `SIGKILL` when dropped, unless disarmed.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    /// The child ended normally: leave its group alone (a daemon it started on purpose keeps running).
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            // The group may already be gone (ESRCH): nothing is left to kill.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

/// `text` with every secret value replaced by `[redacted]`.
fn redact(text: &str, secrets: &[&Secret]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.expose(), "[redacted]")
        })
}

/// Quotes an argv element for a one-line description (single quotes when it holds anything but safe characters).
fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%[]".contains(c));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
