//! The validation policy: which base URLs a plan may target and what it must cover (SKELETON).

use fixloop_contract::HttpMethod;

/// What a plan must look like to be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Base URLs a target may point into (scheme, host and port must match; the target path must be under the base path).
    pub allowed_base_urls: Vec<String>,
    /// Coverage rules; each must be satisfied by at least one item.
    pub coverage: Vec<CoverageRule>,
    /// Longest accepted string field (name, what_it_checks, pass_criteria, header value), in bytes.
    pub max_string_len: usize,
}

/// One coverage requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRule {
    /// Human name of the rule, used in violations (`"negative checkout test"`).
    pub name: String,
    /// The path the item must target (`"/checkout"`).
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
    /// A negative test whose criteria expect a 4xx status.
    ExpectsClientError,
    /// A test that sends an `Authorization` header.
    SendsAuthorization,
}

impl Policy {
    /// The seed's default policy for a service at `base_url`: `/health`, `/checkout`, `/catalog`, a negative
    /// checkout test expecting a 4xx, and an auth check.
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
                    CoverageCheck::Any,
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
        }
    }
}
