//! `fixloop verify` through the real binary against the demo shop started as a real process (`fixloop demo-app`):
//! one test per exit code (healthy, broken, broken then fixed during `--signals-for`, broken during the hold,
//! unreachable, bad profile, no signal data), and the reports: the JUnit XML parses, the JSON validates against the committed schema, the HTML
//! has no external reference and escapes hostile text. No sleeps: every wait polls a condition with a deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fixloop_contract::chrono::{DateTime, Utc};
use fixloop_server::profile::DEMO_PROFILE;
use fixloop_server::verify::{
    GateResult, GateStatus, Outcome, REPORT_SCHEMA, SignalHold, SignalRead, TestResult,
    VerifyReport, html, junit,
};
use quick_xml::events::Event;
use serde_json::Value;

use crate::binary::{DemoApp, command, run};

/// The exit code of `outcome`, as a process reports it.
fn code(outcome: Outcome) -> i32 {
    i32::from(outcome.exit_code())
}

/// The demo profile read twice a second, judged on 2 measurements of at least 5 requests, so a hold takes seconds.
fn fast_profile(dir: &Path) -> PathBuf {
    let path = dir.join("demo-fast.toml");
    let text = format!(
        "{DEMO_PROFILE}\n[service.thresholds]\npoll_interval_secs = 0.5\nrecovery_samples = 2\nmin_requests = 5\n"
    );
    std::fs::write(&path, text).expect("write the profile");
    path
}

/// User traffic to the shop (catalog and checkout, about 100 requests a second) until dropped.
struct Traffic(tokio::task::JoinHandle<()>);

