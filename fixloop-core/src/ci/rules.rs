//! The classifier's rules: for each class, line matchers with a weight. Words match as whole tokens (letters,
//! digits and `_`, lowercased), so identifiers never match a word they contain.

use super::{FailureClass, MEDIUM, STRONG, WEAK};

/// One log line, prepared once for every rule.
pub(super) struct Line<'a> {
    /// The line as written.
    pub(super) raw: &'a str,
    lower: String,
    tokens: Vec<String>,
}

impl<'a> Line<'a> {
    pub(super) fn new(raw: &'a str) -> Self {
        let lower = raw.to_lowercase();
        let tokens = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .collect();
        Self { raw, lower, tokens }
    }

    /// The lowercased line contains `needle` (already lowercase).
    fn has(&self, needle: &str) -> bool {
        self.lower.contains(needle)
    }

    /// One of the tokens is `word`.
    fn word(&self, word: &str) -> bool {
        self.tokens.iter().any(|token| token == word)
    }

    /// The tokens contain `words` consecutively.
    fn phrase(&self, words: &[&str]) -> bool {
        !words.is_empty()
            && self
                .tokens
                .windows(words.len())
                .any(|window| window.iter().zip(words).all(|(token, word)| token == word))
    }

    /// A positive count right before one of `words` (`3 errors`, `1 failed`).
    fn positive_count(&self, words: &[&str]) -> bool {
        self.tokens.windows(2).any(|pair| {
            words.contains(&pair[1].as_str()) && pair[0].parse::<u64>().is_ok_and(|count| count > 0)
        })
    }

    /// The trimmed line starts with `prefix` (already lowercase).
    fn starts(&self, prefix: &str) -> bool {
        self.lower.trim_start().starts_with(prefix)
    }

    /// The line announces a retry: its evidence is weak.
    fn retrying(&self) -> bool {
        self.word("retrying") || self.phrase(&["will", "retry"]) || self.word("retry")
    }

    /// The line speaks of a connection (a timed-out connection is a network failure, not a slow test).
    fn about_connection(&self) -> bool {
        [
            "connect",
            "connection",
            "connecting",
            "httpsconnectionpool",
            "httpconnectionpool",
            "socket",
            "dial",
            "tcp",
            "host",
            "handshake",
        ]
        .iter()
        .any(|word| self.word(word))
    }
}

