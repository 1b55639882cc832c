//! The notifiers: the shared [`Notifier`] contract suite against [`FakeNotifier`] and against
//! [`WebhookNotifier`], [`SlackNotifier`] and [`PagerDutyNotifier`] on wiremock stubs that answer as the sinks
//! document (wave2-apis §1-3), plus each sink's exact message (Standard Webhooks envelope and headers, Slack text
//! and blocks and its `ok` body, PagerDuty trigger and resolve sharing one dedup key).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fixloop_adapters::fake::FakeNotifier;
use fixloop_adapters::{
    AdapterError, Delivery, ErrorKind, NotificationKind, Notifier, PagerDutyNotifier,
    PagerDutyNotifierConfig, Secret, SlackNotifier, SlackNotifierConfig, WebhookNotifier,
    WebhookNotifierConfig,
};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::contract::bounded;
use crate::contract::notifier::{self, NotifierScenario, RETRY_AFTER_SECS, Sink, notification};

/// The timeout every real notifier of these tests is configured with.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The path part of the stub URLs that stands for a webhook's secret.
const URL_SECRET: &str = "T0001/B0001/hooksecret42";

/// The Standard Webhooks signing secret of these tests.
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The PagerDuty routing key of these tests.
const ROUTING_KEY: &str = "e93facc04764012d7bfb002500d5d1a6";

// ---- the fake ----

struct FakeScenario(Arc<FakeNotifier>);

#[async_trait]
impl NotifierScenario for FakeScenario {
    async fn arrange(&self, sink: Sink) {
        match sink {
            Sink::Accepts => {}
            Sink::RateLimits => {
                self.0
                    .push_error(AdapterError::rate_limited(Some(Duration::from_secs(
                        RETRY_AFTER_SECS,
                    ))))
            }
            Sink::Rejects => self.0.set_failure(Some(ErrorKind::InvalidResponse)),
            Sink::Fails | Sink::Unreachable => self.0.set_failure(Some(ErrorKind::Unavailable)),
            Sink::Slow => self.0.set_failure(Some(ErrorKind::Timeout)),
        }
    }

    async fn received(&self) -> usize {
        self.0.delivered().len()
    }

    fn secret(&self) -> Option<String> {
        None
    }
}

#[tokio::test]
async fn fake_notifier_meets_the_notifier_contract() {
    notifier::check_all(|| async {
        let fake = Arc::new(FakeNotifier::new());
        let port: Arc<dyn Notifier> = fake.clone();
        (
            port,
            Box::new(FakeScenario(fake)) as Box<dyn NotifierScenario>,
        )
    })
    .await;
}

#[tokio::test]
async fn fake_notifier_records_every_call_and_lists_only_deliveries() {
    let fake = FakeNotifier::new();
    fake.push_error(AdapterError::unavailable("down"));
    fake.push_delivery(Delivery::Skipped);
    for kind in [
        NotificationKind::IncidentOpened,
        NotificationKind::ActionProposed,
        NotificationKind::Recovered,
    ] {
        let _ = fake.notify(&notification(kind)).await;
    }
    assert_eq!(fake.calls().len(), 3);
    let delivered: Vec<_> = fake.delivered().iter().map(|n| n.kind).collect();
    assert_eq!(delivered, [NotificationKind::Recovered]);
}

// ---- the stubs ----

/// A wiremock sink that can be stopped (the unreachable case); `accept` is the sink's documented success answer.
struct StubScenario {
    server: Mutex<Option<MockServer>>,
    path: String,
    accept: ResponseTemplate,
    reject: ResponseTemplate,
    secret: String,
}

impl StubScenario {
    fn take(&self) -> Option<MockServer> {
        self.server.lock().unwrap().take()
    }

    fn put(&self, server: MockServer) {
        *self.server.lock().unwrap() = Some(server);
    }
}

#[async_trait]
impl NotifierScenario for StubScenario {
    async fn arrange(&self, sink: Sink) {
        let response = match sink {
            Sink::Accepts => self.accept.clone(),
            Sink::RateLimits => ResponseTemplate::new(429)
                .insert_header("retry-after", RETRY_AFTER_SECS.to_string().as_str()),
            Sink::Rejects => self.reject.clone(),
            Sink::Fails => ResponseTemplate::new(500).set_body_json(json!({
                "status": "Unrecognized object", "message": "Event object format is unrecognized",
                "errors": ["JSON parse error"]
            })),
            Sink::Slow => self.accept.clone().set_delay(Duration::from_secs(30)),
            Sink::Unreachable => {
                drop(self.take());
                return;
            }
        };
        let server = self.take().expect("a running stub");
        Mock::given(method("POST"))
            .and(path(self.path.as_str()))
            .respond_with(response)
            .mount(&server)
            .await;
        self.put(server);
    }

