//! The HTML rendering of a [`VerifyReport`]: one self-contained file (inline CSS, no script, no external asset, no
//! link), every piece of text escaped, for a CI system to publish as an artifact.

use super::{GateResult, GateStatus, Outcome, VerifyReport};

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1f2328;\
background:#fff}h1{font-size:1.4rem;margin:0 0 .5rem}h2{font-size:1.1rem;margin-top:2rem}\
.banner{padding:1rem 1.25rem;border-radius:8px;font-weight:600;margin:1rem 0}\
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#82071e}.warn{background:#fff8c5;color:#6a4a00}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #d0d7de;padding:.4rem .6rem;\
text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-family:ui-monospace,monospace;font-size:.85rem}\
.meta{color:#59636e;font-size:.9rem}.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.8rem}";

/// The report as one HTML document.
#[must_use]
pub fn render(report: &VerifyReport) -> String {
    let banner = match report.outcome {
        Outcome::Verified => "ok",
        Outcome::Inconclusive => "warn",
        _ => "bad",
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>fixloop verify: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>fixloop verify: {}</h1>\n<p class=\"meta\">profile <code>{}</code> · base URL <code>{}</code> · \
         plan by {} · {} → {}</p>\n<div class=\"banner {banner}\">exit {} · {}</div>\n",
        escape(report.service.as_deref().unwrap_or(&report.profile)),
        escape(report.service.as_deref().unwrap_or(&report.profile)),
        escape(&report.profile),
        escape(report.base_url.as_deref().unwrap_or("?")),
        escape(report.planner.as_deref().unwrap_or("none")),
        report.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.finished_at.format("%H:%M:%S UTC"),
        report.exit_code,
        escape(&report.summary),
    );
    html.push_str("<h2>Gates</h2>\n<table>\n<tr><th>gate</th><th>status</th><th>why</th></tr>\n");
    for (name, gate) in [
        ("tests", &report.test_gate),
        ("signals", &report.signal_gate),
    ] {
        html.push_str(&format!(
            "<tr><td>{name}</td><td>{}</td><td>{}</td></tr>\n",
            status_pill(gate),
            escape(&gate.reason)
        ));
    }
    html.push_str("</table>\n<h2>Tests</h2>\n");
    if report.tests.is_empty() {
        html.push_str("<p class=\"meta\">No test ran.</p>\n");
    } else {
        html.push_str(
            "<table>\n<tr><th>test</th><th>request</th><th>criteria</th><th>verdict</th><th>details</th></tr>\n",
        );
        for test in &report.tests {
            let (class, verdict) = if test.passed {
                ("ok", "PASS")
            } else {
                ("bad", "FAIL")
            };
            html.push_str(&format!(
                "<tr><td><code>{}</code><br>{}</td><td><code>{} {}</code></td><td><code>{}</code></td>\
                 <td><span class=\"pill {class}\">{verdict}</span></td><td>{}</td></tr>\n",
                escape(&test.test_id),
                escape(&test.name),
                escape(&test.method),
                escape(&test.url),
                escape(&test.pass_criteria),
                escape(&test.details),
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("<h2>Signals</h2>\n");
    match &report.signals {
        None => html.push_str("<p class=\"meta\">The signal gate was not held.</p>\n"),
        Some(hold) => {
            html.push_str(&format!(
                "<p class=\"meta\">{} · held {:.1} s, read every {:.1} s · the gate needs {} consecutive healthy \
                 measurements of at least {} requests below {:.1}% errors · measurements: {} healthy, {} \
                 unhealthy, {} inconclusive</p>\n",
                escape(&hold.source),
                hold.requested_secs,
                hold.poll_interval_secs,
                hold.recovery_samples,
                hold.min_requests,
                hold.recovery_error_percent,
                hold.healthy,
                hold.unhealthy,
                hold.inconclusive
            ));
            html.push_str(
                "<table>\n<tr><th>read at</th><th>requests</th><th>error rate</th><th>p95</th><th>top error \
                 or read failure</th></tr>\n",
            );
            for read in &hold.reads {
                html.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    read.at.format("%H:%M:%S%.3f"),
                    read.requests,
                    read.error_rate_percent
                        .map_or_else(|| "no data".to_owned(), |rate| format!("{rate:.1}%")),
                    read.p95_latency_ms
                        .map_or_else(|| "no data".to_owned(), |ms| format!("{ms:.0} ms")),
                    escape(
                        read.read_error
                            .as_deref()
                            .or(read.top_error.as_deref())
                            .unwrap_or("")
                    ),
                ));
            }
            html.push_str("</table>\n");
        }
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn status_pill(gate: &GateResult) -> String {
    let (class, label) = match gate.status {
        GateStatus::Passed => ("ok", "passed"),
        GateStatus::Failed => ("bad", "failed"),
        GateStatus::Unreachable => ("bad", "unreachable"),
        GateStatus::Inconclusive => ("warn", "inconclusive"),
        GateStatus::NotRun => ("warn", "not run"),
    };
    format!("<span class=\"pill {class}\">{label}</span>")
}

/// `text` escaped for HTML text and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}
