//! `fixloop-conformance` checks any server that claims to implement the FixLoop contract against `openapi.yaml` and
//! the WebSocket schemas, in the manner of h2spec and Autobahn: every case has an id (`area/operation/n`), a
//! one-line description and the clause it checks, and ends as `Pass`, `Fail { expected, actual, path }` or
//! `Skip { reason }`.
//!
//! It knows the server only through HTTP and WebSocket, and it knows the contract only through the OpenAPI
//! document (the copy embedded at build time, [`Spec::embedded`], or any file, [`Spec::from_file`]): it never uses
//! FixLoop's Rust types, so a server written in any language can be checked.
//!
//! What it deliberately does not do: it does not start or configure the server, it does not judge performance, and
//! it does not talk to a server over TLS WebSockets with client certificates or authentication.
//!
//! # Areas
//!
//! - `shapes`: every REST operation called with a valid request; status and body validated against the spec's
//!   response schema (JSON Schema draft 2020-12, formats checked).
//! - `bad_input`: invalid requests generated from each request body schema (malformed JSON, wrong content type,
//!   oversized body, each required field missing, each property of the wrong type, unknown enum values, strings
//!   out of their length bounds) must get a 4xx with the spec's `ErrorBody`.
//! - `webhook`: FixLoop's alert webhooks and their secret, only when [`Target::webhook_secret`] is set.
//! - `flow`: the seed's demo flow over REST and WebSocket, each wait bounded by [`Target::flow_timeout`].
//! - `ws`: every WebSocket message validated against `WsEnvelope`, the required orders, and the state a late
//!   client receives.
//!
//! # Profiles
//!
//! Every case belongs to a [`Profile`]. [`Profile::Seed`] checks exactly what the seed's contract requires (and
//! judges bodies by the seed's types only, [`Spec::relaxed_for_seed`]); [`Profile::Fixloop`], the default, adds
//! FixLoop's documented guarantees. A case outside the run's profile is neither run nor reported.
//!
//! # Bounds
//!
//! The whole run is bounded by [`Target::budget`]: waits and requests are cut at it, a step whose precondition
//! failed is skipped with a reason naming the failed case instead of being waited for, and what was not judged in
//! time is skipped with the budget as the reason.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fixloop_conformance::{Selection, Spec, Target};
//!
//! let target = Target::new("http://127.0.0.1:8000", Spec::embedded()?)?;
//! let report = fixloop_conformance::run(&target, &Selection::all()).await;
//! println!("{}", report.to_json());
//! assert!(report.passed());
//! # Ok(()) }
//! ```

mod case;
mod cases;
mod client;
mod report;
mod spec;
mod target;

pub use case::{CaseInfo, CaseResult, Outcome, Phase, Profile};
pub use cases::data::CaseDataError;
pub use report::{REPORT_FORMAT_VERSION, Report, SpecInfo, Summary, Timings, xml_escape};
pub use spec::{EMBEDDED_SPEC, Operation, Spec, SpecError, Violation};
pub use target::{Selection, Target, TargetError, WebhookSecret};

/// Loads the embedded data file of stateless cases and validates it against its meta-schema
/// (`conformance/cases/cases.schema.json`). Call it at startup: with a broken data file the suite still runs, but
/// reports a single failing `shapes/data.file/1` in place of the data cases.
///
/// # Errors
/// The [`CaseDataError`] naming the file, the entry and what is wrong.
pub fn check_case_data() -> Result<(), &'static CaseDataError> {
    cases::data::shapes().as_ref().map(|_| ())
}

/// Every case the suite has for `spec`, in execution order (what `--list` prints), each with its profile.
#[must_use]
pub fn list(spec: &Spec) -> Vec<CaseInfo> {
    cases::catalog(spec)
}

/// Runs the selected cases against `target`.
pub async fn run(target: &Target, selection: &Selection) -> Report {
    run_with_progress(target, selection, &mut |_| {}).await
}

/// Runs the selected cases against `target`, calling `on_case` with each outcome as soon as it is known.
pub async fn run_with_progress(
    target: &Target,
    selection: &Selection,
    on_case: &mut (dyn FnMut(&CaseResult) + Send),
) -> Report {
    cases::run(target, selection, on_case).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_nested_and_spelled_as_on_the_command_line() {
        assert!(Profile::Fixloop.includes(Profile::Seed));
        assert!(!Profile::Seed.includes(Profile::Fixloop));
        assert_eq!(Selection::all().profile, Profile::Fixloop);
        assert_eq!("seed".parse::<Profile>(), Ok(Profile::Seed));
        assert!("strict".parse::<Profile>().is_err());
    }

    #[test]
    fn case_ids_are_unique_and_shaped_area_operation_n() {
        let cases = list(&Spec::embedded().expect("embedded spec"));
        let mut ids = std::collections::BTreeSet::new();
        for case in &cases {
            let parts: Vec<&str> = case.id.split('/').collect();
            assert_eq!(parts.len(), 3, "{}", case.id);
            assert!(
                ["shapes", "bad_input", "webhook", "flow", "ws"].contains(&parts[0]),
                "{}",
                case.id
            );
            assert!(parts[2].parse::<u32>().is_ok_and(|n| n > 0), "{}", case.id);
            assert!(
                !case.description.is_empty() && !case.clause.is_empty(),
                "{}",
                case.id
            );
            assert!(ids.insert(case.id.clone()), "duplicate {}", case.id);
        }
    }
}
