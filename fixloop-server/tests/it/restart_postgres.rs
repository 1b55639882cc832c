//! The journal on PostgreSQL through the real binary: `fixloop serve` with `FIXLOOP_DATABASE_URL=postgres://…` (its
//! own schema, chosen by the URL's `search_path`) opens an incident, is killed with SIGKILL, and a second start on
//! the same database comes back with the same incident once the killed process's lease lapsed; the URL's password
//! never shows in the log.

use std::ffi::OsStr;
use std::time::Duration;

use fixloop_contract::{IncidentCard, WsMessage};

use crate::binary::{Fixloop, wait_for};
use crate::inventory::{self, Inventory};
use crate::pg::TestSchema;

/// Bound of the whole story.
const STORY: Duration = Duration::from_secs(120);

/// A password for the URL (trust authentication ignores it; a server that asks for one has it in the URL already).
const PASSWORD: &str = "url-password-never-logged";

/// `url` with [`PASSWORD`] when it holds none, and the password it holds.
fn with_password(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), String::new());
    };
    let Some((user, host)) = rest.split_once('@') else {
        return (url.to_owned(), String::new());
    };
    match user.split_once(':') {
        Some((_, password)) => (url.to_owned(), password.to_owned()),
        None => (
            format!("{scheme}://{user}:{PASSWORD}@{host}"),
            PASSWORD.to_owned(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_on_postgres_comes_back_with_its_incident() {
    let schema = TestSchema::create("serve").await;
    tokio::time::timeout(STORY, async {
        let (url, password) = with_password(schema.url());
        let store = ("FIXLOOP_DATABASE_URL", OsStr::new(&url));
        let inventory = Inventory::start().await;
        let traffic = inventory.traffic();
        let dir = tempfile::tempdir().expect("temp dir");
        let profile = dir.path().join("inventory.toml");
        std::fs::write(
            &profile,
            inventory::profile("inventory", &inventory.url, inventory::SCRAPE),
        )
        .expect("profile");

        let first = Fixloop::start_with(&profile, store, dir.path().join("first.log")).await;
        let mut socket = first.connect().await;
        inventory.set_failing(true);
        let WsMessage::IncidentCreated(card) =
            wait_for(&mut socket, |m| matches!(m, WsMessage::IncidentCreated(_))).await
        else {
            unreachable!()
        };
        let first_log = first.log();
        first.kill().await;

        let second = Fixloop::start_with(&profile, store, dir.path().join("second.log")).await;
        // The killed process's lease lapses first (the lease time, 5 s by default): then the second one leads.
        crate::replicas::wait_leading(&second, true).await;
        let current: Option<IncidentCard> = second.get("/api/incidents/current").await;
        assert_eq!(
            current.map(|card| card.incident_id),
            Some(card.incident_id.clone()),
            "the open incident survives; log:\n{}",
            second.log()
        );
        let second_log = second.log();
        assert!(
            second_log.contains("engine restored from the journal"),
            "{second_log}"
        );
        for log in [&first_log, &second_log] {
            assert!(
                log.contains("journal in PostgreSQL"),
                "the store is named: {log}"
            );
            assert!(
                password.is_empty() || !log.contains(&password),
                "the password never shows: {log}"
            );
        }
        second.terminate().await;
        traffic.abort();
        inventory.kill().await;
    })
    .await
    .expect("the story completes in time");
}

#[test]
fn a_password_is_put_in_only_where_none_is() {
    assert_eq!(
        with_password("postgres://postgres@127.0.0.1:5432/test"),
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:5432/test"),
            PASSWORD.to_owned()
        )
    );
    assert_eq!(
        with_password("postgres://u:p@h/d").1,
        "p",
        "an URL's own password is kept"
    );
}
