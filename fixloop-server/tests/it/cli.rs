//! The `fixloop` binary as a user runs it: `fixloop plan` (golden snapshots of the demo and inventory profiles,
//! choosing a service, secrets left unresolved), `fixloop profile check` (one case per kind of bad profile, each
//! with its exit code and the problem's path and reason on stderr) and `fixloop profile init` (a written profile
//! that `profile check` accepts once the variables it names are set). Every run starts from an empty environment,
//! in the crate's directory, and is killed if it outlives [`WAIT`].

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fixloop_server::profile::{Profile, Secrets};
use serde_json::Value;

/// The longest one run of the binary may take.
const WAIT: Duration = Duration::from_secs(30);

/// The inventory test profile (one service, a bearer secret `INVENTORY_TOKEN`, seven journeys).
const INVENTORY: &str = "tests/fixtures/profiles/inventory.toml";
/// The inventory service plus a synthetic-only status page.
const TWO_SERVICES: &str = "tests/fixtures/profiles/two-services.toml";
/// The built-in demo profile.
const DEMO: &str = "profiles/demo.toml";
/// A value for `INVENTORY_TOKEN` that must never be printed.
const TOKEN_VALUE: &str = "tok-9f2c1e-never-printed";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts the run failed with exit code 1 and a `path: message` problem line on stderr whose path starts with
    /// `path` and whose message contains `reason`.
    fn assert_problem(&self, path: &str, reason: &str) {
        assert_eq!(self.code, Some(1), "{self:#?}");
        assert!(self.stdout.is_empty(), "{self:#?}");
        let found = self.stderr.lines().any(|line| {
            line.strip_prefix("  ")
                .and_then(|problem| problem.split_once(": "))
                .is_some_and(|(at, message)| at.starts_with(path) && message.contains(reason))
        });
        assert!(
            found,
            "expected a problem at {path} containing {reason:?}, stderr was:\n{}",
            self.stderr
        );
    }

    /// Asserts the run succeeded and returns its standard output.
    fn success(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:#?}");
        &self.stdout
    }
}

/// Runs `fixloop ARGS` in the crate's directory with only `PATH` and `env` in its environment.
async fn fixloop(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("start the fixloop binary");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("fixloop {args:?} did not finish within {WAIT:?}"))
        .expect("wait for the fixloop binary");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// A file under the temporary directory, named after the test, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    /// A path that does not exist yet (`profile init -o` writes it).
    fn path_for(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("fixloop-cli-{}-{name}.toml", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Self(path)
    }

    /// A file holding `text`.
    fn with(name: &str, text: &str) -> Self {
        let file = Self::path_for(name);
        std::fs::write(&file.0, text).expect("write a temporary profile");
        file
    }

    fn as_str(&self) -> &str {
        self.0.to_str().expect("a utf-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The inventory fixture's text.
fn inventory() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(INVENTORY);
    std::fs::read_to_string(path).expect("read the inventory fixture")
}

/// `text` with the one occurrence of `from` replaced by `to` (so a fixture edit cannot silently void a case).
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} occurs once");
    text.replacen(from, to, 1)
}

/// `profile check` on `text` (written to a temporary file named after `name`), with `INVENTORY_TOKEN` set.
async fn check_text(name: &str, text: &str) -> Run {
    let file = TempFile::with(name, text);
    fixloop(
        &["profile", "check", file.as_str()],
        &[("INVENTORY_TOKEN", TOKEN_VALUE)],
    )
    .await
}

/// The `test_id`s of a plan printed by `fixloop plan`, in order.
fn test_ids(stdout: &str) -> Vec<String> {
    let plan: Value = serde_json::from_str(stdout).expect("the plan is JSON");
    plan["items"]
        .as_array()
        .expect("the plan has items")
        .iter()
        .map(|item| item["test_id"].as_str().expect("a test id").to_owned())
        .collect()
}

#[tokio::test]
async fn plan_of_the_demo_profile_matches_the_golden_output() {
    let run = fixloop(&["plan", "--profile", DEMO], &[]).await;
    insta::assert_snapshot!("plan_demo", run.success());
}