impl Traffic {
    fn start(url: &str) -> Self {
        let client = fixloop_adapters::default_client();
        let url = url.to_owned();
        Self(tokio::spawn(async move {
            // The pace of the traffic, not a wait for anything.
            let mut pace = tokio::time::interval(Duration::from_millis(20));
            loop {
                pace.tick().await;
                let _ = client.get(format!("{url}/catalog")).send().await;
                let _ = client
                    .post(format!("{url}/checkout"))
                    .json(&serde_json::json!({"sku": "sku-1", "quantity": 1}))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
            }
        }))
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn set_bug(url: &str, enabled: bool) {
    let response = fixloop_adapters::default_client()
        .post(format!("{url}/admin/bug"))
        .json(&serde_json::json!({ "enabled": enabled }))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the bug switch answers");
    assert!(response.status().is_success(), "{}", response.status());
}

/// The shop's counter of checkouts with status `status` from `source` (`user` or `fixloop`).
async fn checkouts(url: &str, source: &str, status: u16) -> f64 {
    let text = fixloop_adapters::default_client()
        .get(format!("{url}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
    fixloop_adapters::parse_exposition(&text)
        .iter()
        .filter(|sample| sample.name == "demo_http_requests_total")
        .filter(|sample| {
            let label = |key: &str| {
                sample
                    .labels
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value.as_str())
            };
            label("route") == Some("/checkout")
                && label("source") == Some(source)
                && label("status") == Some(status.to_string().as_str())
        })
        .map(|sample| sample.value)
        .sum()
}

/// Polls `condition` every 50 ms until it holds, for at most 30 s.
async fn until<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The outcome of one `fixloop verify`, its reports read back.
struct Verified {
    code: i32,
    stdout: String,
    json: Value,
    junit: String,
    html: String,
}

async fn verify(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Verified {
    let json = dir.join("report.json");
    let junit = dir.join("junit.xml");
    let html = dir.join("report.html");
    let mut all: Vec<&str> = vec!["verify"];
    all.extend_from_slice(args);
    let paths = [
        json.display().to_string(),
        junit.display().to_string(),
        html.display().to_string(),
    ];
    all.extend([
        "--json", &paths[0], "--junit", &paths[1], "--html", &paths[2],
    ]);
    let mut command = command(&all);
    command.envs(env.iter().copied());
    let finished = run(command).await;
    let read = |path: &Path| {
        std::fs::read_to_string(path).unwrap_or_else(|error| {
            panic!(
                "{} written ({error}); stdout:\n{}\nstderr:\n{}",
                path.display(),
                finished.stdout,
                finished.stderr
            )
        })
    };
    let report = Verified {
        code: finished.status.code().expect("an exit code"),
        stdout: finished.stdout.clone(),
        json: serde_json::from_str(&read(&json)).expect("the JSON report is JSON"),
        junit: read(&junit),
        html: read(&html),
    };
    check_reports(&report);
    report
}

/// What every report must satisfy: the JSON validates against the schema and agrees with the exit code, the JUnit
/// parses with one testcase per test plus two gates, the HTML is self-contained.
fn check_reports(report: &Verified) {
    let schema: Value = serde_json::from_str(REPORT_SCHEMA).expect("the schema is JSON");
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&report.json)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{:#}", report.json);
    assert_eq!(report.json["exit_code"], report.code, "{}", report.stdout);
    let cases = junit_cases(&report.junit);
    let tests = report.json["tests"].as_array().expect("tests").len();
    assert_eq!(cases.len(), tests + 2, "{}", report.junit);
    assert_eq!(
        cases.iter().filter(|case| case.1.is_some()).count(),
        report.json["tests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|test| test["passed"] == false)
            .count()
            + ["test_gate", "signal_gate"]
                .iter()
                .filter(|gate| report.json[**gate]["status"] != "passed")
                .count(),
        "{}",
        report.junit
    );
    self_contained(&report.html);
}

/// Every `<testcase>`: its name, and the message of its `<failure>` or `<error>` if it has one.
fn junit_cases(xml: &str) -> Vec<(String, Option<String>)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, Option<String>)> = Vec::new();
    loop {
        match reader
            .read_event()
            .expect("the JUnit report is well-formed XML")
        {
            Event::Eof => break,
            Event::Start(element) | Event::Empty(element) => {
                let attribute = |name: &str| {
                    element
                        .try_get_attribute(name)
                        .expect("attribute")
                        .map(|value| value.unescape_value().expect("unescaped").into_owned())
                };
                match element.name().as_ref() {
                    b"testcase" => cases.push((attribute("name").expect("a name"), None)),
                    b"failure" | b"error" => {
                        cases.last_mut().expect("inside a testcase").1 =
                            Some(attribute("message").expect("a message"));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    cases
}

/// No tag of the page loads or links anything (no `src`, `href`, `srcset`, `action`, `url(…)`, `@import`), and there
/// is no script: the page is one self-contained file. Text that merely *mentions* such things is escaped, not a tag.
fn self_contained(html: &str) {
    let lower = html.to_lowercase();
    assert!(lower.starts_with("<!doctype html>") && lower.contains("<style>"));
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        for external in ["src=", "href=", "srcset=", "action=", "url(", "@import"] {
            assert!(!tag.contains(external), "{external} in the tag <{tag}>");
        }
        for element in ["script", "link", "img", "iframe", "object", "embed"] {
            assert!(!tag.starts_with(element), "a <{element}> element");
        }
    }
    let style = &lower[lower.find("<style>").unwrap()..lower.find("</style>").unwrap()];
    assert!(!style.contains("url(") && !style.contains("@import"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_shop_with_traffic_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let shop = DemoApp::start().await;
    let profile = fast_profile(dir.path());
    let _traffic = Traffic::start(&shop.url);
    let profile = profile.display().to_string();
    let args = [
        "--profile",
        &profile,
        "--base-url",
        &shop.url,
        "--signals-for",
        "3s",
    ];
    let report = verify(dir.path(), &args, &[]).await;
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert_eq!(report.json["outcome"], "verified");
    assert_eq!(report.json["tests"].as_array().unwrap().len(), 5);
    assert!(report.json["signals"]["healthy"].as_u64().unwrap() >= 2);
    assert!(report.html.contains("exit 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_shop_fails_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    let shop = DemoApp::start().await;
    set_bug(&shop.url, true).await;
    let _traffic = Traffic::start(&shop.url);
    let profile = fast_profile(dir.path()).display().to_string();
    let args = [
        "--profile",
        &profile,
        "--base-url",
        &shop.url,
        "--signals-for",
        "2s",
    ];
    let report = verify(dir.path(), &args, &[("GITHUB_ACTIONS", "true")]).await;
    assert_eq!(report.code, code(Outcome::TestsFailed), "{}", report.stdout);
    assert_eq!(report.json["test_gate"]["status"], "failed");
    assert_eq!(
        report.json["signal_gate"]["status"], "failed",
        "the traffic fails too"
    );
    let failed: Vec<&Value> = report.json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|test| test["passed"] == false)
        .collect();
    let failed: Vec<&str> = failed
        .iter()
        .map(|test| test["test_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["t1-checkout-valid", "t2-checkout-invalid"],
        "every checkout answers 500"
    );
    let cases = junit_cases(&report.junit);
    assert!(cases.iter().any(|(name, failure)| {
        name.starts_with("t1-checkout-valid")
            && failure
                .as_deref()
                .is_some_and(|message| message.contains("expected status == 200, got 500"))
    }));
    // GitHub Actions annotations, pointing at the profile file.
    assert!(
        report
            .stdout
            .lines()
            .any(|line| line.starts_with("::error file=")
                && line.contains("title=fixloop verify%3A test t1-checkout-valid failed::")),
        "{}",
        report.stdout
    );
}

/// The documented outcome: the tests ran against the broken shop, so the verification fails with the tests'
/// code (3) even though the signal gate holds at the end of the hold; a fix made during the hold is verified by the
/// next `fixloop verify`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_fixed_during_the_hold_still_fails_the_tests_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let shop = DemoApp::start().await;
    set_bug(&shop.url, true).await;
    let _traffic = Traffic::start(&shop.url);
    let profile = fast_profile(dir.path()).display().to_string();
    let base = shop.url.clone();
    let dir_path = dir.path().to_owned();
    let running = tokio::spawn(async move {
        let args = [
            "--profile",
            &profile,
            "--base-url",
            &base,
            "--signals-for",
            "6s",
        ];
        verify(&dir_path, &args, &[]).await
    });
    // The tests have hit the broken checkout; then half a second's worth of broken user traffic; then the fix.
    until("the verification's tests", || async {
        checkouts(&shop.url, "fixloop", 500).await > 0.0
    })
    .await;
    let broken = checkouts(&shop.url, "user", 500).await;
    until("broken traffic during the hold", || async {
        checkouts(&shop.url, "user", 500).await >= broken + 25.0
    })
    .await;
    set_bug(&shop.url, false).await;
    let report = running.await.expect("the verification ends");
    assert_eq!(report.code, code(Outcome::TestsFailed), "{}", report.stdout);
    assert_eq!(report.json["test_gate"]["status"], "failed");
    assert_eq!(
        report.json["signal_gate"]["status"], "passed",
        "{:#}",
        report.json["signals"]
    );
    let reads = report.json["signals"]["reads"].as_array().unwrap();
    assert!(
        reads.iter().any(|read| read["error_rate_percent"]
            .as_f64()
            .is_some_and(|rate| rate > 1.0)),
        "a read saw the broken traffic: {reads:#?}"
    );
}

/// Passing tests do not verify a deploy that breaks under traffic during the hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_that_breaks_during_the_hold_has_unhealthy_signals() {
    let dir = tempfile::tempdir().unwrap();
    let shop = DemoApp::start().await;
    let _traffic = Traffic::start(&shop.url);
    let profile = fast_profile(dir.path()).display().to_string();
    let base = shop.url.clone();
    let dir_path = dir.path().to_owned();
    let running = tokio::spawn(async move {
        let args = [
            "--profile",
            &profile,
            "--base-url",
            &base,
            "--signals-for",
            "5s",
        ];
        verify(&dir_path, &args, &[]).await
    });
    // Both checkout tests have been answered by the healthy shop; then the bug.
    until("the verification's tests", || async {
        checkouts(&shop.url, "fixloop", 200).await > 0.0
            && checkouts(&shop.url, "fixloop", 422).await > 0.0
    })
    .await;
    set_bug(&shop.url, true).await;
    let report = running.await.expect("the verification ends");
    assert_eq!(
        report.code,
        code(Outcome::SignalsUnhealthy),
        "{}",
        report.stdout
    );
    assert_eq!(report.json["test_gate"]["status"], "passed");
    assert_eq!(report.json["signal_gate"]["status"], "failed");
    assert!(report.json["signals"]["unhealthy"].as_u64().unwrap() >= 1);
    let reason = report.json["signal_gate"]["reason"].as_str().unwrap();
    assert!(reason.contains("is not below 1.0%"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_service_has_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let report = verify(dir.path(), &["--profile", "demo", "--base-url", &url], &[]).await;
    assert_eq!(report.code, code(Outcome::Unreachable), "{}", report.stdout);
    assert_eq!(report.json["outcome"], "unreachable");
    assert_eq!(report.json["signal_gate"]["status"], "not_run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_profile_service_or_flag_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[service]]\nname = \"x\"\nbase_url = \"not a url\"\n",
    )
    .unwrap();
    let bad = bad.display().to_string();
    let refused_code = code(Outcome::ConfigurationError);
    let report = verify(dir.path(), &["--profile", &bad], &[]).await;
    assert_eq!(report.code, refused_code, "{}", report.stdout);
    assert!(
        report.json["summary"]
            .as_str()
            .unwrap()
            .contains("base_url"),
        "{}",
        report.json
    );
    let report = verify(dir.path(), &["--profile", "demo", "--service", "nope"], &[]).await;
    assert_eq!(report.code, refused_code);
    assert!(
        report.stdout.contains("no service is called \"nope\""),
        "{}",
        report.stdout
    );
    let report = verify(dir.path(), &["--profile", "no-such-profile"], &[]).await;
    assert_eq!(report.code, refused_code);
    let report = verify(
        dir.path(),
        &["--profile", "demo", "--base-url", "ftp://x"],
        &[],
    )
    .await;
    assert_eq!(report.code, refused_code);
    // A flag the parser refuses exits with the same code.
    let refused = run(command(&[
        "verify",
        "--profile",
        "demo",
        "--signals-for",
        "3",
    ]))
    .await;
    assert_eq!(
        refused.status.code(),
        Some(refused_code),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_signal_data_is_inconclusive_never_verified() {
    let dir = tempfile::tempdir().unwrap();
    let shop = DemoApp::start().await;
    let profile = fast_profile(dir.path()).display().to_string();
    // No user traffic: the tests pass, but the signals cannot be judged.
    let args = [
        "--profile",
        &profile,
        "--base-url",
        &shop.url,
        "--signals-for",
        "2s",
    ];
    let report = verify(dir.path(), &args, &[]).await;
    assert_eq!(
        report.code,
        code(Outcome::Inconclusive),
        "{}",
        report.stdout
    );
    assert_eq!(report.json["test_gate"]["status"], "passed");
    assert_eq!(report.json["signal_gate"]["status"], "inconclusive");
    assert_eq!(report.json["signals"]["healthy"], 0);
}

/// A report full of hostile text, as a compromised service could make its answers.
fn hostile_report() -> VerifyReport {
    let evil = "<script>alert('x')</script> & \"quoted\" ]]> <img src=http://evil.example/x.png> \u{1} end";
    let at: DateTime<Utc> = "2026-12-07T10:00:00Z".parse().unwrap();
    let mut report = VerifyReport::configuration_error("demo", "placeholder", at);
    report.service = Some(evil.to_owned());
    report.base_url = Some(evil.to_owned());
    report.planner = Some(evil.to_owned());
    report.tests = vec![TestResult {
        test_id: evil.to_owned(),
        name: evil.to_owned(),
        method: "GET".to_owned(),
        url: evil.to_owned(),
        pass_criteria: evil.to_owned(),
        passed: false,
        details: evil.to_owned(),
    }];
    report.test_gate = GateResult {
        status: GateStatus::Failed,
        reason: evil.to_owned(),
    };
    report.signal_gate = GateResult {
        status: GateStatus::Inconclusive,
        reason: evil.to_owned(),
    };
    report.signals = Some(SignalHold {
        source: evil.to_owned(),
        requested_secs: 1.0,
        poll_interval_secs: 1.0,
        recovery_samples: 2,
        min_requests: 5,
        recovery_error_percent: 1.0,
        healthy: 0,
        unhealthy: 0,
        inconclusive: 1,
        reads: vec![SignalRead {
            at,
            error_rate_percent: None,
            p95_latency_ms: None,
            requests: 0,
            top_error: Some(evil.to_owned()),
            read_error: None,
        }],
    });
    report.conclude();
    report
}

#[test]
fn hostile_text_is_escaped_in_every_report() {
    let report = hostile_report();
    assert_eq!(report.outcome, Outcome::TestsFailed);
    let page = html::render(&report);
    self_contained(&page);
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;")
    );
    let xml = junit::render(&report);
    let cases = junit_cases(&xml);
    let (name, failure) = &cases[0];
    assert!(
        name.contains("<script>alert('x')</script> & \"quoted\" ]]>"),
        "{name}"
    );
    assert!(
        failure
            .as_deref()
            .unwrap()
            .contains("<img src=http://evil.example/x.png>")
    );
    assert!(
        !xml.contains('\u{1}'),
        "no control character XML cannot hold"
    );
    let schema: Value = serde_json::from_str(REPORT_SCHEMA).unwrap();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(jsonschema::draft202012::is_valid(&schema, &json));
}

/// With a MiniMax key, the model is asked for the plan; when it fails, the rule plan is run and the report says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_planner_falls_back_to_the_rule_plan() {
    let dir = tempfile::tempdir().unwrap();
    let model = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(500).set_body_string("overloaded"))
        .mount(&model)
        .await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let base = model.uri();
    let env = [
        ("MINIMAX_API_KEY", "test-key-not-secret"),
        ("MINIMAX_BASE_URL", base.as_str()),
    ];
    let report = verify(dir.path(), &["--profile", "demo", "--base-url", &url], &env).await;
    assert_eq!(report.code, code(Outcome::Unreachable), "{}", report.stdout);
    let planner = report.json["planner"].as_str().unwrap();
    assert!(
        planner.contains("MiniMax") && planner.ends_with("rule planner used"),
        "{planner}"
    );
    assert!(
        !model.received_requests().await.unwrap().is_empty(),
        "the model was asked"
    );
    assert_eq!(report.json["tests"].as_array().unwrap().len(), 5);
}
