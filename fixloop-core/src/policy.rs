//! The validation policy: which base URLs a plan may target, what it must cover, and its size limits.
//!
//! A service embedding the core states its own policy, usually as part of its
//! [`ServiceSpec`](crate::service::ServiceSpec); a service profile is where the server gets it from.

use std::collections::BTreeMap;

use fixloop_contract::HttpMethod;

use crate::criteria::Criteria;

/// What a plan must look like to be accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Base URLs a target may point into (scheme, host and port must match; the target path must be under the base path).
    pub allowed_base_urls: Vec<String>,
    /// Coverage rules; each must be satisfied by at least one item.
    pub coverage: Vec<CoverageRule>,
    /// Names of the secrets a plan may reference as `${env:NAME}` in header values and body strings.
    pub secrets: Vec<String>,
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
    /// Human name of the rule, used in violations (`"negative order test"`).
    pub name: String,
    /// The path the item must target, relative to the allowed base URL it is under (`"/orders"`); the query is
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
    /// A policy allowing tests under `allowed_base_urls`, with no coverage rule, no secret and the default limits
    /// (strings of 2 KiB, bodies of 16 KiB, 32 headers).
    #[must_use]
    pub fn new(allowed_base_urls: Vec<String>) -> Self {
        Self {
            allowed_base_urls,
            coverage: Vec::new(),
            secrets: Vec::new(),
            max_string_len: 2048,
            max_body_bytes: 16 * 1024,
            max_headers: 32,
        }
    }
}

impl CoverageRule {
    /// Whether one test satisfies this rule on its own: it targets `relative_path` (relative to the allowed base
    /// URL it is under; the query is ignored, and so is a trailing slash), with `method`, and its check holds.
    #[must_use]
    pub fn is_met_by(
        &self,
        method: HttpMethod,
        relative_path: &str,
        headers: &BTreeMap<String, String>,
        criteria: Option<&Criteria>,
    ) -> bool {
        let path = relative_path.split('?').next().unwrap_or(relative_path);
        if trim_slash(path) != trim_slash(&self.path) {
            return false;
        }
        if self.method.is_some_and(|required| required != method) {
            return false;
        }
        match self.check {
            CoverageCheck::Any => true,
            CoverageCheck::ExpectsClientError => {
                criteria.is_some_and(Criteria::expects_client_error)
            }
            CoverageCheck::ExpectsSuccess => criteria.is_some_and(Criteria::expects_success),
            CoverageCheck::SendsAuthorization => headers.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("authorization") && !value.trim().is_empty()
            }),
        }
    }

    /// The rule as a requirement in words, relative to the allowed base URL: `a POST request to /orders whose
    /// pass_criteria only pass on a 4xx status (for example `status in [400, 422]`)`.
    #[must_use]
    pub fn requirement(&self) -> String {
        let method = self
            .method
            .map_or_else(|| "a".to_owned(), |method| format!("a {}", method.as_str()));
        let check = match self.check {
            CoverageCheck::Any => "",
            CoverageCheck::ExpectsClientError => {
                " whose pass_criteria only pass on a 4xx status (for example `status in [400, 422]`)"
            }
            CoverageCheck::ExpectsSuccess => {
                " whose pass_criteria only pass on a 2xx status (for example `status == 200 && ...`)"
            }
            CoverageCheck::SendsAuthorization => " that sends an `Authorization` header",
        };
        format!("{method} request to {}{check}", self.path)
    }
}

fn trim_slash(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str, method: Option<HttpMethod>, check: CoverageCheck) -> CoverageRule {
        CoverageRule {
            name: "rule".to_owned(),
            path: path.to_owned(),
            method,
            check,
        }
    }

    #[test]
    fn a_rule_is_met_by_its_path_method_and_check() {
        let ok = Criteria::parse("status == 200").ok();
        let client_error = Criteria::parse("status in [400, 422]").ok();
        let none = BTreeMap::new();
        let auth = BTreeMap::from([("Authorization".to_owned(), "Bearer x".to_owned())]);
        let post = Some(HttpMethod::Post);
        assert!(rule("/orders", None, CoverageCheck::Any).is_met_by(
            HttpMethod::Get,
            "/orders/?a=1",
            &none,
            None
        ));
        assert!(!rule("/orders", post, CoverageCheck::Any).is_met_by(
            HttpMethod::Get,
            "/orders",
            &none,
            None
        ));
        assert!(
            rule("/orders", post, CoverageCheck::ExpectsSuccess).is_met_by(
                HttpMethod::Post,
                "/orders",
                &none,
                ok.as_ref()
            )
        );
        assert!(
            !rule("/orders", post, CoverageCheck::ExpectsSuccess).is_met_by(
                HttpMethod::Post,
                "/orders",
                &none,
                client_error.as_ref()
            )
        );
        assert!(
            rule("/orders", None, CoverageCheck::ExpectsClientError).is_met_by(
                HttpMethod::Post,
                "/orders",
                &none,
                client_error.as_ref()
            )
        );
        assert!(
            rule("/me", None, CoverageCheck::SendsAuthorization).is_met_by(
                HttpMethod::Get,
                "/me",
                &auth,
                None
            )
        );
        assert!(
            !rule("/me", None, CoverageCheck::SendsAuthorization).is_met_by(
                HttpMethod::Get,
                "/me",
                &none,
                None
            )
        );
        assert!(rule("/", None, CoverageCheck::Any).is_met_by(HttpMethod::Get, "/", &none, None));
    }
}
