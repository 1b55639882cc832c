//! The validation policy: which base URLs a plan may target, what it must cover, and its size limits.
//!
//! A service embedding the core states its own policy; [`Policy::seed_default`] is the seed contract's.

use fixloop_contract::HttpMethod;

#[cfg(doc)]
use crate::criteria::Criteria;

/// What a plan must look like to be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Base URLs a target may point into (scheme, host and port must match; the target path must be under the base path).
    pub allowed_base_urls: Vec<String>,
    /// Coverage rules; each must be satisfied by at least one item.
    pub coverage: Vec<CoverageRule>,
    /// Longest accepted string field (name, what_it_checks, pass_criteria, url, header value), in bytes.
    pub max_string_len: usize,
    /// Largest accepted `body_json`, in bytes of compact JSON.
    pub max_body_bytes: usize,
    /// Most headers accepted on one target.
    pub max_headers: usize,
}

/// One coverage requirement. Every rule must be satisfied by its own item (two rules cannot share one item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRule {
    /// Human name of the rule, used in violations (`"negative checkout test"`).
    pub name: String,
    /// The path the item must target, relative to the allowed base URL it is under (`"/checkout"`); the query is
    /// ignored.
    pub path: String,
    /// The method it must use, if any.
    pub method: Option<HttpMethod>,
    /// What kind of check it must be.
    pub check: CoverageCheck,
}

/// The kind of check a coverage rule requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageCheck {
    /// Any test of the path.
    Any,
    /// A negative test whose criteria expect a 4xx status (see [`Criteria::expects_client_error`]).
    ExpectsClientError,
    /// A positive test whose criteria expect a 2xx status (see [`Criteria::expects_success`]).
    ExpectsSuccess,
    /// A test that sends an `Authorization` header.
    SendsAuthorization,
}

impl Policy {
    /// The seed's default policy for a service at `base_url`: `/health`, a checkout (`POST /checkout`) expecting a
    /// 2xx, `/catalog`, a negative checkout test expecting a 4xx, and an auth check (`/auth/me` sending
    /// `Authorization`). Each rule must be covered by a different item.
    #[must_use]
    pub fn seed_default(base_url: &str) -> Self {
        let rule = |name: &str, path: &str, method, check| CoverageRule {
            name: name.to_owned(),
            path: path.to_owned(),
            method,
            check,
        };
        Self {
            allowed_base_urls: vec![base_url.to_owned()],
            coverage: vec![
                rule("health check", "/health", None, CoverageCheck::Any),
                rule(
                    "checkout",
                    "/checkout",
                    Some(HttpMethod::Post),
                    CoverageCheck::ExpectsSuccess,
                ),
                rule("catalog", "/catalog", None, CoverageCheck::Any),
                rule(
                    "negative checkout test",
                    "/checkout",
                    Some(HttpMethod::Post),
                    CoverageCheck::ExpectsClientError,
                ),
                rule(
                    "auth check",
                    "/auth/me",
                    None,
                    CoverageCheck::SendsAuthorization,
                ),
            ],
            max_string_len: 2048,
            max_body_bytes: 16 * 1024,
            max_headers: 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_default_allowlists_the_base_and_requires_the_five_seed_rules() {
        let policy = Policy::seed_default("http://127.0.0.1:8081");
        assert_eq!(policy.allowed_base_urls, ["http://127.0.0.1:8081"]);
        let rules: Vec<(&str, CoverageCheck)> = policy
            .coverage
            .iter()
            .map(|rule| (rule.path.as_str(), rule.check))
            .collect();
        assert_eq!(
            rules,
            [
                ("/health", CoverageCheck::Any),
                ("/checkout", CoverageCheck::ExpectsSuccess),
                ("/catalog", CoverageCheck::Any),
                ("/checkout", CoverageCheck::ExpectsClientError),
                ("/auth/me", CoverageCheck::SendsAuthorization),
            ]
        );
    }
}
