//! One intake from request to record: the body checked against the contract, the excerpt classified, the answer
//! built, and the document the store keeps (and the downstream receives).

use std::sync::atomic::{AtomicU64, Ordering};

use fixloop_adapters::CiIntakeRecord;
use fixloop_contract::chrono::Utc;
use fixloop_contract::{
    CiClassification, CiDecider, CiEvidence, CiFailureClass, CiIntake, CiIntakeStatus,
    CiLogRequest, ErrorDetail, MAX_CI_ARTIFACT_LINKS, MAX_CI_LINK_CHARS, MAX_CI_LOG_BYTES,
    MAX_CI_NAME_CHARS,
};
use fixloop_core::ci::refine::{Decider, Refined};
use fixloop_core::ci::{Classification, FailureClass};

use crate::http::error::{ApiError, Field, FieldKind, RequestBody, parse_body};

impl RequestBody for CiLogRequest {
    const FIELDS: &'static [Field] = &[
        Field {
            name: "repository",
            required: true,
            kind: NAME,
        },
        Field {
            name: "run_id",
            required: true,
            kind: NAME,
        },
        Field {
            name: "job",
            required: true,
            kind: NAME,
        },
        Field {
            name: "status",
            required: true,
            kind: FieldKind::Enum(&["FAILED", "CANCELLED", "TIMED_OUT", "PASSED"]),
        },
        Field {
            name: "job_id",
            required: false,
            kind: FieldKind::String {
                min: 1,
                max: 20,
                nullable: true,
            },
        },
        // Its size is checked in bytes after parsing (413, not 422).
        Field {
            name: "log_excerpt",
            required: true,
            kind: FieldKind::String {
                min: 0,
                max: usize::MAX,
                nullable: false,
            },
        },
    ];
}

const NAME: FieldKind = FieldKind::String {
    min: 1,
    max: MAX_CI_NAME_CHARS,
    nullable: false,
};

/// The request, checked: 400, 422 `invalid_body`, 413 for an excerpt over [`MAX_CI_LOG_BYTES`], 422
/// `invalid_value` for the links.
pub(super) fn parse(body: &[u8]) -> Result<CiLogRequest, ApiError> {
    let request: CiLogRequest = parse_body(body)?;
    if request.log_excerpt.len() > MAX_CI_LOG_BYTES {
        return Err(ApiError::LogTooLarge(MAX_CI_LOG_BYTES));
    }
    let mut problems = Vec::new();
    if request.artifact_links.len() > MAX_CI_ARTIFACT_LINKS {
        problems.push(ErrorDetail {
            path: "/artifact_links".to_owned(),
            message: format!(
                "at most {MAX_CI_ARTIFACT_LINKS} links, got {}",
                request.artifact_links.len()
            ),
        });
    }
    if let Some(job_id) = &request.job_id
        && !job_id.bytes().all(|byte| byte.is_ascii_digit())
    {
        problems.push(ErrorDetail {
            path: "/job_id".to_owned(),
            message: "expected the provider's job id: 1 to 20 digits".to_owned(),
        });
    }
    for (index, link) in request.artifact_links.iter().enumerate() {
        if let Err(why) = check_link(link) {
            problems.push(ErrorDetail {
                path: format!("/artifact_links/{index}"),
                message: why,
            });
        }
    }
    if problems.is_empty() {
        Ok(request)
    } else {
        Err(ApiError::InvalidValue(problems))
    }
}

