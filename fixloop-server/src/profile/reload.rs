//! What a reloaded profile changes in the running set of services: pure, so the rule is tested without a server.
//!
//! Services are matched by name. A service whose checked profile is equal to the running one (spec, alert labels,
//! signals, thresholds and secret values alike) is left running untouched; any difference restarts it, because its
//! driver, ports and engine configuration are all built from that profile.

use super::{Profile, ServiceProfile};

/// The difference between the running services and a newly loaded profile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    /// Services in the new profile only: they start. In file order.
    pub added: Vec<ServiceProfile>,
    /// Services no longer in the profile: they stop (their journal is kept). In the running order.
    pub removed: Vec<String>,
    /// Services in both whose profile changed: they restart from their journal. In file order.
    pub changed: Vec<ServiceProfile>,
    /// Services in both, unchanged. In file order.
    pub unchanged: Vec<String>,
    /// The new running order: every service of the new profile, in file order.
    pub order: Vec<String>,
}

impl Changes {
    /// Whether the reload leaves everything as it is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// The names of the added services.
    #[must_use]
    pub fn added_names(&self) -> Vec<String> {
        self.added
            .iter()
            .map(|service| service.spec.name.clone())
            .collect()
    }

    /// The names of the changed (restarted) services.
    #[must_use]
    pub fn changed_names(&self) -> Vec<String> {
        self.changed
            .iter()
            .map(|service| service.spec.name.clone())
            .collect()
    }
}

/// Compares the running services with `next`.
#[must_use]
pub fn changes(running: &[ServiceProfile], next: &Profile) -> Changes {
    let mut changes = Changes::default();
    for service in &next.services {
        let name = &service.spec.name;
        changes.order.push(name.clone());
        match running.iter().find(|old| &old.spec.name == name) {
            None => changes.added.push(service.clone()),
            Some(old) if old == service => changes.unchanged.push(name.clone()),
            Some(_) => changes.changed.push(service.clone()),
        }
    }
    changes.removed = running
        .iter()
        .filter(|old| next.service(&old.spec.name).is_none())
        .map(|old| old.spec.name.clone())
        .collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Secrets, demo_profile};

    fn service(name: &str, url: &str) -> ServiceProfile {
        let mut service = demo_profile(url);
        service.spec.name = name.to_owned();
        service
    }

    fn profile(services: &[ServiceProfile]) -> Profile {
        Profile {
            services: services.to_vec(),
            sha256: String::new(),
            ci: None,
            notify: Vec::new(),
        }
    }

    #[test]
    fn the_same_profile_changes_nothing() {
        let running = [service("a", "http://a:1"), service("b", "http://b:1")];
        let changes = changes(&running, &profile(&running));
        assert!(changes.is_empty());
        assert_eq!(changes.unchanged, ["a", "b"]);
        assert_eq!(changes.order, ["a", "b"]);
    }

    #[test]
    fn added_removed_and_changed_services_are_told_apart_by_name() {
        let running = [
            service("a", "http://a:1"),
            service("b", "http://b:1"),
            service("c", "http://c:1"),
        ];
        let next = profile(&[
            service("d", "http://d:1"),
            service("b", "http://b:2"),
            service("a", "http://a:1"),
        ]);
        let changes = changes(&running, &next);
        assert_eq!(changes.added_names(), ["d"]);
        assert_eq!(changes.changed_names(), ["b"]);
        assert_eq!(changes.unchanged, ["a"]);
        assert_eq!(changes.removed, ["c"]);
        assert_eq!(changes.order, ["d", "b", "a"]);
        assert!(!changes.is_empty());
    }

    #[test]
    fn a_changed_threshold_or_secret_restarts_the_service() {
        let running = [service("a", "http://a:1")];
        let mut threshold = running[0].clone();
        threshold.thresholds.trigger_error_percent = Some(7.0);
        assert_eq!(
            changes(&running, &profile(&[threshold])).changed_names(),
            ["a"]
        );

        let text = fixloop_server_profile_with_secret();
        let env = |value: &str| {
            std::collections::HashMap::from([("SHOP_TOKEN".to_owned(), value.to_owned())])
        };
        let old = Profile::parse(&text, "test.toml", Secrets::From(&env("one"))).expect("valid");
        let new = Profile::parse(&text, "test.toml", Secrets::From(&env("two"))).expect("valid");
        assert_eq!(
            changes(&old.services, &new).changed_names(),
            ["demo-checkout"]
        );
        assert!(changes(&old.services, &old).is_empty());
    }

    fn fixloop_server_profile_with_secret() -> String {
        crate::profile::DEMO_PROFILE.replacen(
            "[[service.journeys]]",
            "[[service.journeys]]\nid = \"with-secret\"\nname = \"Uses a secret\"\npath = \"/api/catalog\"\n\
             headers = { authorization = \"Bearer ${env:SHOP_TOKEN}\" }\npass_criteria = \"status == 200\"\n\
             priority = 9\n\n[[service.journeys]]",
            1,
        )
    }
}
