//! GitHub Actions workflow commands for a [`VerifyReport`] (`::error file=…,title=…::message`), one per failed
//! test and per gate that did not hold, and a `::notice` when verified. The caller prints them when
//! `GITHUB_ACTIONS=true`; this module reads no environment.

use super::{GateStatus, Outcome, VerifyReport};

/// The workflow commands for `report`, each one line; `file` is the file the annotations point at (the profile
/// file; `None` for a built-in profile).
#[must_use]
pub fn github(report: &VerifyReport, file: Option<&str>) -> Vec<String> {
    let mut lines = Vec::new();
    let file = file.map_or_else(String::new, |file| format!("file={},", property(file)));
    let mut push = |level: &str, title: String, message: &str| {
        lines.push(format!(
            "::{level} {file}title={}::{}",
            property(&title),
            data(message)
        ));
    };
    for test in report.tests.iter().filter(|test| !test.passed) {
        push(
            "error",
            format!("fixloop verify: test {} failed", test.test_id),
            &format!(
                "{} ({} {}): {}",
                test.name, test.method, test.url, test.details
            ),
        );
    }
    for (name, gate) in [
        ("test gate", &report.test_gate),
        ("signal gate", &report.signal_gate),
    ] {
        if gate.status != GateStatus::Passed {
            push(
                "error",
                format!("fixloop verify: {name} {}", gate.status.as_str()),
                &gate.reason,
            );
        }
    }
    let level = if report.outcome == Outcome::Verified {
        "notice"
    } else {
        "error"
    };
    push(
        level,
        format!("fixloop verify: exit {}", report.exit_code),
        &report.summary,
    );
    lines
}

/// A workflow command's message: `%`, CR and LF escaped as GitHub documents.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: [`data`] plus `:` and `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_properties_are_escaped() {
        assert_eq!(data("50%\nnext\r"), "50%25%0Anext%0D");
        assert_eq!(property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