#[tokio::test]
async fn plan_with_a_top_error_puts_its_route_first() {
    let run = fixloop(
        &[
            "plan",
            "--profile",
            DEMO,
            "--top-error",
            "GET /catalog -> 500",
        ],
        &[],
    )
    .await;
    assert_eq!(test_ids(run.success())[0], "t4-catalog");
    insta::assert_snapshot!("plan_demo_catalog_error", run.success());
}

#[tokio::test]
async fn plan_of_the_inventory_profile_matches_the_golden_output() {
    let run = fixloop(&["plan", "--profile", INVENTORY], &[]).await;
    insta::assert_snapshot!("plan_inventory", run.success());
}

#[tokio::test]
async fn plan_with_a_top_error_on_a_templated_route_puts_that_journey_first() {
    let run = fixloop(
        &[
            "plan",
            "--profile",
            INVENTORY,
            "--top-error",
            "GET /v2/items/{id} -> 500",
        ],
        &[],
    )
    .await;
    assert_eq!(test_ids(run.success())[0], "inv-item");
}

#[tokio::test]
async fn plan_needs_no_secret_and_keeps_the_placeholder() {
    let unset = fixloop(&["plan", "--profile", INVENTORY], &[]).await;
    assert!(
        unset
            .success()
            .contains("\"authorization\": \"Bearer ${env:INVENTORY_TOKEN}\""),
        "{unset:#?}"
    );
    let set = fixloop(
        &["plan", "--profile", INVENTORY],
        &[("INVENTORY_TOKEN", TOKEN_VALUE)],
    )
    .await;
    assert_eq!(set.success(), unset.stdout);
    assert!(!set.stderr.contains(TOKEN_VALUE), "{set:#?}");
}

#[tokio::test]
async fn plan_of_a_profile_with_several_services_needs_service() {
    let run = fixloop(&["plan", "--profile", TWO_SERVICES], &[]).await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert_eq!(
        run.stderr,
        format!("fixloop: {TWO_SERVICES} has 2 services: choose one with --service\n")
    );
}

#[tokio::test]
async fn plan_with_service_plans_for_that_service_alone() {
    let alone = fixloop(&["plan", "--profile", INVENTORY], &[]).await;
    let chosen = fixloop(
        &["plan", "--profile", TWO_SERVICES, "--service", "inventory"],
        &[],
    )
    .await;
    assert_eq!(chosen.success(), alone.success());

    let status = fixloop(
        &[
            "plan",
            "--profile",
            TWO_SERVICES,
            "--service",
            "status-page",
        ],
        &[],
    )
    .await;
    let plan: Value = serde_json::from_str(status.success()).expect("the plan is JSON");
    let items = plan["items"].as_array().expect("the plan has items");
    assert_eq!(items.len(), 5);
    assert!(
        items.iter().all(|item| item["target"]["url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:9500/"))),
        "{items:#?}"
    );
}

