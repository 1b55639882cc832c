//! The synthetic signal source against wiremock: the traffic cases of the signal-source contract, failing probes
//! as data (status, connection refused, timeout, missing secret), the window and the ring bound, the validation
//! header and secret substitution.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::synthetic::SYNTHETIC_VALIDATION_TAG;
use fixloop_adapters::{
    ErrorKind, Secret, SignalSource, SyntheticConfig, SyntheticProbe, SyntheticSignalSource,
    VALIDATION_HEADER, http_client,
};
use fixloop_contract::{HttpMethod, Target};
use fixloop_core::Criteria;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::bounded;
use crate::contract::signal_source::{self, SignalScenario, Traffic};
use crate::http_runner::closed_base_url;

const WINDOW: Duration = Duration::from_secs(300);

fn probe(name: &str, url: String, criteria: &str) -> SyntheticProbe {
    SyntheticProbe {
        name: name.to_owned(),
        target: Target {
            method: HttpMethod::Get,
            url,
            headers: BTreeMap::new(),
            body_json: Default::default(),
        },
        criteria: Criteria::parse(criteria).expect("valid criteria"),
    }
}

fn source(config: SyntheticConfig) -> SyntheticSignalSource {
    SyntheticSignalSource::new(
        config,
        http_client(Duration::from_secs(10)).expect("a client"),
    )
}

async fn mount(server: &MockServer, route: &str, status: u16) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status))
        .mount(server)
        .await;
}

/// `/health` and `/orders` on a stub; `/orders` answers 503 when erroring.
struct StubScenario {
    server: MockServer,
}

#[async_trait]
impl SignalScenario for StubScenario {
    async fn arrange(&self, traffic: Traffic) {
        self.server.reset().await;
        mount(&self.server, "/health", 200).await;
        let orders = if traffic == Traffic::Erroring {
            503
        } else {
            200
        };
        mount(&self.server, "/orders", orders).await;
    }
}

#[tokio::test]
async fn synthetic_source_meets_the_traffic_cases_of_the_signal_source_contract() {
    signal_source::check_traffic(|| async {
        let server = MockServer::start().await;
        let config = SyntheticConfig::new(vec![
            probe(
                "health",
                format!("{}/health", server.uri()),
                "status == 200",
            ),
            probe(
                "orders",
                format!("{}/orders", server.uri()),
                "status == 200",
            ),
        ]);
        let source: Arc<dyn SignalSource> = Arc::new(source(config));
        let scenario: Box<dyn SignalScenario> = Box::new(StubScenario { server });
        (source, scenario)
    })
    .await;
}

