//! Cases of the pass-criteria language: parsing, positioned errors, canonical printing and evaluation.

use fixloop_core::criteria::{
    CompareOp, Expr, Literal, MAX_DEPTH, MAX_SOURCE_LEN, PathSegment, Predicate, Subject,
};
use fixloop_core::{Criteria, Observation};

fn parse(source: &str) -> Criteria {
    Criteria::parse(source).unwrap_or_else(|error| panic!("{source:?} should parse: {error}"))
}

fn error(source: &str) -> (usize, String) {
    let error = Criteria::parse(source).expect_err("should not parse");
    (error.column, error.message)
}

fn response(status: u16, body: &str, latency_ms: u64) -> Observation {
    Observation {
        status,
        headers: vec![(
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )],
        body: body.to_owned(),
        latency_ms,
    }
}

fn verdict(source: &str, observation: &Observation) -> (bool, String) {
    let verdict = parse(source).evaluate(observation);
    (verdict.passed, verdict.explanation)
}

#[test]
fn seed_examples_parse_and_print_canonically() {
    for source in [
        "status == 200 && json.status == \"ok\" && latency_ms < 800",
        "status in [400, 422]",
        "body contains \"confirmed\"",
        "header.content-type contains \"json\"",
        "len(json.products) > 0",
        "json.order_id exists",
        "json.products[0].sku == \"sku-1\"",
        "status == 200 || !(status >= 500)",
        "json.flag == true && json.other != null && json.ratio <= -0.5",
    ] {
        assert_eq!(parse(source).to_string(), source);
    }
}

#[test]
fn comparison_builds_the_expected_ast() {
    let criteria = parse("json.products[0].sku == \"sku-1\"");
    assert_eq!(
        criteria.expr(),
        &Expr::Predicate(Predicate::Compare {
            subject: Subject::Json(vec![
                PathSegment::Key("products".to_owned()),
                PathSegment::Index(0),
                PathSegment::Key("sku".to_owned()),
            ]),
            op: CompareOp::Eq,
            value: Literal::String("sku-1".to_owned()),
        })
    );
}

#[test]
fn and_binds_tighter_than_or() {
    let criteria = parse("status == 1 || status == 2 && status == 3");
    let Expr::Or(operands) = criteria.expr() else {
        panic!("expected an or, got {criteria:?}");
    };
    assert!(matches!(operands[1], Expr::And(_)));
    assert_eq!(
        criteria.to_string(),
        "status == 1 || (status == 2 && status == 3)"
    );
}

#[test]
fn parse_error_reports_column_of_unknown_subject() {
    let (column, message) = error("status == 200 && colour == \"red\"");
    assert_eq!(column, 18);
    assert!(message.contains("expected a subject"), "{message}");
    assert!(message.contains("`colour`"), "{message}");
}

#[test]
fn parse_error_reports_single_equals() {
    let (column, message) = error("status = 200");
    assert_eq!(column, 8);
    assert!(message.contains("use `==`"), "{message}");
}

#[test]
fn parse_error_reports_missing_literal() {
    let (column, message) = error("latency_ms < ");
    assert_eq!(column, 14);
    assert!(message.contains("expected a literal"), "{message}");
    assert!(message.contains("end of the criteria"), "{message}");
}

#[test]
fn parse_error_reports_unterminated_string() {
    let (column, message) = error("body contains \"confirmed");
    assert_eq!(column, 15);
    assert_eq!(message, "unterminated string");
}

#[test]
fn parse_error_reports_unclosed_parenthesis() {
    let (column, message) = error("(status == 200 && body exists");
    assert_eq!(column, 30);
    assert!(message.contains("expected `)`"), "{message}");
}

#[test]
fn parse_error_reports_trailing_tokens() {
    let (column, message) = error("status == 200 status == 201");
    assert_eq!(column, 15);
    assert!(message.contains("`&&`, `||`"), "{message}");
}

