//! The JUnit XML rendering of a [`VerifyReport`], for CI test tabs: one `<testcase>` per test of the plan
//! (classname `fixloop.verify.tests`) plus one per gate (classname `fixloop.verify.gates`); a failed test or gate is a
//! `<failure>`, an inconclusive or unrun gate an `<error>` (never green: no data is never success).

use super::{GateResult, GateStatus, VerifyReport};

/// The report as a JUnit XML document.
#[must_use]
pub fn render(report: &VerifyReport) -> String {
    let service = report.service.as_deref().unwrap_or("unknown service");
    let mut cases = String::new();
    let mut failures = 0;
    let mut errors = 0;
    for test in &report.tests {
        cases.push_str(&format!(
            "    <testcase classname=\"fixloop.verify.tests\" name=\"{}\">\n",
            escape(&format!("{}: {}", test.test_id, test.name))
        ));
        if !test.passed {
            failures += 1;
            cases.push_str(&format!(
                "      <failure message=\"{}\" type=\"test_failed\">{} {}\n{}</failure>\n",
                escape(&test.details),
                escape(&test.method),
                escape(&test.url),
                escape(&test.details)
            ));
        }
        cases.push_str("    </testcase>\n");
    }
    for (name, gate) in [
        ("test gate", &report.test_gate),
        ("signal gate", &report.signal_gate),
    ] {
        cases.push_str(&format!(
            "    <testcase classname=\"fixloop.verify.gates\" name=\"{name}\">\n"
        ));
        match gate_element(gate) {
            None => {}
            Some(("failure", kind)) => {
                failures += 1;
                cases.push_str(&element("failure", kind, gate));
            }
            Some((tag, kind)) => {
                errors += 1;
                cases.push_str(&element(tag, kind, gate));
            }
        }
        cases.push_str("    </testcase>\n");
    }
    let count = report.tests.len() + 2;
    let seconds = (report.finished_at - report.started_at)
        .to_std()
        .unwrap_or_default()
        .as_secs_f64();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <testsuites name=\"fixloop verify\" tests=\"{count}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{seconds:.3}\">\n\
         \x20 <testsuite name=\"{}\" tests=\"{count}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{seconds:.3}\" timestamp=\"{}\">\n\
         \x20   <properties>\n\
         \x20     <property name=\"outcome\" value=\"{}\"/>\n\
         \x20     <property name=\"exit_code\" value=\"{}\"/>\n\
         \x20     <property name=\"summary\" value=\"{}\"/>\n\
         \x20   </properties>\n\
         {cases}\
         \x20 </testsuite>\n\
         </testsuites>\n",
        escape(&format!("fixloop verify: {service}")),
        report.started_at.format("%Y-%m-%dT%H:%M:%S"),
        report.outcome.as_str(),
        report.exit_code,
        escape(&report.summary),
    )
}

/// The element a gate's testcase carries: none when it passed.
fn gate_element(gate: &GateResult) -> Option<(&'static str, &'static str)> {
    match gate.status {
        GateStatus::Passed => None,
        GateStatus::Failed => Some(("failure", "gate_failed")),
        GateStatus::Unreachable => Some(("error", "unreachable")),
        GateStatus::Inconclusive => Some(("error", "inconclusive")),
        GateStatus::NotRun => Some(("error", "not_run")),
    }
}

fn element(tag: &str, kind: &str, gate: &GateResult) -> String {
    format!(
        "      <{tag} message=\"{}\" type=\"{kind}\">{}</{tag}>\n",
        escape(&gate.reason),
        escape(&gate.reason)
    )
}

/// `text` escaped for an XML attribute or text node; characters XML 1.0 cannot hold become U+FFFD.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\n' => escaped.push_str("&#10;"),
            '\t' | '\r' => escaped.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                escaped.push('\u{FFFD}')
            }
            c => escaped.push(c),
        }
    }
    escaped
}
