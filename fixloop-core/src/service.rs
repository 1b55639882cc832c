//! What the core knows about a watched service: plain data, parsed elsewhere (a service profile) and handed in.
//!
//! The core knows no particular service. A [`ServiceSpec`] says what a service is called, where its tests may go
//! (its [`Policy`]: allowlisted base URLs and coverage rules), and which [`Journey`]s are worth testing when it
//! breaks. The rule planner ([`crate::rule_plan`]) picks five of those journeys for every incident; an LLM planner
//! gets them as context and its plan is validated against the same policy.
//!
//! # Secrets
//!
//! Header values and string values of a journey's body may reference a secret as `${env:NAME}`. The placeholder
//! stays in the journey, in the plan, on the wire and in every prompt; only the test runner substitutes the value
//! at send time. The names a plan may reference are [`Policy::secrets`]; the validator rejects any other.

use std::collections::BTreeMap;

use fixloop_contract::{HttpMethod, JsonObject, PlanItemType};

use crate::policy::Policy;

/// One watched service, as the engine and the planners see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The service's name (`"orders"`); unique within a process, used in titles and logs.
    pub name: String,
    /// What the service does, in a sentence or two, for planners and the copilot.
    pub description: String,
    /// Base URL of the service under test, without a trailing slash; journeys' paths are appended to it.
    pub base_url: String,
    /// What a plan may target and must cover.
    pub policy: Policy,
    /// The candidate tests, at least [`PLAN_ITEMS`](crate::validate::PLAN_ITEMS) of them.
    pub journeys: Vec<Journey>,
}

/// A candidate test of a service: one HTTP request and its pass criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    /// Unique id, used as the plan item's `test_id` (`A-Z a-z 0-9 . _ -`, at most 64 bytes).
    pub id: String,
    /// One-line human name (the plan item's `name`).
    pub name: String,
    /// What kind of test it is.
    pub kind: PlanItemType,
    /// HTTP method.
    pub method: HttpMethod,
    /// Path and optional query, relative to the service's base URL, starting with `/` (`"/orders?limit=1"`).
    pub path: String,
    /// Request headers; values may reference secrets as `${env:NAME}`.
    pub headers: BTreeMap<String, String>,
    /// JSON body (empty for none); string values may reference secrets as `${env:NAME}`.
    pub body: JsonObject,
    /// Pass criteria in the criteria language ([`crate::criteria`]).
    pub pass_criteria: String,
    /// Priority hint: lower runs first among equally relevant journeys.
    pub priority: u32,
    /// What the test proves, in a sentence.
    pub what_it_checks: String,
    /// The route this journey exercises (`"/orders"`), matched against the incident's top error; `None` uses
    /// the path without its query.
    pub route: Option<String>,
}

impl ServiceSpec {
    /// A service called `name` at `base_url` with no journey yet: its policy allows `base_url` (a trailing slash
    /// is dropped) and has no coverage rule. Add journeys (at least five) before it can be planned for.
    #[must_use]
    pub fn new(name: &str, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            name: name.to_owned(),
            description: String::new(),
            policy: Policy::new(vec![base_url.clone()]),
            base_url,
            journeys: Vec::new(),
        }
    }
}

impl Journey {
    /// The route tag matched against the top error: [`Journey::route`], else the path without its query.
    #[must_use]
    pub fn route_tag(&self) -> &str {
        self.route
            .as_deref()
            .unwrap_or_else(|| self.path.split('?').next().unwrap_or(&self.path))
    }

    /// Whether `top_error` (for example `"POST /orders -> 500 upstream timeout"`) names this journey's
    /// route as a whole path: `/orders` matches `POST /orders -> 500`, `POST /orders/ -> 500` (a trailing slash)
    /// and `/orders?x=1`, not `/orderss` or `/orders/v2`.
    ///
    /// A service whose base URL has a path (`http://host/api`) reports its routes with that prefix in its own
    /// metrics (`GET /api/orders -> 500`) while its journeys' paths are relative to the base URL (`/orders`): use
    /// [`Journey::matches_error_under`] with the base URL for those.
    #[must_use]
    pub fn matches_error(&self, top_error: &str) -> bool {
        self.matches_error_under(top_error, "")
    }

    /// [`Journey::matches_error`] for a service at `base_url`: the route matches as written and also behind the
    /// base URL's path (`/api` of `http://host/api/`), so `GET /api/orders -> 500` names the journey `/orders`.
    #[must_use]
    pub fn matches_error_under(&self, top_error: &str, base_url: &str) -> bool {
        let tag = self.route_tag().trim_end_matches('/');
        if tag.is_empty() {
            return false;
        }
        let base_path = base_path(base_url);
        let prefixed = format!("{base_path}{tag}");
        let mut candidates = vec![tag];
        if !base_path.is_empty() {
            candidates.push(&prefixed);
        }
        candidates
            .into_iter()
            .any(|route| names_whole_path(top_error, route))
    }
}

