//! Properties of the criteria language: the parser never panics, printing round-trips, evaluation never panics.

use fixloop_core::criteria::{CompareOp, Expr, Literal, PathSegment, Predicate, Subject};
use fixloop_core::{Criteria, Observation};
use proptest::prelude::*;

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(|chars| chars.into_iter().collect())
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        any::<i32>().prop_map(|n| Literal::Number(f64::from(n))),
        (-1.0e9..1.0e9f64).prop_map(Literal::Number),
        text(8).prop_map(Literal::String),
    ]
}

fn plain_subject() -> impl Strategy<Value = Subject> {
    let segment = prop_oneof![
        text(6).prop_map(PathSegment::Key),
        "[a-z_][a-z0-9_-]{0,6}".prop_map(PathSegment::Key),
        (0usize..1000).prop_map(PathSegment::Index),
    ];
    prop_oneof![
        Just(Subject::Status),
        Just(Subject::LatencyMs),
        Just(Subject::Body),
        "[a-z][a-z0-9_-]{0,12}".prop_map(Subject::Header),
        prop::collection::vec(segment, 0..4).prop_map(Subject::Json),
    ]
}

fn subject() -> impl Strategy<Value = Subject> {
    prop_oneof![
        3 => plain_subject(),
        1 => plain_subject().prop_map(|inner| Subject::Len(Box::new(inner))),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Le),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge),
    ]
}

fn predicate() -> impl Strategy<Value = Predicate> {
    prop_oneof![
        (subject(), compare_op(), literal()).prop_map(|(subject, op, value)| Predicate::Compare {
            subject,
            op,
            value
        }),
        (subject(), prop::collection::vec(literal(), 1..4))
            .prop_map(|(subject, values)| Predicate::In { subject, values }),
        (subject(), literal())
            .prop_map(|(subject, needle)| Predicate::Contains { subject, needle }),
        subject().prop_map(|subject| Predicate::Exists { subject }),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    predicate()
        .prop_map(Expr::Predicate)
        .prop_recursive(4, 24, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                inner.prop_map(|operand| Expr::Not(Box::new(operand))),
            ]
        })
}

/// Strings made of the language's own tokens, which reach deeper into the parser than arbitrary text.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("status"),
        Just("latency_ms"),
        Just("body"),
        Just("header.x-a"),
        Just("json"),
        Just(".a"),
        Just("[0]"),
        Just("[\"k\"]"),
        Just("len("),
        Just("("),
        Just(")"),
        Just("!"),
        Just("&&"),
        Just("||"),
        Just("=="),
        Just("<="),
        Just("in"),
        Just("["),
        Just("]"),
        Just(","),
        Just("contains"),
        Just("exists"),
        Just("\"s\""),
        Just("\"\\u{"),
        Just("-1.5e3"),
        Just("200"),
        Just("null"),
        Just("true"),
    ];
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.join(" "))
}

fn observation() -> impl Strategy<Value = Observation> {
    let body = prop_oneof![
        text(40),
        Just(r#"{"status":"ok","products":[{"sku":"sku-1"}],"n":3,"a":null}"#.to_owned()),
        Just("[1, 2, 3]".to_owned()),
        Just("\"text\"".to_owned()),
    ];
    (
        any::<u16>(),
        prop::collection::vec((text(8), text(8)), 0..3),
        body,
        any::<u64>(),
    )
        .prop_map(|(status, headers, body, latency_ms)| Observation {
            status,
            headers,
            body,
            latency_ms,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics_on_arbitrary_strings(source in text(200)) {
        let _ = Criteria::parse(&source);
    }

    #[test]
    fn parser_never_panics_on_token_soup(source in token_soup()) {
        if let Ok(criteria) = Criteria::parse(&source) {
            // Whatever parses also round-trips through the printer.
            prop_assert_eq!(Criteria::parse(&criteria.to_string()), Ok(criteria));
        }
    }

    #[test]
    fn printed_ast_parses_back_to_the_same_ast(expr in expr()) {
        let criteria = Criteria::from_expr(expr);
        let printed = criteria.to_string();
        prop_assert_eq!(Criteria::parse(&printed), Ok(criteria), "printed: {}", printed);
    }

    #[test]
    fn evaluation_never_panics_and_explains_in_one_line(expr in expr(), observation in observation()) {
        let verdict = Criteria::from_expr(expr).evaluate(&observation);
        prop_assert!(!verdict.explanation.is_empty());
        prop_assert!(!verdict.explanation.chars().any(char::is_control));
        prop_assert!(
            verdict.explanation.chars().count() <= fixloop_core::criteria::EXPLANATION_MAX_CHARS
        );
    }

    #[test]
    fn expects_client_error_matches_evaluation_on_status(expr in expr(), status in 100u16..600) {
        // If the criteria claim to pass only on a 4xx, no response with another status passes.
        let criteria = Criteria::from_expr(expr);
        if criteria.expects_client_error() && !(400..500).contains(&status) {
            let observation = Observation {
                status,
                body: r#"{"status":"ok","error":"invalid_order"}"#.to_owned(),
                ..Observation::default()
            };
            prop_assert!(!criteria.evaluate(&observation).passed);
        }
    }
}