#[test]
fn parse_error_reports_literal_on_the_left() {
    let (column, _) = error("200 == status");
    assert_eq!(column, 1);
}

#[test]
fn parse_error_reports_unknown_escape() {
    let (column, message) = error(r#"body contains "a\qb""#);
    assert_eq!(column, 17);
    assert!(message.contains("unknown escape"), "{message}");
}

#[test]
fn parse_error_displays_column() {
    let error = Criteria::parse("status ==").expect_err("incomplete");
    assert!(error.to_string().starts_with("at column 10: "), "{error}");
}

#[test]
fn empty_criteria_are_rejected() {
    let (column, message) = error("   ");
    assert_eq!(column, 4);
    assert!(message.contains("expected a subject"), "{message}");
}

#[test]
fn overlong_criteria_are_rejected() {
    let source = format!("body contains \"{}\"", "a".repeat(MAX_SOURCE_LEN));
    let (_, message) = error(&source);
    assert!(message.contains("the limit is 4096"), "{message}");
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    for source in [
        format!(
            "{}status == 200{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        ),
        format!("{}status == 200{}", "(".repeat(1_000), ")".repeat(1_000)),
        format!("{}status == 200", "!".repeat(2_000)),
        format!("{}status == 200", "!".repeat(MAX_DEPTH + 1)),
        format!(
            "{}status{} == 1",
            "len(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ),
    ] {
        assert!(Criteria::parse(&source).is_err());
    }
    let (column, message) = error(&format!(
        "{}status == 200{}",
        "(".repeat(40),
        ")".repeat(40)
    ));
    assert_eq!(column, MAX_DEPTH + 1);
    assert!(message.contains("deeper than 32"), "{message}");
    let ok = format!(
        "{}status == 200{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(Criteria::parse(&ok).is_ok());
}

#[test]
fn header_names_are_case_insensitive() {
    let observation = response(200, "{}", 5);
    let (passed, explanation) = verdict("header.CONTENT-TYPE contains \"json\"", &observation);
    assert!(passed, "{explanation}");
    assert_eq!(
        explanation,
        "header.content-type contains \"json\" held (\"application/json; charset=utf-8\")"
    );
}

#[test]
fn passing_criteria_explain_every_conjunct() {
    let observation = response(200, r#"{"status":"ok"}"#, 12);
    let (passed, explanation) = verdict(
        "status == 200 && json.status == \"ok\" && latency_ms < 800",
        &observation,
    );
    assert!(passed);
    assert_eq!(
        explanation,
        "status == 200 held (200); json.status == \"ok\" held (\"ok\"); latency_ms < 800 held (12)"
    );
}

#[test]
fn failing_criteria_explain_the_first_failure() {
    let observation = response(
        500,
        r#"{"error":"internal_error","message":"payment provider timeout"}"#,
        40,
    );
    let (passed, explanation) = verdict(
        "status == 200 && json.status == \"confirmed\"",
        &observation,
    );
    assert!(!passed);
    assert_eq!(explanation, "expected status == 200, got 500");
}

#[test]
fn status_in_list_passes_on_any_listed_value() {
    let observation = response(422, r#"{"error":"invalid_order"}"#, 3);
    assert!(verdict("status in [400, 422]", &observation).0);
    let (passed, explanation) = verdict("status in [400, 422]", &response(500, "", 3));
    assert!(!passed);
    assert_eq!(explanation, "expected status in [400, 422], got 500");
}

#[test]
fn non_json_body_fails_json_predicates_with_reason() {
    let observation = response(502, "<html>Bad Gateway</html>", 3);
    let (passed, explanation) = verdict("json.status == \"ok\"", &observation);
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected json.status == \"ok\", but the body is not JSON (\"<html>Bad Gateway</html>\")"
    );
}

#[test]
fn missing_json_key_fails_with_reason() {
    let observation = response(200, r#"{"status":"confirmed"}"#, 3);
    let (passed, explanation) = verdict("json.order_id exists", &observation);
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected json.order_id exists, but json has no key \"order_id\""
    );
}

#[test]
fn index_out_of_range_fails_with_reason() {
    let observation = response(200, r#"{"products":[]}"#, 3);
    let (passed, explanation) = verdict("json.products[0].sku exists", &observation);
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected json.products[0].sku exists, but json.products has 0 element(s), no index 0"
    );
}

#[test]
fn type_mismatch_fails_without_panicking() {
    let observation = response(200, r#"{"count":"three","items":5}"#, 3);
    let (passed, explanation) = verdict("json.count > 2", &observation);
    assert!(!passed);
    assert_eq!(explanation, "expected json.count > 2, got \"three\"");
    let (passed, explanation) = verdict("len(json.items) > 0", &observation);
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected len(json.items) > 0, but json.items is 5 and has no length"
    );
    let (passed, explanation) = verdict("json.items.first exists", &observation);
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected json.items.first exists, but json.items is a number, not an object with key \"first\""
    );
}

#[test]
fn length_counts_array_elements() {
    let observation = response(200, r#"{"products":[{"sku":"sku-1"},{"sku":"sku-2"}]}"#, 3);
    let (passed, explanation) = verdict("len(json.products) == 2", &observation);
    assert!(passed);
    assert_eq!(explanation, "len(json.products) == 2 held (2)");
}

#[test]
fn contains_searches_arrays_objects_and_text() {
    let observation = response(200, r#"{"tags":["a",1,null],"user":{"id":1}}"#, 3);
    assert!(verdict("json.tags contains 1", &observation).0);
    assert!(verdict("json.tags contains null", &observation).0);
    assert!(verdict("json.user contains \"id\"", &observation).0);
    assert!(verdict("body contains \"tags\"", &observation).0);
    assert!(!verdict("json.tags contains \"b\"", &observation).0);
}

#[test]
fn absent_header_fails_with_reason() {
    let (passed, explanation) = verdict("header.x-request-id exists", &response(200, "", 1));
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected header.x-request-id exists, but the response has no `x-request-id` header"
    );
}

#[test]
fn or_reports_every_failed_alternative() {
    let (passed, explanation) = verdict("status == 200 || status == 201", &response(503, "", 1));
    assert!(!passed);
    assert_eq!(
        explanation,
        "no alternative held: expected status == 200, got 503; expected status == 201, got 503"
    );
}

#[test]
fn negation_explains_itself() {
    let (passed, explanation) = verdict("!(status >= 500)", &response(200, "", 1));
    assert!(passed);
    assert_eq!(
        explanation,
        "!(status >= 500) held (expected status >= 500, got 200)"
    );
    let (passed, explanation) = verdict("!(status >= 500)", &response(503, "", 1));
    assert!(!passed);
    assert_eq!(
        explanation,
        "expected !(status >= 500), but status >= 500 held (503)"
    );
}

#[test]
fn explanation_is_one_bounded_line_even_for_hostile_bodies() {
    let body = format!("line1\nline2\r\n{}", "x".repeat(10_000));
    let (passed, explanation) = verdict("body contains \"confirmed\"", &response(200, &body, 1));
    assert!(!passed);
    assert!(!explanation.contains('\n') && !explanation.contains('\r'));
    assert!(explanation.chars().count() <= fixloop_core::criteria::EXPLANATION_MAX_CHARS);
}

#[test]
fn expects_client_error_only_for_4xx_only_criteria() {
    assert!(
        parse("status in [400, 422] && json.error == \"invalid_order\"").expects_client_error()
    );
    assert!(!parse("status == 200").expects_client_error());
    assert!(!parse("json.error == \"invalid_order\"").expects_client_error());
    assert!(parse("status == 200 && latency_ms < 800").expects_success());
    assert!(!parse("status < 500").expects_success());
}
