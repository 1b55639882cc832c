//! The library entry points the binary uses: `start_serve` and `start_demo_app` on ephemeral ports, shutdown, and
//! a clear error when a port is taken.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use fixloop_server::{Config, Mode, ServeOptions, StartError, start_demo_app, start_serve};

const WAIT: Duration = Duration::from_secs(20);
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn empty_config() -> Config {
    Config::from_env_map(&std::collections::HashMap::new()).unwrap()
}

async fn get_json(url: String) -> serde_json::Value {
    tokio::time::timeout(WAIT, async {
        fixloop_adapters::default_client()
            .get(url)
            .send()
            .await?
            .json()
            .await
    })
    .await
    .expect("answer in time")
    .expect("a JSON answer")
}

#[tokio::test]
async fn serve_watches_a_separate_demo_app_and_both_stop() {
    let app = tokio::time::timeout(WAIT, start_demo_app(LOCALHOST, 0, &empty_config()))
        .await
        .unwrap()
        .expect("the demo service starts");
    let mut config = empty_config();
    config.demo_app_url.clone_from(&app.demo_url);
    let server = tokio::time::timeout(
        WAIT,
        start_serve(ServeOptions {
            port: 0,
            config,
            mode: Mode::Demo,
            ..ServeOptions::default()
        }),
    )
    .await
    .unwrap()
    .expect("the orchestrator starts");
    assert_eq!(server.watched_url, app.demo_url);
    assert_eq!(
        get_json(format!("{}/healthz", server.orchestrator_url)).await["status"],
        "ok"
    );
    assert_eq!(
        get_json(format!("{}/api/status", server.orchestrator_url)).await["status"],
        "HEALTHY"
    );
    // The orchestrator really drives the demo service's bug switch.
    let response = tokio::time::timeout(
        WAIT,
        fixloop_adapters::default_client()
            .post(format!("{}/api/demo/bug", server.orchestrator_url))
            .json(&serde_json::json!({"enabled": true}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(response.status().is_success());
    assert!(app.state.bug_enabled());
    let orchestrator_url = server.orchestrator_url.clone();
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("stops in time");
    tokio::time::timeout(WAIT, app.shutdown())
        .await
        .expect("stops in time");
    let after = tokio::time::timeout(
        WAIT,
        fixloop_adapters::default_client()
            .get(format!("{orchestrator_url}/healthz"))
            .send(),
    )
    .await
    .unwrap();
    assert!(after.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error_naming_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let error = tokio::time::timeout(WAIT, start_demo_app(LOCALHOST, port, &empty_config()))
        .await
        .unwrap()
        .expect_err("the port is taken");
    assert!(matches!(error, StartError::Bind { .. }));
    assert_eq!(
        error.to_string(),
        format!("cannot listen on 127.0.0.1:{port}")
    );
}

#[test]
fn env_example_documents_every_variable_and_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.env.example");
    let text = std::fs::read_to_string(&path).expect("the repository has .env.example");
    let mut env = std::collections::HashMap::new();
    for line in text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
    {
        let (name, value) = line.split_once('=').expect("NAME=value lines");
        env.insert(name.to_owned(), value.to_owned());
    }
    for variable in fixloop_server::config::VARIABLES {
        assert!(
            env.contains_key(variable),
            "{variable} is missing from .env.example"
        );
        assert!(
            text.lines()
                .zip(text.lines().skip(1))
                .any(|(comment, line)| comment.starts_with('#')
                    && line.starts_with(&format!("{variable}="))),
            "{variable} has a comment line above it"
        );
    }
    assert_eq!(
        env.len(),
        fixloop_server::config::VARIABLES.len(),
        "no unknown variable"
    );
    Config::from_env_map(&env).expect("the example values are a valid configuration");
}