/// A rule: a class, a weight and a line matcher.
pub(super) struct Rule {
    pub(super) class: FailureClass,
    pub(super) weight: u32,
    pub(super) matches: fn(&Line<'_>) -> bool,
}

/// A line saying that a retried step eventually succeeded.
pub(super) fn says_retry_succeeded(line: &Line<'_>) -> bool {
    let success = ["succeeded", "success", "successful", "completed", "passed"]
        .iter()
        .any(|word| line.word(word));
    let retry = ["retry", "retrying", "attempt", "attempts", "retries"]
        .iter()
        .any(|word| line.word(word));
    success && retry && !line.word("failed") && !line.word("not")
}

/// Every rule, in a fixed order.
pub(super) fn rules() -> Vec<Rule> {
    use FailureClass::{
        DependencyInstall, Infrastructure, LintFormat, Migration, Network, OutOfMemory,
        TestAssertion, Timeout,
    };
    let rule = |class, weight, matches| Rule {
        class,
        weight,
        matches,
    };
    vec![
        // Infrastructure: the runner itself went away.
        rule(Infrastructure, STRONG, |l| {
            l.has("received a shutdown signal")
        }),
        rule(Infrastructure, STRONG, |l| {
            l.has("lost communication with the server")
        }),
        rule(Infrastructure, STRONG, |l| {
            l.has("runner system failure") || l.has("job failed (system failure)")
        }),
        rule(Infrastructure, STRONG, |l| l.has("no space left on device")),
        rule(Infrastructure, STRONG, |l| {
            l.has("cannot connect to the docker daemon")
        }),
        rule(Infrastructure, STRONG, |l| {
            l.has("don't have any active runners") || l.has("no runner available")
        }),
        rule(Infrastructure, MEDIUM, |l| {
            l.has("the operation was canceled") || l.has("the operation was cancelled")
        }),
        rule(Infrastructure, MEDIUM, |l| {
            l.word("evicted") && (l.word("pod") || l.word("node"))
        }),
        rule(Infrastructure, MEDIUM, |l| {
            l.has("error response from daemon")
        }),
        // Out of memory.
        rule(OutOfMemory, STRONG, |l| l.phrase(&["out", "of", "memory"])),
        rule(OutOfMemory, STRONG, |l| {
            l.word("oomkilled") || l.phrase(&["oom", "killer"]) || l.phrase(&["oom", "kill"])
        }),
        rule(OutOfMemory, STRONG, |l| {
            l.phrase(&["exit", "code", "137"])
                || l.phrase(&["exit", "status", "137"])
                || l.phrase(&["exited", "with", "137"])
        }),
        rule(OutOfMemory, STRONG, |l| {
            l.phrase(&["signal", "9", "sigkill"]) || l.phrase(&["sigkill", "kill"])
        }),
        rule(OutOfMemory, STRONG, |l| {
            l.word("memoryerror") || l.phrase(&["cannot", "allocate", "memory"])
        }),
        rule(OutOfMemory, STRONG, |l| {
            l.has("memory allocation of") && l.word("failed")
        }),
        rule(OutOfMemory, MEDIUM, |l| {
            l.lower.trim() == "killed" || l.phrase(&["killed", "signal", "9"])
        }),
        // Timeouts of a test, a step or the job.
        rule(Timeout, STRONG, |l| {
            l.phrase(&["timed", "out"]) && !l.about_connection() && !l.retrying()
        }),
        rule(Timeout, STRONG, |l| {
            l.phrase(&["exceeded", "timeout"]) || l.has("exceeded the maximum execution time")
        }),
        rule(Timeout, STRONG, |l| {
            l.has("execution took longer than") || l.has("has exceeded the maximum")
        }),
        rule(Timeout, STRONG, |l| {
            l.has("timeout >") || l.has("timeout after") && !l.about_connection()
        }),
        rule(Timeout, STRONG, |l| {
            l.starts("timeout [") || l.phrase(&["tests", "timed", "out"])
        }),
        rule(Timeout, MEDIUM, |l| {
            l.phrase(&["deadline", "exceeded"]) && !l.about_connection()
        }),
        rule(Timeout, WEAK, |l| l.has("has been running for over")),
        // Database migrations.
        rule(Migration, STRONG, |l| {
            l.has("alembic.util.exc") || l.has("can't locate revision")
        }),
        rule(Migration, STRONG, |l| {
            (l.word("migration") || l.word("migrations") || l.word("migrate"))
                && (l.word("failed") || l.word("error") || l.word("errors"))
                && !l.has("0 error")
        }),
        rule(Migration, STRONG, |l| {
            l.word("flyway") && (l.word("failed") || l.word("error"))
        }),
        rule(Migration, MEDIUM, |l| {
            l.phrase(&["already", "exists"])
                && (l.word("relation") || l.word("table") || l.word("column"))
        }),
        rule(Migration, MEDIUM, |l| {
            l.phrase(&["duplicate", "column"])
                || l.phrase(&["checksum", "mismatch", "for", "migration"])
        }),
        rule(Migration, MEDIUM, |l| {
            l.word("sqlalchemy") && l.word("programmingerror")
        }),
        // Dependencies that cannot be resolved, fetched or built.
        rule(DependencyInstall, STRONG, |l| {
            l.has("no matching distribution found")
                || l.has("could not find a version that satisfies")
        }),
        rule(DependencyInstall, STRONG, |l| {
            l.word("eresolve")
                || l.has("unable to resolve dependency tree")
                || l.has("could not resolve dependency")
        }),
        rule(DependencyInstall, STRONG, |l| {
            l.has("failed to select a version for") || l.has("no matching package named")
        }),
        rule(DependencyInstall, STRONG, |l| {
            l.word("e404") || l.has("404 not found - get")
        }),
        rule(DependencyInstall, STRONG, |l| {
            l.has("failed building wheel") || l.word("resolutionimpossible")
        }),
        rule(DependencyInstall, STRONG, |l| {
            l.word("eintegrity") || l.has("integrity checksum failed")
        }),
        rule(DependencyInstall, STRONG, |l| {
            l.has("unable to locate package") || l.has("couldn't find package")
        }),
        rule(DependencyInstall, MEDIUM, |l| {
            l.has("subprocess-exited-with-error") || l.has("failed to load manifest")
        }),
        rule(DependencyInstall, MEDIUM, |l| {
            l.has("npm err!") && l.word("code") && !l.word("elifecycle")
        }),
        // Lint and format checks.
        rule(LintFormat, STRONG, |l| {
            l.positive_count(&["problem", "problems"]) && l.positive_count(&["error", "errors"])
        }),
        rule(LintFormat, STRONG, |l| {
            l.has("would reformat") || l.phrase(&["would", "be", "reformatted"])
        }),
        rule(LintFormat, STRONG, |l| {
            l.starts("diff in ") && l.has(" at line ")
        }),
        rule(LintFormat, STRONG, |l| {
            l.has("code style issues found") || l.has("forgot to run prettier")
        }),
        rule(LintFormat, STRONG, |l| {
            l.has("clippy::") && (l.word("error") || l.word("deny") || l.has("-d clippy::"))
        }),
        rule(LintFormat, MEDIUM, |l| {
            l.starts("found ")
                && l.positive_count(&["error", "errors"])
                && !l.word("vulnerabilities")
        }),
        rule(LintFormat, MEDIUM, eslint_error_line),
        rule(LintFormat, MEDIUM, |l| {
            l.word("rustfmt") || l.word("eslint") || l.word("flake8") || l.word("ruff")
        })
        .weaken(),
        // Network and DNS.
        rule(Network, STRONG, |l| !l.retrying() && network_failure(l)),
        rule(Network, WEAK, |l| l.retrying() && network_failure(l)),
        rule(Network, MEDIUM, |l| {
            l.phrase(&["502", "bad", "gateway"]) || l.phrase(&["503", "service", "unavailable"])
        }),
        // Test assertions.
        rule(TestAssertion, STRONG, |l| {
            l.word("assertionerror") || l.phrase(&["assertion", "failed"])
        }),
        rule(TestAssertion, STRONG, |l| {
            l.has("assertion `left == right` failed") || l.has("assertion `left != right` failed")
        }),
        rule(TestAssertion, STRONG, |l| {
            l.starts("e ") && l.word("assert")
        }),
        rule(TestAssertion, STRONG, |l| {
            l.has("expect(received)") || l.has("expected:") && l.has("got:")
        }),
        rule(TestAssertion, MEDIUM, |l| {
            l.starts("expected:")
                || l.starts("received:")
                || l.starts("- expected")
                || l.starts("+ received")
        }),
        rule(TestAssertion, MEDIUM, |l| {
            l.has("panicked at") && !l.has("out of memory")
        }),
        rule(TestAssertion, MEDIUM, |l| {
            l.starts("left:") || l.starts("right:")
        }),
        rule(TestAssertion, WEAK, |l| {
            l.has("test result: failed") || l.starts("failed ") && l.has("::")
        }),
        rule(TestAssertion, WEAK, |l| {
            (l.starts("tests:") || l.has(" short test summary")) && l.positive_count(&["failed"])
        }),
        rule(TestAssertion, WEAK, |l| l.starts("--- fail:")),
    ]
}

impl Rule {
    /// The same rule as a hint.
    fn weaken(self) -> Self {
        Self {
            weight: WEAK,
            ..self
        }
    }
}

/// An ESLint problem line: `  12:5  error  'x' is defined but never used  no-unused-vars`.
fn eslint_error_line(line: &Line<'_>) -> bool {
    let mut parts = line.lower.split_whitespace();
    let (Some(position), Some(severity)) = (parts.next(), parts.next()) else {
        return false;
    };
    let mut numbers = position.split(':');
    let is_number = |part: Option<&str>| {
        part.is_some_and(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
    };
    is_number(numbers.next()) && is_number(numbers.next()) && severity == "error"
}

/// A line reporting a failed connection or name resolution.
fn network_failure(line: &Line<'_>) -> bool {
    const CODES: [&str; 7] = [
        "econnrefused",
        "econnreset",
        "enotfound",
        "eai_again",
        "etimedout",
        "ehostunreach",
        "enetunreach",
    ];
    CODES.iter().any(|code| line.word(code))
        || line.has("could not resolve host")
        || line.has("temporary failure in name resolution")
        || line.has("name or service not known")
        || line.has("connection refused")
        || line.has("connection reset by peer")
        || line.has("no route to host")
        || line.has("network is unreachable")
        || line.has("tls handshake timeout")
        || line.has("failed to establish a new connection")
        || (line.phrase(&["i", "o", "timeout"]) && line.word("dial"))
        || (line.phrase(&["timed", "out"]) && line.about_connection())
}
