//! `fixloop plan`: prints the rule plan of a profile's service as JSON (deterministic, for golden snapshots in CI).

use anyhow::Context as _;
use fixloop_server::profile::{Profile, Secrets};

/// Prints the rule plan of `service` (required when the profile has several) for an incident whose top error is
/// `top_error`.
pub(crate) fn run(
    profile: &std::path::Path,
    service: Option<&str>,
    top_error: Option<&str>,
) -> anyhow::Result<()> {
    let loaded = Profile::load(profile, Secrets::Unresolved)?;
    let chosen = match service {
        Some(name) => loaded
            .service(name)
            .with_context(|| format!("{}: no service is called {name:?}", profile.display()))?,
        None if loaded.services.len() == 1 => &loaded.services[0],
        None => anyhow::bail!(
            "{} has {} services: choose one with --service",
            profile.display(),
            loaded.services.len()
        ),
    };
    let plan = chosen.rule_plan(top_error);
    println!("{}", serde_json::to_string_pretty(&plan)?);
    Ok(())
}
