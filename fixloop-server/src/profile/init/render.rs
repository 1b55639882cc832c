//! Writing the profile: the TOML text with its comments (where each choice came from, what to review), the
//! inactive journeys commented out with their reason, the thresholds in force, and the check with
//! [`Profile::parse`].

use std::collections::BTreeMap;

use fixloop_contract::HttpMethod;
use fixloop_core::engine::Config as EngineConfig;
use fixloop_core::validate::PLAN_ITEMS;
use fixloop_core::{Policy, ServiceSpec};

use super::generate::{Built, JourneyKind};
use super::text::one_line;
use super::{Draft, Findings, InitError, InitOutput, MetricsFinding, Observed};
use crate::profile::file::{
    CheckFile, CoverageFile, JourneyFile, ProfileFile, ScrapeFile, ServiceFile, SignalsFile,
    SyntheticFile, ThresholdsFile,
};
use crate::profile::{Profile, Secrets};

/// Writes the whole profile (see the [module docs](self)).
pub(super) fn profile(draft: &Draft, findings: &Findings) -> Result<InitOutput, InitError> {
    let mut active: Vec<&Built> = draft
        .journeys
        .iter()
        .filter(|journey| journey.inactive.is_none())
        .collect();
    let inactive: Vec<&Built> = draft
        .journeys
        .iter()
        .filter(|journey| journey.inactive.is_some())
        .collect();
    if active.len() < PLAN_ITEMS {
        return Err(InitError::TooFewJourneys {
            found: active.len(),
            skipped: with_inactive(&draft.skipped, &draft.journeys),
        });
    }
    // Stable: within a tier, journeys keep the document's order.
    active.sort_by_key(|journey| journey.file.priority);
    let mut notes = Vec::new();
    let (signals, signals_comment) = signals(draft, findings, &active, &mut notes);
    let service = ServiceFile {
        name: draft.name.clone(),
        description: draft.description.clone(),
        base_url: draft.base_url.clone(),
        allowed_base_urls: Vec::new(),
        allow_metadata_targets: false,
        alert_labels: BTreeMap::from([("service".to_owned(), draft.name.clone())]),
        signals,
        thresholds: thresholds_in_force(),
        journeys: active.iter().map(|journey| journey.file.clone()).collect(),
        coverage: coverage_rules(&active),
        // Remediation is written by hand: init cannot know which actions are safe.
        remediation: None,
    };
    let journey_comments: Vec<Option<String>> = active
        .iter()
        .map(|journey| match findings.probes.get(&journey.file.id) {
            Some(Observed::Passed { status }) => {
                Some(format!("Tried by init: answered {status}, as expected."))
            }
            Some(Observed::NotTried { reason }) => Some(format!("Not tried by init: {reason}.")),
            _ => None,
        })
        .collect();
    for journey in &inactive {
        notes.push(format!(
            "journey {} ({} {}) is commented out: {}",
            journey.file.id,
            journey.file.method.as_str(),
            journey.file.path,
            journey.inactive.as_deref().unwrap_or_default()
        ));
    }
    let mut file = ProfileFile {
        service: vec![service],
        ci: None,
        notify: Vec::new(),
    };
    let header = header_comment(draft, &notes);
    let footer = inactive_journeys(&inactive)?;
    let layout = Layout {
        header: &header,
        signals: &signals_comment,
        journeys: &journey_comments,
        footer: &footer,
    };
    let toml = match render(&file, &layout) {
        Ok(toml) => toml,
        Err(InitError::Generated(_)) if !file.service[0].coverage.is_empty() => {
            // The coverage rules are a convenience; a profile without them is still a valid starting point.
            file.service[0].coverage.clear();
            render(&file, &layout)?
        }
        Err(error) => return Err(error),
    };
    Ok(InitOutput {
        toml,
        secrets: draft.secrets.clone(),
        skipped: draft.skipped.clone(),
        notes,
    })
}

/// The skipped operations plus the inactive journeys with their reasons.
pub(super) fn with_inactive(skipped: &[String], journeys: &[Built]) -> Vec<String> {
    let mut all = skipped.to_vec();
    for journey in journeys {
        if let Some(reason) = &journey.inactive {
            all.push(format!(
                "{} {} (journey {}): {reason}",
                journey.file.method.as_str(),
                journey.file.path,
                journey.file.id
            ));
        }
    }
    all
}