#[tokio::test]
async fn plan_for_an_unknown_service_fails_naming_it() {
    let run = fixloop(
        &["plan", "--profile", TWO_SERVICES, "--service", "billing"],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert_eq!(
        run.stderr,
        format!("fixloop: {TWO_SERVICES}: no service is called \"billing\"\n")
    );
}

#[tokio::test]
async fn check_accepts_the_fixtures_and_never_prints_the_secret() {
    let env = [("INVENTORY_TOKEN", TOKEN_VALUE)];
    let inventory = fixloop(&["profile", "check", INVENTORY], &env).await;
    assert_eq!(
        inventory.success(),
        format!("{INVENTORY}: ok (1 service: inventory)\n")
    );
    let two = fixloop(&["profile", "check", TWO_SERVICES], &env).await;
    assert_eq!(
        two.success(),
        format!("{TWO_SERVICES}: ok (2 services: inventory, status-page)\n")
    );
    let demo = fixloop(&["profile", "check", DEMO], &[]).await;
    assert_eq!(
        demo.success(),
        format!("{DEMO}: ok (1 service: demo-checkout)\n")
    );
    for run in [&inventory, &two] {
        assert!(
            !run.stdout.contains(TOKEN_VALUE) && !run.stderr.contains(TOKEN_VALUE),
            "{run:#?}"
        );
    }
}

#[tokio::test]
async fn check_rejects_a_missing_secret_where_it_is_first_used() {
    let run = fixloop(&["profile", "check", INVENTORY], &[]).await;
    assert!(
        run.stderr
            .starts_with(&format!("fixloop: {INVENTORY}: 1 problem\n")),
        "{run:#?}"
    );
    run.assert_problem(
        "service[0].journeys[5].headers.authorization",
        "secret INVENTORY_TOKEN is not set in the environment",
    );
    // A blank value is as good as none.
    let blank = fixloop(
        &["profile", "check", INVENTORY],
        &[("INVENTORY_TOKEN", "  ")],
    )
    .await;
    blank.assert_problem(
        "service[0].journeys[5].headers.authorization",
        "secret INVENTORY_TOKEN is not set",
    );
}

#[tokio::test]
async fn check_rejects_an_unknown_key_with_its_path_and_line() {
    let text = replace_once(
        &inventory(),
        "priority = 3\n",
        "priority = 3\nretries = 2\n",
    );
    let run = check_text("unknown-key", &text).await;
    run.assert_problem(
        "service[0].journeys[2].retries (line ",
        "unknown field `retries`",
    );
}

#[tokio::test]
async fn check_rejects_a_base_url_that_is_not_http() {
    let text = replace_once(
        &inventory(),
        "base_url = \"http://127.0.0.1:9400\"",
        "base_url = \"ftp://127.0.0.1:9400\"",
    );
    let run = check_text("bad-base-url", &text).await;
    run.assert_problem(
        "service[0].base_url",
        "`ftp://127.0.0.1:9400` must be an absolute http or https URL",
    );
}

#[tokio::test]
async fn check_rejects_a_base_url_that_is_not_a_url() {
    let text = replace_once(
        &inventory(),
        "base_url = \"http://127.0.0.1:9400\"",
        "base_url = \"127.0.0.1:9400/api\"",
    );
    let run = check_text("relative-base-url", &text).await;
    run.assert_problem("service[0].base_url", "`127.0.0.1:9400/api` is not a URL");
}

#[tokio::test]
async fn check_rejects_bad_criteria_with_the_journeys_path() {
    let text = replace_once(
        &inventory(),
        "pass_criteria = 'status == 401'",
        "pass_criteria = 'status === 401'",
    );
    let run = check_text("bad-criteria", &text).await;
    run.assert_problem(
        "service[0].journeys[6].pass_criteria",
        "at column 10: expected `==`, found `=`",
    );
}

#[tokio::test]
async fn check_rejects_fewer_than_five_journeys() {
    let text = inventory();
    let (fifth, _) = text
        .match_indices("[[service.journeys]]")
        .nth(4)
        .expect("a fifth journey");
    let run = check_text("four-journeys", &text[..fifth]).await;
    run.assert_problem(
        "service[0].journeys",
        "a service needs at least 5 journeys (a plan has 5 tests), found 4",
    );
}

#[tokio::test]
async fn check_rejects_duplicate_service_names() {
    let text = inventory();
    let run = check_text("duplicate-services", &format!("{text}\n{text}")).await;
    run.assert_problem("service[1].name", "service name `inventory` is used twice");
}

#[tokio::test]
async fn check_rejects_duplicate_journey_ids() {
    let text = replace_once(&inventory(), "id = \"inv-me-anonymous\"", "id = \"inv-me\"");
    let run = check_text("duplicate-journeys", &text).await;
    run.assert_problem(
        "service[0].journeys[6].id",
        "journey id `inv-me` is used twice",
    );
}

#[tokio::test]
async fn check_rejects_a_threshold_written_as_a_ratio() {
    let text = replace_once(
        &inventory(),
        "trigger_error_percent = 2.5",
        "trigger_error_percent = 0.05",
    );
    let run = check_text("ratio-threshold", &text).await;
    run.assert_problem(
        "service[0].thresholds.trigger_error_percent",
        "0.05 looks like a ratio, but this key is in percent",
    );
}

#[tokio::test]
async fn check_reports_every_problem_of_a_file_at_once() {
    let text = replace_once(
        &inventory(),
        "base_url = \"http://127.0.0.1:9400\"",
        "base_url = \"ftp://127.0.0.1:9400\"",
    );
    let text = replace_once(
        &text,
        "pass_criteria = 'status == 401'",
        "pass_criteria = 'status === 401'",
    );
    let file = TempFile::with("three-problems", &text);
    let run = fixloop(&["profile", "check", file.as_str()], &[]).await;
    assert!(run.stderr.contains(": 3 problems\n"), "{run:#?}");
    run.assert_problem("service[0].base_url", "ftp://");
    run.assert_problem("service[0].journeys[6].pass_criteria", "expected `==`");
    run.assert_problem(
        "service[0].journeys[5].headers.authorization",
        "INVENTORY_TOKEN",
    );
}

#[tokio::test]
async fn check_of_a_missing_file_fails_saying_it_cannot_be_read() {
    let run = fixloop(
        &["profile", "check", "tests/fixtures/profiles/missing.toml"],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(
        run.stderr.starts_with(
            "fixloop: tests/fixtures/profiles/missing.toml: 1 problem\n  cannot read the file: "
        ),
        "{run:#?}"
    );
}

/// A loopback base URL nothing listens on, so `profile init`'s `/metrics` probe is refused at once and never
/// leaves the machine.
fn closed_loopback_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("a local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The variables `profile init` asked for on stderr.
fn variables_to_set(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("set these environment variables"))
        .unwrap_or_else(|| panic!("init names the variables to set, stderr was:\n{stderr}"));
    let (_, names) = line.rsplit_once(": ").expect("a list of names");
    names.split(", ").map(str::to_owned).collect()
}

#[tokio::test]
async fn init_writes_a_profile_that_check_accepts_once_its_variables_are_set() {
    let output = TempFile::path_for("init-petstore");
    let base_url = closed_loopback_url();
    let init = fixloop(
        &[
            "profile",
            "init",
            "--from-openapi",
            "tests/fixtures/openapi/petstore.yaml",
            "--base-url",
            &base_url,
            "-o",
            output.as_str(),
        ],
        &[],
    )
    .await;
    assert!(init.success().is_empty(), "{init:#?}");
    assert!(
        init.stderr
            .contains(&format!("wrote {}\n", output.as_str())),
        "{init:#?}"
    );
    let variables = variables_to_set(&init.stderr);
    assert!(!variables.is_empty());
    let written = std::fs::read_to_string(&output.0).expect("init wrote the file");
    assert!(
        written.contains(&format!("base_url = \"{base_url}\"")),
        "{written}"
    );

    let unset = fixloop(&["profile", "check", output.as_str()], &[]).await;
    assert_eq!(unset.code, Some(1), "{unset:#?}");
    for variable in &variables {
        assert!(
            unset
                .stderr
                .contains(&format!("secret {variable} is not set in the environment")),
            "{unset:#?}"
        );
    }

    let env: Vec<(&str, &str)> = variables
        .iter()
        .map(|variable| (variable.as_str(), TOKEN_VALUE))
        .collect();
    let set = fixloop(&["profile", "check", output.as_str()], &env).await;
    assert!(
        set.success()
            .starts_with(&format!("{}: ok (1 service: ", output.as_str())),
        "{set:#?}"
    );
    assert!(!set.stdout.contains(TOKEN_VALUE) && !set.stderr.contains(TOKEN_VALUE));
}

#[tokio::test]
async fn init_without_output_prints_a_profile_that_parses() {
    let run = fixloop(
        &[
            "profile",
            "init",
            "--from-openapi",
            "tests/fixtures/openapi/petstore.yaml",
            "--base-url",
            &closed_loopback_url(),
        ],
        &[],
    )
    .await;
    let profile = Profile::parse(run.success(), "stdout", Secrets::Unresolved)
        .unwrap_or_else(|error| panic!("init printed an invalid profile: {error}\n{run:#?}"));
    assert_eq!(profile.services.len(), 1);
    assert!(!run.stderr.contains("wrote "), "{run:#?}");
    assert!(!variables_to_set(&run.stderr).is_empty());
}

#[tokio::test]
async fn init_from_a_missing_document_fails_naming_it() {
    let run = fixloop(
        &[
            "profile",
            "init",
            "--from-openapi",
            "tests/fixtures/openapi/missing.yaml",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(
        run.stderr
            .starts_with("fixloop: reading tests/fixtures/openapi/missing.yaml: "),
        "{run:#?}"
    );
}

#[tokio::test]
async fn serve_logs_its_profiles_services_to_stderr_without_colour_codes() {
    use tokio::io::{AsyncBufReadExt as _, BufReader};

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fixloop"))
        .args(["serve", "--port", "0", "--profile", TWO_SERVICES])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .env("FIXLOOP_DATABASE_URL", "memory:")
        .env("INVENTORY_TOKEN", TOKEN_VALUE)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the fixloop binary");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    let listening = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains("orchestrator listening") {
                return line;
            }
        }
        panic!("fixloop serve ended before it listened:\n{log}");
    })
    .await
    .expect("fixloop serve starts in time");
    child.start_kill().expect("stop fixloop serve");
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("fixloop serve stops in time")
        .expect("wait for fixloop serve");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The profile's services are named; the demo shop's defaults are not mentioned.
    assert!(
        listening.contains("inventory (http://127.0.0.1:9400)"),
        "{listening}"
    );
    assert!(!listening.contains("demo-checkout"), "{listening}");
    assert!(!listening.contains("demo_app_url"), "{listening}");
    // Not a terminal: no colour codes; logs on stderr only (stdout keeps the one start-up sentence).
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a piped log:\n{log}"
    );
    assert!(!stdout.contains("INFO"), "a log line on stdout:\n{stdout}");
    assert!(!log.contains(TOKEN_VALUE), "{log}");
}

