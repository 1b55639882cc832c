//! The profile's `[[notify]]` tables: where notifications go (a generic JSON webhook, a Slack-compatible incoming
//! webhook, PagerDuty Events API v2), checked into [`NotifySink`]s.
//!
//! ```toml
//! [[notify]]
//! name = "ops"                      # the sink's name in the outbox: unique, a-z 0-9 - _ .
//! type = "webhook"                  # webhook | slack | pagerduty
//! url = "${env:OPS_WEBHOOK_URL}"    # a literal http(s) URL or one ${env:NAME} reference
//! signing_secret = "${env:OPS_WEBHOOK_SECRET}"   # webhook only: Standard Webhooks whsec_…
//!
//! [[notify]]
//! name = "pager"
//! type = "pagerduty"
//! routing_key = "${env:PAGERDUTY_ROUTING_KEY}"
//! ```
//!
//! URLs, keys and signing secrets are credentials: they may be written as `${env:NAME}` (resolved from the
//! environment handed in, never stored in the profile) and are held as [`Secret`]s. A URL is checked like the
//! services' (absolute http or https, no credentials in it, never a link-local or cloud metadata address) once its
//! value is known.

use std::collections::BTreeSet;

use fixloop_adapters::Secret;
use fixloop_core::service::{is_secret_name, secret_references};
use serde::{Deserialize, Serialize};

use super::check::{Checker, is_service_name};
use super::{Secrets, is_metadata_target};

/// One `[[notify]]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFile {
    /// The sink's name in the outbox (unique; `a-z 0-9 - _ .`).
    pub name: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    /// The receiver's URL (webhook, slack: required; pagerduty: the Events API's enqueue URL, optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The Standard Webhooks signing secret (`whsec_…`, webhook only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// The Events API v2 integration key (pagerduty only, required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
}

/// The kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A generic JSON webhook (Standard Webhooks shape).
    Webhook,
    /// A Slack-compatible incoming webhook.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
}

/// A checked sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySink {
    /// The sink's name in the outbox.
    pub name: String,
    /// How it is reached.
    pub target: NotifyTarget,
}

/// How a sink is reached; every credential a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A generic JSON webhook.
    Webhook {
        /// The receiver's URL.
        url: Secret,
        /// The signing secret, if any.
        signing_secret: Option<Secret>,
    },
    /// A Slack-compatible incoming webhook.
    Slack {
        /// The webhook's URL.
        url: Secret,
    },
    /// PagerDuty Events API v2.
    PagerDuty {
        /// The enqueue URL; `None` for PagerDuty's own.
        url: Option<String>,
        /// The integration key.
        routing_key: Secret,
    },
}

impl NotifyTarget {
    /// The sink's kind as the profile writes it: `webhook`, `slack` or `pagerduty`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::PagerDuty { .. } => "pagerduty",
        }
    }
}

