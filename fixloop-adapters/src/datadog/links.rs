//! Deep links into the Datadog UI of a site. The URL shapes are conventions seen in public links, not documented
//! APIs (marked unverified in the vendor reference), except the monitor page.

use reqwest::Url;

fn with_query(base: &str, path: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(&format!("{base}{path}")) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.into()
        }
        Err(_) => format!("{base}{path}"),
    }
}

/// The Metric Explorer on `metric` over `scope` between two epoch-millisecond times.
#[must_use]
pub fn metric_explorer_url(
    app_base: &str,
    metric: &str,
    scope: &str,
    from_ms: i64,
    to_ms: i64,
) -> String {
    with_query(
        app_base,
        "/metric/explorer",
        &[
            ("from_ts", &from_ms.to_string()),
            ("to_ts", &to_ms.to_string()),
            ("live", "false"),
            ("exp_metric", metric),
            ("exp_scope", scope),
            ("exp_agg", "sum"),
            ("exp_row_type", "metric"),
        ],
    )
}

/// The Log Explorer on `query` between two epoch-millisecond times.
#[must_use]
pub fn logs_url(app_base: &str, query: &str, from_ms: i64, to_ms: i64) -> String {
    with_query(
        app_base,
        "/logs",
        &[
            ("query", query),
            ("from_ts", &from_ms.to_string()),
            ("to_ts", &to_ms.to_string()),
            ("live", "false"),
        ],
    )
}

/// The APM service page of `service` in `env`.
#[must_use]
pub fn service_url(app_base: &str, service: &str, env: Option<&str>) -> String {
    let path = format!("/apm/services/{}", encode_segment(service));
    match env {
        Some(env) => with_query(app_base, &path, &[("env", env)]),
        None => format!("{app_base}{path}"),
    }
}

/// The page of monitor `monitor_id`.
#[must_use]
pub fn monitor_url(app_base: &str, monitor_id: &str) -> String {
    format!("{app_base}/monitors/{}", encode_segment(monitor_id))
}

fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_encoded() {
        let url = logs_url(
            "https://app.datadoghq.eu",
            "service:checkout status:error",
            1000,
            2000,
        );
        assert_eq!(
            url,
            "https://app.datadoghq.eu/logs?query=service%3Acheckout+status%3Aerror&from_ts=1000&to_ts=2000&live=false"
        );
        assert_eq!(
            monitor_url("https://us5.datadoghq.com", "12/3"),
            "https://us5.datadoghq.com/monitors/12%2F3"
        );
        assert_eq!(
            service_url("https://app.datadoghq.com", "check out", Some("prod")),
            "https://app.datadoghq.com/apm/services/check%20out?env=prod"
        );
    }
}
