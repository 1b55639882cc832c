//! The remediation executor of a service, built from its profile's checked `[[service.remediation.actions]]`: the
//! `http` actions become one [`HttpActionExecutor`] whose allowlist is the service's own base URLs. Other executor
//! kinds are checked by `profile check` but not wired yet: the driver then answers their actions with a refusal
//! ("unknown action"), never by acting.

use std::collections::BTreeMap;
use std::sync::Arc;

use fixloop_adapters::{Executor, HttpAction, HttpActionExecutor, HttpActionExecutorConfig};
use serde_json::Value;

use crate::profile::ServiceProfile;

/// The executor for `service`'s declared actions, or `None` when it declares no action FixLoop can carry out.
#[must_use]
pub fn build_executor(
    service: &ServiceProfile,
    http: &reqwest::Client,
) -> Option<Arc<dyn Executor>> {
    let mut actions = BTreeMap::new();
    for action in &service.actions {
        if action.executor != "http" {
            tracing::warn!(
                service = %service.spec.name,
                action_id = %action.id,
                executor = %action.executor,
                "this executor kind is not wired yet: the action will be refused"
            );
            continue;
        }
        let Some(url) = action.settings.get("url").and_then(Value::as_str) else {
            continue;
        };
        let method = action
            .settings
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("POST");
        actions.insert(
            action.id.clone(),
            HttpAction {
                method: method.to_owned(),
                url: url.to_owned(),
                body: None,
                headers: Vec::new(),
                secret_headers: Vec::new(),
            },
        );
    }
    if actions.is_empty() {
        return None;
    }
    let config = HttpActionExecutorConfig {
        allowed_origins: service.spec.policy.allowed_base_urls.clone(),
        actions,
        ..HttpActionExecutorConfig::default()
    };
    Some(Arc::new(HttpActionExecutor::new(config, http.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::demo_profile;
    use crate::profile::remediation::ActionFile;

    fn action(id: &str, executor: &str, url: &str) -> ActionFile {
        ActionFile {
            id: id.to_owned(),
            executor: executor.to_owned(),
            description: String::new(),
            settings: BTreeMap::from([("url".to_owned(), Value::String(url.to_owned()))]),
        }
    }

    #[test]
    fn http_actions_become_an_executor_limited_to_the_services_own_urls() {
        let mut service = demo_profile("http://127.0.0.1:8001");
        assert!(build_executor(&service, &fixloop_adapters::default_client()).is_none());
        service.actions = vec![
            action(
                "flag-off",
                "http",
                "http://127.0.0.1:8001/admin/flags/payment?enabled=false",
            ),
            action("elsewhere", "http", "http://10.0.0.9/admin"),
            action("restart", "docker-restart", ""),
        ];
        let executor =
            build_executor(&service, &fixloop_adapters::default_client()).expect("built");
        assert_eq!(executor.action_ids(), ["elsewhere", "flag-off"]);
        let request = |id: &str| {
            fixloop_adapters::ActionRequest::new(
                id,
                std::time::Duration::from_secs(1),
                chrono::DateTime::UNIX_EPOCH,
            )
        };
        let described = executor.describe(&request("flag-off")).expect("allowed");
        assert!(
            described.summary.contains("/admin/flags/payment"),
            "{}",
            described.summary
        );
        assert!(
            executor.describe(&request("elsewhere")).is_err(),
            "not the service's origin"
        );
        assert!(
            executor.describe(&request("restart")).is_err(),
            "not wired: refused"
        );
    }
}