#[tokio::test]
async fn failing_probes_are_data_with_signatures() {
    let server = MockServer::start().await;
    mount(&server, "/orders", 503).await;
    Mock::given(path("/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let closed = closed_base_url().await;
    let mut with_secret = probe(
        "secret",
        format!("{}/orders", server.uri()),
        "status == 200",
    );
    with_secret.target.headers.insert(
        "authorization".to_owned(),
        "Bearer ${env:MISSING}".to_owned(),
    );
    let config = SyntheticConfig {
        probe_timeout: Duration::from_millis(300),
        ..SyntheticConfig::new(vec![
            probe(
                "orders 1",
                format!("{}/orders", server.uri()),
                "status == 200",
            ),
            probe(
                "orders 2",
                format!("{}/orders?page=2", server.uri()),
                "status == 200",
            ),
            probe(
                "orders 3",
                format!("{}/orders", server.uri()),
                "status == 200",
            ),
            probe("down", format!("{closed}/orders"), "status == 200"),
            probe("slow", format!("{}/slow", server.uri()), "status == 200"),
            with_secret,
        ])
    };
    let source = source(config);
    let reading = bounded("read", source.read(WINDOW))
        .await
        .expect("failing probes are not a failed read");
    assert_eq!(reading.requests, 6);
    assert_eq!(reading.error_rate, Some(1.0));
    assert_eq!(reading.top_error.as_deref(), Some("GET /orders -> 503"));
    assert!(reading.p95_latency_ms.is_some(), "{reading:?}");
    assert_eq!(reading.evidence_links.len(), 4, "one per distinct URL");
    assert_eq!(
        reading.evidence_links[0].url,
        format!("{}/orders", server.uri())
    );

    // Each failure kind has its own signature; a second read makes the refused one the top error.
    let refused_only = SyntheticConfig::new(vec![probe(
        "down",
        format!("{closed}/orders"),
        "status == 200",
    )]);
    let reading = bounded("read", self::source(refused_only).read(WINDOW))
        .await
        .expect("a reading");
    assert_eq!(
        reading.top_error.as_deref(),
        Some("GET /orders -> connection refused")
    );
    let timeout_only = SyntheticConfig {
        probe_timeout: Duration::from_millis(300),
        ..SyntheticConfig::new(vec![probe(
            "slow",
            format!("{}/slow", server.uri()),
            "status == 200",
        )])
    };
    let reading = bounded("read", self::source(timeout_only).read(WINDOW))
        .await
        .expect("a reading");
    assert_eq!(
        reading.top_error.as_deref(),
        Some("GET /slow -> timed out after 300ms")
    );
    let secret_only = SyntheticConfig::new(vec![{
        let mut probe = probe(
            "secret",
            format!("{}/orders", server.uri()),
            "status == 200",
        );
        probe
            .target
            .headers
            .insert("authorization".to_owned(), "${env:MISSING}".to_owned());
        probe
    }]);
    let reading = bounded("read", self::source(secret_only).read(WINDOW))
        .await
        .expect("a reading");
    assert_eq!(
        reading.top_error.as_deref(),
        Some("GET /orders -> secret MISSING is not configured")
    );
}

#[tokio::test]
async fn no_probe_configured_is_the_only_failed_read() {
    let error = bounded(
        "read",
        source(SyntheticConfig::new(Vec::new())).read(WINDOW),
    )
    .await
    .expect_err("nothing to probe");
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    assert_eq!(error.to_string(), "no synthetic probe is configured");
}

#[tokio::test]
async fn window_covers_earlier_reads_and_the_ring_is_bounded() {
    let server = MockServer::start().await;
    let config = SyntheticConfig {
        max_results: 3,
        ..SyntheticConfig::new(vec![
            probe(
                "health",
                format!("{}/health", server.uri()),
                "status == 200",
            ),
            probe(
                "orders",
                format!("{}/orders", server.uri()),
                "status == 200",
            ),
        ])
    };
    let source = source(config);
    mount(&server, "/health", 200).await;
    mount(&server, "/orders", 503).await;
    let first = bounded("read", source.read(WINDOW)).await.expect("a read");
    assert_eq!((first.requests, first.error_rate), (2, Some(0.5)));

    server.reset().await;
    mount(&server, "/health", 200).await;
    mount(&server, "/orders", 200).await;
    // A zero window holds only this read's results.
    let narrow = bounded("read", source.read(Duration::ZERO))
        .await
        .expect("a read");
    assert_eq!((narrow.requests, narrow.error_rate), (2, Some(0.0)));
    assert_eq!(narrow.top_error, None);

    // The ring keeps 3 results: the newest 2 and one of the first read.
    let wide = bounded("read", source.read(WINDOW)).await.expect("a read");
    assert_eq!(wide.requests, 3, "{wide:?}");
}

#[tokio::test]
async fn probes_carry_the_validation_header_and_resolved_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/me"))
        .and(header(VALIDATION_HEADER, SYNTHETIC_VALIDATION_TAG))
        .and(header(
            fixloop_adapters::TRAFFIC_HEADER,
            fixloop_adapters::TRAFFIC_SYNTHETIC,
        ))
        .and(wiremock::matchers::header_regex("user-agent", "^fixloop/"))
        .and(header("authorization", "Bearer probe-secret"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let mut me = probe("me", format!("{}/me", server.uri()), "status == 200");
    me.target.headers.insert(
        "authorization".to_owned(),
        "Bearer ${env:PROBE_TOKEN}".to_owned(),
    );
    let config = SyntheticConfig {
        secrets: BTreeMap::from([("PROBE_TOKEN".to_owned(), Secret::new("probe-secret"))]),
        ..SyntheticConfig::new(vec![me])
    };
    let reading = bounded("read", source(config).read(WINDOW))
        .await
        .expect("a read");
    assert_eq!((reading.requests, reading.error_rate), (1, Some(0.0)));
    assert!(
        !format!("{reading:?}").contains("probe-secret"),
        "{reading:?}"
    );
    server.verify().await;
}
