//! The report of a run and its two renderings: JSON (schema in `conformance/report.schema.json`) and JUnit XML.
//!
//! The JSON report keeps durations in a separate `timings` object, so two runs against the same server compare
//! equal once `timings` (and `target`, which names the server's address) is removed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::case::{CaseResult, Outcome, Profile};

/// Version of the JSON report's format (`report.schema.json`).
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// Always `fixloop-conformance`.
    pub tool: String,
    /// The version of the runner.
    pub tool_version: String,
    /// The base URL of the server checked.
    pub target: String,
    /// The spec's `info.title` and `info.version`.
    pub spec: SpecInfo,
    /// Whether `--strict` was on.
    pub strict: bool,
    /// The profile the run checked (`--profile`); the cases outside it were not applicable and are not listed.
    pub profile: Profile,
    /// Counts of outcomes.
    pub summary: Summary,
    /// The cases, in execution order.
    pub cases: Vec<CaseResult>,
    /// Durations, outside the comparable part of the report.
    pub timings: Timings,
}

/// The spec a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecInfo {
    /// `info.title`.
    pub title: String,
    /// `info.version`.
    pub version: String,
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Cases that passed.
    pub pass: usize,
    /// Cases that failed.
    pub fail: usize,
    /// Cases that were skipped.
    pub skip: usize,
}

/// Durations in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// The whole run.
    pub total_ms: u64,
    /// Per case: the time from the previous case's outcome (or the start) to this one's.
    pub cases_ms: BTreeMap<String, u64>,
}

impl Report {
    /// Whether no case failed, and under `--strict` none was skipped either (the CLI's exit status).
    #[must_use]
    pub fn passed(&self) -> bool {
        self.summary.fail == 0 && !(self.strict && self.summary.skip > 0)
    }

    /// The outcome of the case with this id, if it ran.
    #[must_use]
    pub fn outcome(&self, id: &str) -> Option<&Outcome> {
        self.cases
            .iter()
            .find(|case| case.id == id)
            .map(|case| &case.outcome)
    }

    /// The JSON report (pretty-printed).
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"))
    }

    /// The JUnit XML report: one `testsuite` per area (`shapes`, `bad_input`, `webhook`, `flow`, `ws`).
    #[must_use]
    pub fn to_junit(&self) -> String {
        let mut suites: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
        for case in &self.cases {
            let area = case.id.split('/').next().unwrap_or("");
            suites.entry(area).or_default().push(case);
        }
        let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"fixloop-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{}\">",
            self.cases.len(),
            self.summary.fail,
            self.summary.skip,
            seconds(self.timings.total_ms),
        );
        for (area, cases) in suites {
            let failures = cases.iter().filter(|c| c.outcome.is_fail()).count();
            let skipped = cases
                .iter()
                .filter(|c| matches!(c.outcome, Outcome::Skip { .. }))
                .count();
            let time: u64 = cases
                .iter()
                .filter_map(|c| self.timings.cases_ms.get(&c.id))
                .sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\">",
                xml_escape(area),
                cases.len(),
                seconds(time),
            );
            for case in cases {
                let classname = case.id.rsplit_once('/').map_or("", |(head, _)| head);
                let time = self.timings.cases_ms.get(&case.id).copied().unwrap_or(0);
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                    xml_escape(&case.id),
                    xml_escape(&classname.replace('/', ".")),
                    seconds(time),
                );
                match &case.outcome {
                    Outcome::Pass => out.push_str(" />\n"),
                    Outcome::Fail {
                        expected,
                        actual,
                        path,
                    } => {
                        let _ = write!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"contract\">{}</failure>\n",
                            xml_escape(&case.outcome.short_reason()),
                            xml_escape(&format!(
                                "{}\nclause: {}\npath: {path}\nexpected: {expected}\nactual: {actual}",
                                case.description, case.clause
                            )),
                        );
                        out.push_str("    </testcase>\n");
                    }
                    Outcome::Skip { reason } => {
                        let _ = write!(
                            out,
                            ">\n      <skipped message=\"{}\" />\n    </testcase>\n",
                            xml_escape(reason)
                        );
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

impl Summary {
    /// Counts the outcomes of `cases`.
    #[must_use]
    pub fn of(cases: &[CaseResult]) -> Self {
        let mut summary = Self::default();
        for case in cases {
            match case.outcome {
                Outcome::Pass => summary.pass += 1,
                Outcome::Fail { .. } => summary.fail += 1,
                Outcome::Skip { .. } => summary.skip += 1,
            }
        }
        summary
    }
}

/// Escapes text for an XML attribute or element, dropping characters XML 1.0 cannot hold.
#[must_use]
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let cases = vec![
            CaseResult {
                id: "shapes/getStatus/1".to_owned(),
                description: "status <ok> & \"quoted\"".to_owned(),
                clause: "seed §5.3 #1".to_owned(),
                profile: Profile::Seed,
                outcome: Outcome::Pass,
            },
            CaseResult {
                id: "flow/plan.generated/2".to_owned(),
                description: "five <items> & \"quoted\"".to_owned(),
                clause: "seed §8.2".to_owned(),
                profile: Profile::Seed,
                outcome: Outcome::fail("5 items", "4 items <\u{1}>", "/payload/plan/items"),
            },
            CaseResult {
                id: "flow/incident.created/1".to_owned(),
                description: "detected".to_owned(),
                clause: "seed §7".to_owned(),
                profile: Profile::Seed,
                outcome: Outcome::skip("needs simulate & more"),
            },
        ];
        Report {
            format_version: REPORT_FORMAT_VERSION,
            tool: "fixloop-conformance".to_owned(),
            tool_version: "0.1.0".to_owned(),
            target: "http://127.0.0.1:1".to_owned(),
            spec: SpecInfo {
                title: "FixLoop API".to_owned(),
                version: "1.0.0".to_owned(),
            },
            strict: false,
            profile: Profile::Fixloop,
            summary: Summary::of(&cases),
            cases,
            timings: Timings::default(),
        }
    }

    #[test]
    fn junit_escapes_markup_and_control_characters() {
        let xml = sample().to_junit();
        assert!(xml.contains("five &lt;items&gt; &amp; &quot;quoted&quot;"));
        assert!(!xml.contains("<items>"));
        assert!(!xml.contains('\u{1}'));
        assert!(xml.contains("4 items &lt;\u{FFFD}&gt;"));
        assert!(xml.contains("<skipped message=\"needs simulate &amp; more\" />"));
        assert!(xml.contains("failures=\"1\""));
        // Balanced elements: one open and one close per suite.
        assert_eq!(
            xml.matches("<testsuite ").count(),
            xml.matches("</testsuite>").count()
        );
    }

    #[test]
    fn json_flattens_the_outcome_into_the_case() {
        let value: serde_json::Value =
            serde_json::from_str(&sample().to_json()).expect("report is JSON");
        assert_eq!(value["cases"][1]["outcome"], "fail");
        assert_eq!(value["cases"][1]["path"], "/payload/plan/items");
        assert_eq!(value["cases"][2]["reason"], "needs simulate & more");
        assert_eq!(value["summary"]["fail"], 1);
    }
}
