//! `fixloop profile check|init`: checks a profile as `serve` would at start-up, or writes a starter one.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context as _;
use fixloop_server::Config;
use fixloop_server::profile::{Profile, Secrets};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ProfileCommand {
    /// Checks a profile as `serve` would at start-up (secrets included): exit 0, or every problem with its path.
    Check {
        /// The service profile.
        file: PathBuf,
        /// Also connect to each service's signal source and report, per signal, whether it returns series and
        /// whether each configured label exists; exit 1 when a signal would be blind.
        #[arg(long)]
        live: bool,
    },
    /// Writes a starter profile from a service's OpenAPI 3.x or Swagger 2.0 document (JSON or YAML, a file or an
    /// http(s) URL) and what the running service shows: the metrics it exposes and how its read journeys answer.
    Init {
        /// The API description: a path, or an http(s) URL.
        #[arg(long = "from-openapi", value_name = "FILE_OR_URL")]
        from_openapi: String,
        /// The service's base URL (default: the document's first server).
        #[arg(long)]
        base_url: Option<String>,
        /// Where to write the profile (default: standard output); an existing file needs --force.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Overwrite the --output file if it exists.
        #[arg(long)]
        force: bool,
        /// Read nothing from the service: no metrics discovery (signals are synthetic), no trial calls.
        #[arg(long)]
        offline: bool,
        /// The metrics endpoint's path, tried before the documented ones, /metrics, /actuator/prometheus and
        /// /prometheus.
        #[arg(long, value_name = "PATH")]
        metrics_path: Option<String>,
    },
}

/// Runs `profile check` or `profile init`; `env` resolves the profile's secrets.
pub(crate) async fn run(
    command: ProfileCommand,
    config: &Config,
    env: &HashMap<String, String>,
) -> anyhow::Result<()> {
    match command {
        ProfileCommand::Check { file, live } => {
            let profile = Profile::load(&file, Secrets::From(env))?;
            let names: Vec<&str> = profile
                .services
                .iter()
                .map(|service| service.spec.name.as_str())
                .collect();
            println!(
                "{}: ok ({} service{}: {})",
                file.display(),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            );
            if let Some(ci) = &profile.ci {
                println!(
                    "ci self-heal: {:?} at {}, {} repositor{}, eligible: {}, at most {} rerun{} per run and class",
                    ci.provider,
                    ci.base_url,
                    ci.repositories.len(),
                    if ci.repositories.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    },
                    ci.policy
                        .eligible
                        .iter()
                        .map(|class| class.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    ci.policy.max_attempts,
                    if ci.policy.max_attempts == 1 { "" } else { "s" },
                );
            }
            // A model as chooser needs its key; without it the rules pick (said here, not an error).
            for service in &profile.services {
                let chooser = config
                    .tuning
                    .remediation_chooser
                    .unwrap_or(service.remediation.chooser);
                if chooser == fixloop_core::remediation::Chooser::Model && config.minimax.is_none()
                {
                    println!(
                        "warning: service {}: remediation chooser is `model` but MINIMAX_API_KEY is not set: the rules will pick every step",
                        service.spec.name
                    );
                }
            }
            if !profile.notify.is_empty() {
                let sinks: Vec<String> = profile
                    .notify
                    .iter()
                    .map(|sink| format!("{} ({})", sink.name, sink.target.kind()))
                    .collect();
                println!("notifications to: {}", sinks.join(", "));
            }
            if live {
                profile_check_live(&profile, config).await?;
            }
            Ok(())
        }
        ProfileCommand::Init {
            from_openapi,
            base_url,
            output,
            force,
            offline,
            metrics_path,
        } => {
            let args = InitArgs {
                base_url,
                output,
                force,
                offline,
                metrics_path,
            };
            profile_init(&from_openapi, args).await
        }
    }
}

/// The options of `fixloop profile init` besides the document.
#[derive(Debug)]
struct InitArgs {
    base_url: Option<String>,
    output: Option<PathBuf>,
    force: bool,
    offline: bool,
    metrics_path: Option<String>,
}

/// `fixloop profile init`: fetch or read the document, read the live service (unless offline), write the profile.
async fn profile_init(source: &str, args: InitArgs) -> anyhow::Result<()> {
    use fixloop_server::profile::init::{
        Findings, InitError, InitOptions, draft, fetch_document, finish, read_live,
    };
    if let Some(path) = &args.output
        && !args.force
        && path.exists()
    {
        anyhow::bail!(
            "{} exists: pass --force to overwrite it, or choose another --output",
            path.display()
        );
    }
    let http = fixloop_adapters::http_client(std::time::Duration::from_secs(10))
        .context("building the http client")?;
    let text = if source.starts_with("http://") || source.starts_with("https://") {
        fetch_document(&http, source).await?
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?
    };
    let options = InitOptions {
        base_url: args.base_url,
        source_name: source.to_owned(),
        metrics_path: args.metrics_path,
    };
    let draft = draft(&text, &options)?;
    let findings = if args.offline {
        Findings::offline()
    } else {
        // The credentials the journeys name, when set here, let init try the secured journeys as serve will.
        let secrets = draft
            .secrets()
            .iter()
            .filter_map(|name| {
                let value = std::env::var(name).ok()?;
                (!value.trim().is_empty())
                    .then(|| (name.clone(), fixloop_adapters::Secret::new(value.trim())))
            })
            .collect();
        eprintln!(
            "reading {} (metrics and one call per read journey)",
            draft.base_url()
        );
        read_live(&http, &draft, &secrets).await
    };
    let generated = finish(draft, &findings).map_err(|error| {
        let hint = if args.offline || !matches!(error, InitError::TooFewJourneys { .. }) {
            ""
        } else {
            "\n(fix what the reasons say and run init again, or pass --offline to write the journeys without trying them)"
        };
        anyhow::anyhow!("{error}{hint}")
    })?;
    match &args.output {
        Some(path) => {
            let mut open = std::fs::OpenOptions::new();
            open.write(true);
            if args.force {
                open.create(true).truncate(true);
            } else {
                // Refuse a file that appeared since the check above, too.
                open.create_new(true);
            }
            let mut file = open
                .open(path)
                .with_context(|| format!("writing {}", path.display()))?;
            std::io::Write::write_all(&mut file, generated.toml.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", generated.toml),
    }
    for note in &generated.notes {
        eprintln!("{note}");
    }
    if !generated.secrets.is_empty() {
        eprintln!(
            "set these environment variables before `fixloop serve` (their values never go in the profile): {}",
            generated.secrets.join(", ")
        );
    }
    for skipped in &generated.skipped {
        eprintln!("skipped {skipped}");
    }
    eprintln!("review the journeys and thresholds, then run `fixloop profile check` on the file");
    Ok(())
}

/// `fixloop profile check --live`: every service's signal source checked once, the report on stdout; an error
/// (exit 1) naming every blind signal.
async fn profile_check_live(profile: &Profile, config: &Config) -> anyhow::Result<()> {
    let http = fixloop_adapters::http_client(std::time::Duration::from_secs(10))
        .context("the HTTP client cannot start")?;
    let mut blind = Vec::new();
    for service in &profile.services {
        let report = fixloop_server::profile::live::check_service(config, service, &http).await;
        print!("{}", report.render());
        blind.extend(report.blind_signals());
    }
    if blind.is_empty() {
        println!("every signal reads series");
        return Ok(());
    }
    anyhow::bail!(
        "{} blind signal{}:\n  {}",
        blind.len(),
        if blind.len() == 1 { "" } else { "s" },
        blind.join("\n  ")
    )
}