    async fn received(&self) -> usize {
        let Some(server) = self.take() else { return 0 };
        let count = server
            .received_requests()
            .await
            .map_or(0, |requests| requests.len());
        self.put(server);
        count
    }

    fn secret(&self) -> Option<String> {
        Some(self.secret.clone())
    }
}

fn client() -> reqwest::Client {
    fixloop_adapters::http_client(Duration::from_secs(30)).expect("a client")
}

fn webhook(server: &MockServer) -> WebhookNotifier {
    WebhookNotifier::new(
        WebhookNotifierConfig {
            url: Secret::new(format!("{}/hooks/{URL_SECRET}", server.uri())),
            headers: vec![(
                "authorization".to_owned(),
                Secret::new("Bearer hook-token-9"),
            )],
            signing_secret: Some(Secret::new(SIGNING_SECRET)),
            timeout: TIMEOUT,
        },
        client(),
    )
}

fn slack(server: &MockServer) -> SlackNotifier {
    SlackNotifier::new(
        SlackNotifierConfig {
            webhook_url: Secret::new(format!("{}/services/{URL_SECRET}", server.uri())),
            timeout: TIMEOUT,
        },
        client(),
    )
}

fn pagerduty(server: &MockServer) -> PagerDutyNotifier {
    PagerDutyNotifier::new(
        PagerDutyNotifierConfig {
            url: format!("{}/v2/enqueue", server.uri()),
            routing_key: Secret::new(ROUTING_KEY),
            timeout: TIMEOUT,
            ..PagerDutyNotifierConfig::default()
        },
        client(),
    )
}

fn scenario(
    server: MockServer,
    path: String,
    accept: ResponseTemplate,
    reject: ResponseTemplate,
    secret: &str,
) -> Box<dyn NotifierScenario> {
    Box::new(StubScenario {
        server: Mutex::new(Some(server)),
        path,
        accept,
        reject,
        secret: secret.to_owned(),
    })
}

#[tokio::test]
async fn webhook_notifier_meets_the_notifier_contract() {
    notifier::check_all(|| async {
        // A server of its own (not from wiremock's pool): dropping it closes its port, for the unreachable case.
        let server = MockServer::builder().start().await;
        let port: Arc<dyn Notifier> = Arc::new(webhook(&server));
        let reject = ResponseTemplate::new(400).set_body_string("bad event");
        let path = format!("/hooks/{URL_SECRET}");
        (
            port,
            scenario(server, path, ResponseTemplate::new(204), reject, URL_SECRET),
        )
    })
    .await;
}

#[tokio::test]
async fn slack_notifier_meets_the_notifier_contract() {
    notifier::check_all(|| async {
        // A server of its own (not from wiremock's pool): dropping it closes its port, for the unreachable case.
        let server = MockServer::builder().start().await;
        let port: Arc<dyn Notifier> = Arc::new(slack(&server));
        let accept = ResponseTemplate::new(200).set_body_string("ok");
        let reject = ResponseTemplate::new(400).set_body_string("invalid_payload");
        let path = format!("/services/{URL_SECRET}");
        (port, scenario(server, path, accept, reject, URL_SECRET))
    })
    .await;
}

#[tokio::test]
async fn pagerduty_notifier_meets_the_notifier_contract() {
    notifier::check_all(|| async {
        // A server of its own (not from wiremock's pool): dropping it closes its port, for the unreachable case.
        let server = MockServer::builder().start().await;
        let port: Arc<dyn Notifier> = Arc::new(pagerduty(&server));
        let accept = ResponseTemplate::new(202).set_body_json(json!({
            "status": "success", "message": "Event processed", "dedup_key": "fixloop/checkout/inc-0001"
        }));
        let reject = ResponseTemplate::new(400).set_body_json(json!({
            "status": "invalid event", "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]
        }));
        (port, scenario(server, "/v2/enqueue".to_owned(), accept, reject, ROUTING_KEY))
    })
    .await;
}