/// Whether `text` contains `route` as a whole path: not inside a longer segment, not followed by more segments
/// (one trailing slash is the same route).
fn names_whole_path(text: &str, route: &str) -> bool {
    text.match_indices(route).any(|(start, _)| {
        let before = text[..start].chars().next_back();
        let mut after = text[start + route.len()..].chars();
        let starts_clean = before.is_none_or(|c| !is_path_char(c) && c != '/');
        let ends_clean = match after.next() {
            None => true,
            // A trailing slash ends the route only when nothing of a path follows it (a template `{id}` or `:id`
            // is one more segment).
            Some('/') => after.next().is_none_or(|c| {
                c.is_whitespace() || matches!(c, '?' | '#' | '"' | '\'' | ')' | ']' | ',' | ';')
            }),
            Some(c) => !is_path_char(c),
        };
        starts_clean && ends_clean
    })
}

/// The path of a base URL without its trailing slash (`/api` of `http://host:8080/api/`); empty when it has none
/// or is not an absolute URL.
fn base_path(base_url: &str) -> &str {
    let Some((_, rest)) = base_url.split_once("://") else {
        return "";
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    rest.find('/')
        .map_or("", |slash| rest[slash..].trim_end_matches('/'))
}

/// Characters that continue a path segment, so a match ending or starting next to one is only part of a path.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%')
}

/// The secret names referenced as `${env:NAME}` in `text`, in order (a name is `[A-Z_][A-Z0-9_]*`, as environment
/// variables are written); anything else after `${env:` is not a reference and stays literal text.
pub fn secret_references(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("${env:").filter_map(|(start, marker)| {
        let rest = &text[start + marker.len()..];
        let end = rest.find('}')?;
        let name = &rest[..end];
        is_secret_name(name).then_some(name)
    })
}

/// Every string value inside a JSON body, at any depth, in document order (where secret references may appear).
#[must_use]
pub fn body_strings(body: &JsonObject) -> Vec<&str> {
    use fixloop_contract::serde_json::Value;

    fn walk<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::String(text) => out.push(text),
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            Value::Object(map) => map.values().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    body.values().for_each(|value| walk(value, &mut out));
    out
}

/// Whether `name` is a valid secret name: `[A-Z_][A-Z0-9_]*`.
#[must_use]
pub fn is_secret_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journey(path: &str, route: Option<&str>) -> Journey {
        Journey {
            id: "j".to_owned(),
            name: "j".to_owned(),
            kind: PlanItemType::Api,
            method: HttpMethod::Get,
            path: path.to_owned(),
            headers: BTreeMap::new(),
            body: JsonObject::new(),
            pass_criteria: "status == 200".to_owned(),
            priority: 1,
            what_it_checks: "j".to_owned(),
            route: route.map(str::to_owned),
        }
    }

    #[test]
    fn a_route_matches_the_top_error_only_as_a_whole_path() {
        let orders = journey("/orders?dry=1", None);
        assert!(orders.matches_error("POST /orders -> 500 upstream timeout"));
        assert!(orders.matches_error("/orders"));
        assert!(!orders.matches_error("POST /orderss -> 500"));
        assert!(!orders.matches_error("POST /orders/v2 -> 500"));
        assert!(!orders.matches_error("POST /api/orders-beta -> 500"));
        let tagged = journey("/orders/42", Some("/orders/{id}"));
        assert!(tagged.matches_error("GET /orders/{id} -> 503"));
        assert!(!journey("/", None).matches_error("GET / -> 500"));
        assert!(orders.matches_error("POST /orders/ -> 500 upstream timeout"));
        assert!(!orders.matches_error("POST /orders// -> 500"));
        assert!(!orders.matches_error("GET /orders/{id} -> 500"));
        assert!(!orders.matches_error("GET /orders/:id -> 500"));
        assert!(orders.matches_error("GET /orders/?page=2 -> 500"));
    }

    #[test]
    fn top_error_routes_match_behind_the_base_url_path() {
        let orders = journey("/orders", None);
        let base = "http://shop.internal:8080/api/";
        assert!(orders.matches_error_under("POST /api/orders -> 500 upstream timeout", base));
        assert!(orders.matches_error_under("POST /api/orders/ -> 500", base));
        assert!(orders.matches_error_under("POST /orders -> 500", base));
        assert!(!orders.matches_error_under("POST /api/orders/v2 -> 500", base));
        assert!(!orders.matches_error_under("POST /v1/api/orders -> 500", base));
        assert!(!orders.matches_error_under("POST /apiorders -> 500", base));
        assert!(!orders.matches_error("POST /api/orders -> 500"));
        let templated = journey("/orders/1", Some("/orders/{id}"));
        assert!(templated.matches_error_under("GET /v1/orders/{id} -> 503", "https://h/v1?x=1"));
        assert_eq!(base_path("http://h"), "");
        assert_eq!(base_path("http://h/"), "");
        assert_eq!(base_path("http://h:1/a/b/?q=/x"), "/a/b");
        assert_eq!(base_path("not a url"), "");
    }

    #[test]
    fn secret_references_are_listed_in_order() {
        let names: Vec<&str> = secret_references(
            "Bearer ${env:SHOP_TOKEN} ${env:bad-name} ${env:lower} ${env:_X1}${env:",
        )
        .collect();
        assert_eq!(names, ["SHOP_TOKEN", "_X1"]);
    }
}