impl Checker {
    /// Checks the `[[notify]]` tables; the sinks when every one is valid.
    pub(super) fn notify(
        &mut self,
        files: Vec<NotifyFile>,
        secrets: Secrets<'_>,
    ) -> Vec<NotifySink> {
        let mut names = BTreeSet::new();
        let mut sinks = Vec::new();
        for (index, file) in files.into_iter().enumerate() {
            let at = format!("notify[{index}]");
            let before = self.problems.len();
            if !is_service_name(&file.name) {
                self.push(
                    format!("{at}.name"),
                    format!(
                        "`{}` is not a sink name: use 1 to 64 of a-z, 0-9, `-`, `_` and `.`",
                        file.name
                    ),
                );
            }
            if !names.insert(file.name.clone()) {
                self.push(
                    format!("{at}.name"),
                    format!("sink name `{}` is used twice", file.name),
                );
            }
            let mut value = |key: &str, text: Option<&String>, required: bool| -> Option<Secret> {
                let path = format!("{at}.{key}");
                match text {
                    None if required => {
                        self.push(path, format!("a {:?} sink needs `{key}`", file.kind));
                        None
                    }
                    None => None,
                    Some(text) => self.credential(&path, text, secrets),
                }
            };
            let target = match file.kind {
                NotifyKind::Webhook => {
                    let url = value("url", file.url.as_ref(), true);
                    let signing_secret =
                        value("signing_secret", file.signing_secret.as_ref(), false);
                    self.not_for(&at, "routing_key", file.routing_key.is_some(), file.kind);
                    url.map(|url| NotifyTarget::Webhook {
                        url,
                        signing_secret,
                    })
                }
                NotifyKind::Slack => {
                    let url = value("url", file.url.as_ref(), true);
                    self.not_for(
                        &at,
                        "signing_secret",
                        file.signing_secret.is_some(),
                        file.kind,
                    );
                    self.not_for(&at, "routing_key", file.routing_key.is_some(), file.kind);
                    url.map(|url| NotifyTarget::Slack { url })
                }
                NotifyKind::Pagerduty => {
                    let routing_key = value("routing_key", file.routing_key.as_ref(), true);
                    let url = value("url", file.url.as_ref(), false);
                    self.not_for(
                        &at,
                        "signing_secret",
                        file.signing_secret.is_some(),
                        file.kind,
                    );
                    routing_key.map(|routing_key| NotifyTarget::PagerDuty {
                        url: url.map(|url| url.expose().to_owned()),
                        routing_key,
                    })
                }
            };
            if let (Some(target), true) = (target, self.problems.len() == before) {
                sinks.push(NotifySink {
                    name: file.name,
                    target,
                });
            }
        }
        if matches!(secrets, Secrets::From(_)) {
            for (index, sink) in sinks.iter().enumerate() {
                let url = match &sink.target {
                    NotifyTarget::Webhook { url, .. } | NotifyTarget::Slack { url } => {
                        Some(url.expose())
                    }
                    NotifyTarget::PagerDuty { url, .. } => url.as_deref(),
                };
                if let Some(url) = url {
                    self.sink_url(&format!("notify[{index}].url"), url);
                }
            }
        }
        sinks
    }

    /// A credential: a literal, or exactly one `${env:NAME}` resolved from the environment (kept as written when
    /// secrets are not resolved).
    fn credential(&mut self, at: &str, text: &str, secrets: Secrets<'_>) -> Option<Secret> {
        let text = text.trim();
        let references: Vec<&str> = secret_references(text).collect();
        if references.is_empty() {
            if text.contains("${") {
                self.push(at, "a secret reference must look like ${env:NAME} with NAME made of A-Z, 0-9 and _");
                return None;
            }
            if text.is_empty() {
                self.push(at, "may not be empty");
                return None;
            }
            return Some(Secret::new(text));
        }
        let name = references[0];
        if references.len() > 1 || text != format!("${{env:{name}}}") || !is_secret_name(name) {
            self.push(
                at,
                "write either the value or exactly one ${env:NAME} reference",
            );
            return None;
        }
        match secrets {
            Secrets::Unresolved => Some(Secret::new(text)),
            Secrets::From(env) => match env.get(name).map(|value| value.trim()) {
                Some(value) if !value.is_empty() => Some(Secret::new(value)),
                _ => {
                    self.push(
                        at,
                        format!(
                            "secret {name} is not set in the environment (set {name}; its value is never stored in the profile)"
                        ),
                    );
                    None
                }
            },
        }
    }

    /// A key the sink's kind does not use.
    fn not_for(&mut self, at: &str, key: &str, present: bool, kind: NotifyKind) {
        if present {
            self.push(
                format!("{at}.{key}"),
                format!("a {kind:?} sink has no `{key}`"),
            );
        }
    }

    /// A sink's URL, once its value is known: absolute http(s), no credentials in its user part, never a
    /// link-local or cloud metadata address. The URL itself is never repeated (it may carry a token).
    fn sink_url(&mut self, at: &str, url: &str) {
        match reqwest::Url::parse(url) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https")
                    && parsed.host_str().is_some()
                    && parsed.username().is_empty()
                    && parsed.password().is_none() =>
            {
                if is_metadata_target(&parsed) {
                    self.push(
                        at,
                        "a link-local or cloud metadata address, where a cloud keeps its credentials: FixLoop sends \
                         no notification there",
                    );
                }
            }
            Ok(_) => self.push(
                at,
                "must be an absolute http or https URL without credentials",
            ),
            Err(_) => self.push(at, "is not a URL"),
        }
    }
}