/// The JSON bodies the stub received, in order.
async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| serde_json::from_slice(&request.body).unwrap())
        .collect()
}

#[tokio::test]
async fn webhook_posts_a_signed_standard_webhooks_envelope_with_id_and_timestamp() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("webhook-id", "ntf-action.taken"))
        .and(header("webhook-timestamp", "1773480600"))
        .and(header("authorization", "Bearer hook-token-9"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let delivery = bounded(
        "notify",
        webhook(&server).notify(&notification(NotificationKind::ActionTaken)),
    )
    .await
    .unwrap();
    assert_eq!(delivery, Delivery::Delivered);
    let request = server.received_requests().await.unwrap().remove(0);
    // The signature covers the exact bytes sent.
    let expected = fixloop_adapters::notifier::sign_webhook(
        &Secret::new(SIGNING_SECRET),
        "ntf-action.taken",
        1_773_480_600,
        &request.body,
    )
    .unwrap();
    assert_eq!(request.headers["webhook-signature"], expected.as_str());
    assert_eq!(request.headers["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "fixloop.action.taken");
    assert_eq!(body["timestamp"], "2026-03-14T09:30:00Z");
    assert_eq!(body["data"]["incident_id"], "inc-0001");
    assert_eq!(body["data"]["action_id"], "disable-payment-feature");
    assert_eq!(
        body["data"]["links"][0]["url"],
        "http://127.0.0.1:8088/incidents/inc-0001"
    );
}

#[tokio::test]
async fn webhook_redirect_is_not_followed_and_is_a_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "http://example.invalid/"),
        )
        .mount(&server)
        .await;
    let error = bounded(
        "notify",
        webhook(&server).notify(&notification(NotificationKind::IncidentOpened)),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidResponse,
        "{}",
        error.detail()
    );
}

#[tokio::test]
async fn slack_message_has_fallback_text_and_escaped_blocks_and_needs_ok() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("something else"))
        .mount(&server)
        .await;
    let slack = slack(&server);
    let proposed = notification(NotificationKind::ActionProposed);
    bounded("notify", slack.notify(&proposed)).await.unwrap();
    let body = bodies(&server).await.remove(0);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("FixLoop: action proposed on checkout: "),
        "{text}"
    );
    let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        section.contains("35 % &lt;above&gt; 5 % &amp; rising"),
        "{section}"
    );
    assert!(
        section.contains("<http://127.0.0.1:8088/incidents/inc-0001|Incident>"),
        "{section}"
    );
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    let context = body["blocks"][1]["elements"][0]["text"].as_str().unwrap();
    assert_eq!(
        context,
        "incident inc-0001 · action disable-payment-feature"
    );

    let error = bounded("notify", slack.notify(&proposed))
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::InvalidResponse,
        "{}",
        error.detail()
    );
    assert!(error.to_string().contains("something else"), "{error}");
}

#[tokio::test]
async fn pagerduty_trigger_and_resolve_share_the_incidents_dedup_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/enqueue"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({"status": "success"})))
        .mount(&server)
        .await;
    let pagerduty = pagerduty(&server);
    let mut deliveries = Vec::new();
    for kind in NotificationKind::ALL {
        deliveries.push(
            bounded("notify", pagerduty.notify(&notification(kind)))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        deliveries,
        [
            Delivery::Delivered,
            Delivery::Skipped,
            Delivery::Skipped,
            Delivery::Delivered,
            Delivery::Delivered
        ]
    );
    let sent = bodies(&server).await;
    let actions: Vec<&str> = sent
        .iter()
        .map(|event| event["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "trigger", "resolve"]);
    for event in &sent {
        assert_eq!(event["dedup_key"], "fixloop/checkout/inc-0001");
        assert_eq!(event["routing_key"], ROUTING_KEY);
    }
    assert_eq!(sent[0]["payload"]["severity"], "error");
    assert_eq!(sent[1]["payload"]["severity"], "critical");
    assert_eq!(sent[0]["payload"]["source"], "fixloop");
    assert_eq!(sent[0]["payload"]["timestamp"], "2026-03-14T09:30:00.000Z");
    assert_eq!(
        sent[0]["links"][0]["href"],
        "http://127.0.0.1:8088/incidents/inc-0001"
    );
    assert!(
        sent[2].get("payload").is_none(),
        "a resolve carries no payload"
    );
    assert!(!format!("{pagerduty:?}").contains(ROUTING_KEY));
}
