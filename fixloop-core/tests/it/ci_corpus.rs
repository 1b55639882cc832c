//! The CI log classifier over a corpus of real-looking logs (`tests/ci_corpus/<class>/*.log`, misleading ones
//! included): prints precision and recall per class and asserts a floor.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fixloop_core::ci::{FailureClass, classify};

/// Overall precision (correct answers over all logs: every log gets exactly one class).
const OVERALL_FLOOR: f64 = 0.9;
/// The floor of every class's precision and recall.
const CLASS_FLOOR: f64 = 0.75;
/// Logs per class, at least.
const MIN_LOGS_PER_CLASS: usize = 4;

fn corpus() -> Vec<(FailureClass, String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ci_corpus");
    let mut logs = Vec::new();
    for class in FailureClass::ALL {
        let dir = root.join(class.as_str());
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| entry.expect("dir entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        names.sort();
        assert!(
            names.len() >= MIN_LOGS_PER_CLASS,
            "{} has {} logs, fewer than {MIN_LOGS_PER_CLASS}",
            class,
            names.len()
        );
        for path in names {
            let text = std::fs::read_to_string(&path).expect("read log");
            let name = format!(
                "{class}/{}",
                path.file_name().expect("name").to_string_lossy()
            );
            logs.push((class, name, text));
        }
    }
    // Every directory is a class.
    for entry in std::fs::read_dir(&root).expect("corpus root") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.parse::<FailureClass>().is_ok(),
            "{name} is not a class"
        );
    }
    logs
}

#[test]
fn classifier_meets_the_precision_and_recall_floor_on_the_corpus() {
    let logs = corpus();
    // (true positives, predicted, actual) per class.
    let mut counts: BTreeMap<FailureClass, (usize, usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (expected, name, text) in &logs {
        let answer = classify(text);
        counts.entry(*expected).or_default().2 += 1;
        counts.entry(answer.class).or_default().1 += 1;
        if answer.class == *expected {
            counts.entry(*expected).or_default().0 += 1;
        } else {
            wrong.push(format!(
                "{name}: got {} ({}) from {:?}",
                answer.class, answer.confidence, answer.evidence
            ));
        }
        if answer.class == FailureClass::Unknown {
            assert_eq!(answer.confidence, 0.0, "{name}");
        } else {
            assert!(
                !answer.evidence.is_empty(),
                "{name}: a class without evidence"
            );
            assert!(
                answer.confidence > 0.0 && answer.confidence <= 1.0,
                "{name}"
            );
        }
    }
    let ratio = |part: usize, whole: usize| {
        if whole == 0 {
            1.0
        } else {
            part as f64 / whole as f64
        }
    };
    let mut table = format!(
        "{:<20} {:>9} {:>9} {:>6}\n",
        "class", "precision", "recall", "logs"
    );
    let mut below = Vec::new();
    for (class, (hits, predicted, actual)) in &counts {
        let precision = ratio(*hits, *predicted);
        let recall = ratio(*hits, *actual);
        table.push_str(&format!(
            "{:<20} {precision:>9.2} {recall:>9.2} {actual:>6}\n",
            class.as_str()
        ));
        if precision < CLASS_FLOOR || recall < CLASS_FLOOR {
            below.push(class.as_str());
        }
    }
    let correct: usize = counts.values().map(|(hits, _, _)| hits).sum();
    let overall = ratio(correct, logs.len());
    table.push_str(&format!(
        "{:<20} {overall:>9.2} {:>9} {:>6}\n",
        "overall",
        "",
        logs.len()
    ));
    println!("{table}");
    for line in &wrong {
        println!("misclassified: {line}");
    }
    assert!(
        overall >= OVERALL_FLOOR,
        "overall precision {overall:.2}\n{table}"
    );
    assert!(
        below.is_empty(),
        "classes under {CLASS_FLOOR}: {below:?}\n{table}"
    );
}

#[test]
fn the_classifier_is_deterministic() {
    for (_, name, text) in corpus() {
        assert_eq!(classify(&text), classify(&text), "{name}");
    }
}

#[test]
fn misleading_lines_do_not_decide() {
    // A test named after timeouts that failed an assertion.
    let log = "FAILED tests/test_http.py::test_timeout_handling - assert 200 == 504\nE       assert 200 == 504";
    assert_eq!(classify(log).class, FailureClass::TestAssertion);
    // "0 errors" is no lint failure.
    assert_eq!(
        classify("✔ 0 problems (0 errors, 0 warnings)\nFound 0 errors.").class,
        FailureClass::Unknown
    );
    // A retried connection that then succeeded is no network failure.
    let log = "Error: connect ECONNREFUSED 127.0.0.1:5432\nAttempt 2 succeeded";
    assert_eq!(classify(log).class, FailureClass::Unknown);
}
