//! `fixloop plan`: prints the rule plan of a profile's service as JSON (deterministic, for golden snapshots in CI).

use anyhow::Context as _;
use fixloop_server::profile::{Profile, Secrets, ServiceProfile};

/// Prints the rule plan of `service` (required when the profile has several) for an incident whose top error is
/// `top_error`.
pub(crate) fn run(
    profile: &std::path::Path,
    service: Option<&str>,
    top_error: Option<&str>,
) -> anyhow::Result<()> {
    let loaded = Profile::load(profile, Secrets::Unresolved)?;
    let chosen = choose_service(&loaded, &profile.display().to_string(), service)?;
    let plan = chosen.rule_plan(top_error);
    println!("{}", serde_json::to_string_pretty(&plan)?);
    Ok(())
}

/// The service called `service` in `profile` (from `origin`), or its only one when `service` is `None` (shared with
/// `fixloop verify`: the same rule, the same errors).
pub(crate) fn choose_service<'a>(
    profile: &'a Profile,
    origin: &str,
    service: Option<&str>,
) -> anyhow::Result<&'a ServiceProfile> {
    match service {
        Some(name) => profile
            .service(name)
            .with_context(|| format!("{origin}: no service is called {name:?}")),
        None if profile.services.len() == 1 => Ok(&profile.services[0]),
        None => anyhow::bail!(
            "{origin} has {} services: choose one with --service",
            profile.services.len()
        ),
    }
}