#[tokio::test]
async fn check_lists_the_notify_sinks_and_rejects_a_missing_sink_secret() {
    let sinks = "\n[[notify]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9500/hook\"\n\n\
                 [[notify]]\nname = \"pager\"\ntype = \"pagerduty\"\nrouting_key = \"${env:PAGER_KEY}\"\n";
    let text = format!("{}{sinks}", inventory());
    let run = check_text("notify-missing-key", &text).await;
    run.assert_problem("notify[1].routing_key", "secret PAGER_KEY is not set");
    let file = TempFile::with("notify-ok", &text);
    let run = fixloop(
        &["profile", "check", file.as_str()],
        &[
            ("INVENTORY_TOKEN", TOKEN_VALUE),
            ("PAGER_KEY", "pager-s3cr3t"),
        ],
    )
    .await;
    let stdout = run.success();
    assert!(
        stdout.contains("notifications to: ops (webhook), pager (pagerduty)"),
        "{stdout}"
    );
    assert!(!stdout.contains("pager-s3cr3t"));
}

#[tokio::test]
async fn check_warns_when_a_model_should_choose_remediation_steps_but_no_key_is_set() {
    let text = format!(
        "{}\n[service.remediation]\nchooser = \"model\"\n",
        inventory()
    );
    let file = TempFile::with("chooser-model", &text);
    let env = [("INVENTORY_TOKEN", TOKEN_VALUE)];
    let run = fixloop(&["profile", "check", file.as_str()], &env).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stdout.contains("remediation chooser is `model` but MINIMAX_API_KEY is not set: the rules will pick every step"),
        "{run:#?}"
    );
    let env = [
        ("INVENTORY_TOKEN", TOKEN_VALUE),
        ("MINIMAX_API_KEY", "mm-key"),
    ];
    let run = fixloop(&["profile", "check", file.as_str()], &env).await;
    assert_eq!(run.code, Some(0), "{run:#?}");
    assert!(!run.stdout.contains("warning"), "{run:#?}");
}