/// An artifact link: an absolute `http` or `https` URL with a host, at most [`MAX_CI_LINK_CHARS`] characters.
fn check_link(link: &str) -> Result<(), String> {
    if link.chars().count() > MAX_CI_LINK_CHARS {
        return Err(format!("expected at most {MAX_CI_LINK_CHARS} characters"));
    }
    let url = reqwest::Url::parse(link).map_err(|error| format!("not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "expected an http or https URL, got scheme {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_owned());
    }
    Ok(())
}

/// The intake of `request`, classified as `refined` says, received now, with no upstream yet.
pub(super) fn receive(request: CiLogRequest, refined: &Refined) -> CiIntake {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let received_at = Utc::now();
    let id = format!(
        "ci-{}-{}",
        received_at.timestamp_micros(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    CiIntake {
        status: CiIntakeStatus::Received,
        id,
        received_at,
        classification: CiClassification {
            refined_by: Some(match refined.by {
                Decider::Rules => CiDecider::Rules,
                Decider::Llm => CiDecider::Llm,
            }),
            rules_class: refined.rules_class.map(wire_class),
            ..to_wire(&refined.classification)
        },
        log_bytes: request.log_excerpt.len() as u64,
        repository: request.repository,
        run_id: request.run_id,
        job: request.job,
        job_status: request.status,
        artifact_links: request.artifact_links,
        upstream: None,
        heal: None,
    }
}

/// The intake as the store keeps it and the downstream receives it: the answer's JSON plus the `log_excerpt`.
pub(super) fn document(intake: &CiIntake, log_excerpt: &str) -> serde_json::Value {
    let mut value = serde_json::to_value(intake).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("log_excerpt".to_owned(), log_excerpt.into());
    }
    value
}

/// The store's record of `intake`.
pub(super) fn record(
    intake: &CiIntake,
    log_excerpt: &str,
) -> Result<CiIntakeRecord, serde_json::Error> {
    Ok(CiIntakeRecord {
        id: intake.id.clone(),
        received_at: intake.received_at,
        repository: intake.repository.clone(),
        run_id: intake.run_id.clone(),
        job: intake.job.clone(),
        class: classify_name(intake.classification.class).to_owned(),
        document: serde_json::to_string(&document(intake, log_excerpt))?,
    })
}

/// A caller's text as a log line may repeat it: at most 100 characters, control characters dropped.
pub(super) fn loggable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// The core's classification in the wire's shape.
pub(crate) fn to_wire(classification: &Classification) -> CiClassification {
    CiClassification {
        class: wire_class(classification.class),
        confidence: classification.confidence,
        evidence: classification
            .evidence
            .iter()
            .map(|evidence| CiEvidence {
                line: u32::try_from(evidence.line).unwrap_or(u32::MAX),
                text: evidence.text.clone(),
            })
            .collect(),
        refined_by: None,
        rules_class: None,
    }
}

fn wire_class(class: FailureClass) -> CiFailureClass {
    match class {
        FailureClass::TestAssertion => CiFailureClass::TestAssertion,
        FailureClass::Timeout => CiFailureClass::Timeout,
        FailureClass::Network => CiFailureClass::Network,
        FailureClass::DependencyInstall => CiFailureClass::DependencyInstall,
        FailureClass::Migration => CiFailureClass::Migration,
        FailureClass::OutOfMemory => CiFailureClass::OutOfMemory,
        FailureClass::LintFormat => CiFailureClass::LintFormat,
        FailureClass::Infrastructure => CiFailureClass::Infrastructure,
        FailureClass::Unknown => CiFailureClass::Unknown,
    }
}

/// The core's class of a wire class.
pub(super) fn core_class(class: CiFailureClass) -> FailureClass {
    FailureClass::ALL
        .into_iter()
        .find(|core| wire_class(*core) == class)
        .unwrap_or(FailureClass::Unknown)
}

/// The stable name of a wire class (the core's [`FailureClass::as_str`]).
fn classify_name(class: CiFailureClass) -> &'static str {
    core_class(class).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_core_class_names_agree() {
        for class in FailureClass::ALL {
            let wire = serde_json::to_value(wire_class(class)).expect("serializes");
            assert_eq!(wire, class.as_str());
            assert_eq!(classify_name(wire_class(class)), class.as_str());
        }
    }

    #[test]
    fn links_must_be_http_urls_with_a_host() {
        assert!(check_link("https://ci.example/artifacts/1").is_ok());
        assert!(check_link("http://10.0.0.1:8080/a").is_ok());
        for bad in [
            "ftp://ci.example/a",
            "javascript:alert(1)",
            "/relative",
            "file:///etc/passwd",
            "https://",
        ] {
            assert!(check_link(bad).is_err(), "{bad}");
        }
        assert!(
            check_link(&format!(
                "https://ci.example/{}",
                "a".repeat(MAX_CI_LINK_CHARS)
            ))
            .is_err()
        );
    }
}
