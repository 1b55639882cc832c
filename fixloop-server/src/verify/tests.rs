use super::*;

fn gate(status: GateStatus) -> GateResult {
    GateResult {
        status,
        reason: format!("{status:?}"),
    }
}

#[test]
fn exit_codes_are_distinct_and_only_verified_is_zero() {
    let mut codes: Vec<u8> = Outcome::ALL
        .iter()
        .map(|outcome| outcome.exit_code())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), Outcome::ALL.len());
    assert!(!codes.contains(&1), "1 is the binary's own failure");
    for outcome in Outcome::ALL {
        assert_eq!(
            serde_json::to_value(outcome).expect("serializes"),
            outcome.as_str()
        );
        assert_eq!(outcome.exit_code() == 0, outcome == Outcome::Verified);
        assert!(
            Outcome::help().contains(&format!(
                "  {}  {}",
                outcome.exit_code(),
                outcome.describe()
            )),
            "{outcome:?}"
        );
    }
}

#[test]
fn only_two_passed_gates_verify() {
    use GateStatus::{Failed, Inconclusive, NotRun, Passed, Unreachable};
    let all = [Passed, Failed, Inconclusive, Unreachable, NotRun];
    for tests in all {
        for signals in all {
            let outcome = judge(&gate(tests), &gate(signals));
            let expected = match (tests, signals) {
                (Unreachable, _) => Outcome::Unreachable,
                (Failed, _) => Outcome::TestsFailed,
                (_, Failed | Unreachable) => Outcome::SignalsUnhealthy,
                (Passed, Passed) => Outcome::Verified,
                _ => Outcome::Inconclusive,
            };
            assert_eq!(outcome, expected, "{tests:?} {signals:?}");
            assert_eq!(
                outcome == Outcome::Verified,
                tests == Passed && signals == Passed
            );
        }
    }
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(REPORT_SCHEMA).expect("the schema is JSON");
    assert!(jsonschema::meta::is_valid(&schema));
}