/// The signals section and the comment above it.
fn signals(
    draft: &Draft,
    findings: &Findings,
    active: &[&Built],
    notes: &mut Vec<String>,
) -> (SignalsFile, String) {
    let synthetic = |reason: String, notes: &mut Vec<String>| {
        notes.push(format!("signals: synthetic probes, because {reason}"));
        (
            SignalsFile::Synthetic(SyntheticFile {
                journeys: synthetic_probes(active),
            }),
            format!(
                "# Synthetic signals: FixLoop probes the journeys listed below, because {reason}.\n\
                 # Switch to scrape, prometheus or datadog when the service's metrics can be read.\n"
            ),
        )
    };
    match &findings.metrics {
        MetricsFinding::Offline => synthetic(
            "init ran with --offline and did not read the service's metrics".to_owned(),
            notes,
        ),
        MetricsFinding::NotFound { reason } => synthetic(
            format!("no usable metrics endpoint was found ({reason})"),
            notes,
        ),
        MetricsFinding::Found { path, discovery } => {
            let read_from = if fixloop_adapters::scrape::is_absolute_url(path) {
                path.clone()
            } else {
                format!("{}{path}", draft.base_url)
            };
            let mut comment = format!(
                "# Read from {read_from} by init (names and labels as the service exposes them):\n"
            );
            for note in &discovery.notes {
                comment.push_str(&format!("# - {}.\n", collapse(note)));
            }
            notes.push(format!(
                "signals: scraped from {path}: requests `{}` (status label `{}`), latency `{}`",
                discovery.requests_metric, discovery.status_label, discovery.duration_metric
            ));
            let scrape = ScrapeFile {
                metrics_path: path.clone(),
                requests_metric: discovery.requests_metric.clone(),
                duration_metric: discovery.duration_metric.clone(),
                errors_metric: None,
                status_label: discovery.status_label.clone(),
                // No such label found: an empty name says the service has none (a guessed `route` would make
                // every read blind).
                route_label: discovery.route_label.clone().unwrap_or_default(),
                method_label: discovery.method_label.clone().unwrap_or_default(),
                error_label: "error".to_owned(),
                exclude: BTreeMap::new(),
            };
            (SignalsFile::Scrape(scrape), comment)
        }
    }
}

/// The thresholds `fixloop serve` uses by default, from their owner ([`EngineConfig::seed`]), in the profile's
/// units (percent, seconds).
pub(super) fn thresholds_in_force() -> ThresholdsFile {
    let spec = ServiceSpec {
        name: String::new(),
        description: String::new(),
        base_url: String::new(),
        policy: Policy::new(Vec::new()),
        journeys: Vec::new(),
    };
    let seed = EngineConfig::seed(spec, "");
    let percent = |ratio: f64| (ratio * 100.0 * 1e6).round() / 1e6;
    ThresholdsFile {
        trigger_error_percent: Some(percent(seed.trigger_error_rate)),
        recovery_error_percent: Some(percent(seed.recovery_error_rate)),
        window_secs: Some(seed.detection_window.as_secs()),
        min_samples: Some(seed.min_samples),
        recovery_samples: Some(seed.recovery_samples),
        min_requests: Some(seed.min_requests),
        poll_interval_secs: Some(seed.poll_interval.as_secs_f64()),
    }
}

/// The coverage rules: one per negative kind present, `sends_authorization` on a secured positive journey, and the
/// health check; each is satisfied by a journey of its own.
fn coverage_rules(journeys: &[&Built]) -> Vec<CoverageFile> {
    let mut rules = Vec::new();
    let path_of = |journey: &JourneyFile| {
        journey
            .path
            .split('?')
            .next()
            .unwrap_or(&journey.path)
            .to_owned()
    };
    for (kind, what) in [
        (JourneyKind::InvalidBody, "negative"),
        (JourneyKind::NoCredentials, "unauthenticated"),
    ] {
        if let Some(journey) = journeys.iter().find(|journey| journey.kind == kind) {
            let path = path_of(&journey.file);
            rules.push(CoverageFile {
                name: format!("{what} {} {path} test", journey.file.method.as_str()),
                path,
                method: Some(journey.file.method),
                check: CheckFile::ExpectsClientError,
            });
        }
    }
    if let Some(journey) = journeys.iter().find(|journey| {
        !journey.kind.is_negative()
            && journey
                .file
                .headers
                .keys()
                .any(|name| name.eq_ignore_ascii_case("authorization"))
    }) {
        let path = path_of(&journey.file);
        rules.push(CoverageFile {
            name: format!("authenticated {} {path} call", journey.file.method.as_str()),
            path,
            method: Some(journey.file.method),
            check: CheckFile::SendsAuthorization,
        });
    }
    if let Some(journey) = journeys
        .iter()
        .find(|journey| journey.kind == JourneyKind::Health)
    {
        rules.push(CoverageFile {
            name: "health check".to_owned(),
            path: path_of(&journey.file),
            method: Some(HttpMethod::Get),
            check: CheckFile::ExpectsSuccess,
        });
    }
    rules
}

/// The journeys a synthetic source probes: the positive `GET`s, else every positive journey.
fn synthetic_probes(journeys: &[&Built]) -> Vec<String> {
    let positive = || {
        journeys
            .iter()
            .filter(|journey| !journey.kind.is_negative())
    };
    let gets: Vec<String> = positive()
        .filter(|journey| journey.file.method == HttpMethod::Get)
        .map(|journey| journey.file.id.clone())
        .collect();
    if gets.is_empty() {
        positive().map(|journey| journey.file.id.clone()).collect()
    } else {
        gets
    }
}

/// The comments placed around the serialized profile.
struct Layout<'a> {
    header: &'a str,
    signals: &'a str,
    /// One per active journey, in order.
    journeys: &'a [Option<String>],
    footer: &'a str,
}

/// Serializes the profile, adds the comments, and checks the result with [`Profile::parse`].
fn render(file: &ProfileFile, layout: &Layout<'_>) -> Result<String, InitError> {
    let body = toml::to_string_pretty(file).map_err(InitError::Serialize)?;
    let mut toml =
        String::with_capacity(layout.header.len() + body.len() + layout.footer.len() + 512);
    toml.push_str(layout.header);
    let mut journey = 0;
    for line in body.lines() {
        match line.trim() {
            "[service.signals]" => toml.push_str(layout.signals),
            "[service.thresholds]" => toml.push_str(
                "# The thresholds `fixloop serve` uses by default, written out so they can be seen and tuned\n\
                 # (error rates in percent, times in seconds).\n",
            ),
            "[[service.journeys]]" => {
                if journey == 0 {
                    toml.push_str(
                        "# Journeys generated from the operations, health first, then reads, writes and negative checks.\n\
                         # The criteria only check the status: add checks on the body (json.field == ...).\n",
                    );
                }
                if let Some(Some(comment)) = layout.journeys.get(journey) {
                    toml.push_str(&format!("# {comment}\n"));
                }
                journey += 1;
            }
            _ => {}
        }
        toml.push_str(line);
        toml.push('\n');
    }
    toml.push_str(layout.footer);
    Profile::parse(&toml, "<generated profile>", Secrets::Unresolved)
        .map_err(InitError::Generated)?;
    Ok(toml)
}

/// The inactive journeys, commented out, each under its reason; uncommenting one adds it to the service.
fn inactive_journeys(inactive: &[&Built]) -> Result<String, InitError> {
    if inactive.is_empty() {
        return Ok(String::new());
    }
    let mut text = String::from(
        "\n# Inactive journeys: each one is commented out with the reason. Uncomment one (remove the leading `# `)\n\
         # once what its comment says is fixed.\n",
    );
    for journey in inactive {
        text.push_str(&format!(
            "\n# Inactive: {}.\n# [[service.journeys]]\n",
            collapse(journey.inactive.as_deref().unwrap_or_default())
        ));
        let body = toml::to_string_pretty(&journey.file).map_err(InitError::Serialize)?;
        for line in body.lines() {
            // Sub-tables (headers, body) are written relative to the journey: make them absolute.
            let line = if let Some(rest) = line.strip_prefix("[[") {
                format!("[[service.journeys.{rest}")
            } else if let Some(rest) = line.strip_prefix('[') {
                format!("[service.journeys.{rest}")
            } else {
                line.to_owned()
            };
            if line.is_empty() {
                text.push_str("#\n");
            } else {
                text.push_str(&format!("# {line}\n"));
            }
        }
    }
    Ok(text)
}

fn header_comment(draft: &Draft, notes: &[String]) -> String {
    let source = if draft.source_name.is_empty() {
        "an API description".to_owned()
    } else {
        one_line(&draft.source_name)
    };
    let mut header = format!(
        "# Generated by `fixloop profile init` from {source} ({}).\n\
         # A starting point: review it, then check it with `fixloop profile check FILE`.\n#\n",
        draft.format.as_str()
    );
    if draft.secrets.is_empty() {
        header.push_str("# No credentials are needed by the generated journeys.\n");
    } else {
        header.push_str("# Set these environment variables before serving the profile (their values never go into this file):\n");
        for secret in &draft.secrets {
            header.push_str(&format!("#   {secret}\n"));
        }
    }
    header.push_str(
        "#\n# Review:\n\
         # - write journeys (POST, PUT) send their example bodies and may create data on every run;\n\
         # - negative journeys accept any 4xx; the others only check the documented status codes;\n\
         # - the coverage rules, the alert labels and the priorities are guesses.\n",
    );
    if !notes.is_empty() {
        header.push_str("#\n# What init found:\n");
        for note in notes {
            header.push_str(&format!("#   {}\n", collapse(note)));
        }
    }
    if !draft.skipped.is_empty() {
        header.push_str("#\n# Operations that did not become journeys:\n");
        for reason in &draft.skipped {
            header.push_str(&format!("#   {}\n", collapse(reason)));
        }
    }
    header.push('\n');
    header
}

/// The text on one line, whitespace collapsed (never truncated: a reason cut short is not a reason).
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(super) fn too_few_journeys(found: usize, skipped: &[String]) -> String {
    let mut message = format!(
        "only {found} journey{} could be built from the document, a profile needs at least {PLAN_ITEMS}",
        if found == 1 { "" } else { "s" }
    );
    if skipped.is_empty() {
        message.push_str(" (no other operation was found)");
    } else {
        message.push_str("; skipped operations:");
        for reason in skipped {
            message.push_str("\n  ");
            message.push_str(reason);
        }
    }
    message
}
