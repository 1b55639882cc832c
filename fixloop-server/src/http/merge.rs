//! Whole-system reads on replicas: `GET /api/status`, `/api/incidents/current`, `/api/incidents`, `/api/services`,
//! `/api/remediations` and `/api/remediations/stats` answer for every watched service, whichever replica is asked.
//!
//! The answering replica reads the services it leads itself and asks every other live replica that leads a service
//! (the URLs of the replicas table only; the caller's `Authorization`, or its `access_token` as a bearer token; the
//! hop header [`FORWARDED_HEADER`], so the one asked answers for its own services only and never asks further; at
//! most [`MERGE_TIMEOUT`], all at once) for the same read, then merges the parts with the rules one process uses for
//! several services ([`crate::runtime::services`]): the worst status in profile order, incidents newest first,
//! proposals newest first with ties in profile order, figures in profile order. So the body is the one a single
//! process watching every service would give.
//!
//! A leader that does not answer in time (or answers anything but 200), and a service no replica leads right now
//! (a takeover under way), leave their services out: the answer names them in the [`PARTIAL_HEADER`] response
//! header (comma-separated, profile order) and is otherwise what the others say. When no service at all could be
//! read, 503 `unavailable`. Never a hang, never a 500 for a peer's failure.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fixloop_contract::{
    IncidentCard, IncidentDetail, IncidentPage, RemediationActionStats, RemediationList,
    RemediationProposal, RemediationStats, ServiceState, SystemStatus,
};
use fixloop_core::IncidentId;
use serde::de::DeserializeOwned;

use crate::http::AppState;
use crate::http::error::{ApiError, MAX_ID_CHARS, truncate};
use crate::http::forward::FORWARDED_HEADER;
use crate::runtime::remediation;
use crate::runtime::replicas::Leader;
use crate::runtime::services::{ServiceSet, page_of, worst_of};

/// How long a whole-system read waits for another replica's part.
pub const MERGE_TIMEOUT: Duration = Duration::from_secs(3);

/// The response header naming the services a whole-system read could not include (their leader did not answer in
/// time, or no replica leads them right now).
pub const PARTIAL_HEADER: &str = "x-fixloop-partial";

/// On a hop request of `GET /api/incidents` with `before`: that incident's `detected_at` (RFC 3339), so a replica
/// that does not know the incident can still page from it.
pub const BEFORE_AT_HEADER: &str = "x-fixloop-before-at";

/// The reads that are merged across replicas (a `GET` of one of these paths); they are never forwarded whole.
pub const MERGED_READS: [&str; 6] = [
    "/api/status",
    "/api/incidents/current",
    "/api/incidents",
    "/api/services",
    "/api/remediations",
    "/api/remediations/stats",
];

/// Who a whole-system read asks: the other leaders, with the caller's credentials.
#[derive(Debug)]
pub(in crate::http) struct Peers {
    leaders: Vec<Leader>,
    /// Every watched service, in profile order.
    order: Vec<String>,
    authorization: Option<HeaderValue>,
    /// This replica's id (the hop header's value).
    replica: String,
}

/// What the parts of one read gave: each answer, and the services it could not include.
struct Parts<T> {
    answers: Vec<T>,
    /// The services answered for (led here, or by a leader that answered).
    covered: BTreeSet<String>,
    /// The answers that said 404 (the thing asked about is not known there).
    not_found: usize,
}

/// The peers to merge with: `None` on a server with a journal of its own, on a request that is itself a hop (it
/// answers for this replica's services only), or when the replicas cannot be read (then this replica answers alone).
pub(in crate::http) async fn peers(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<Peers> {
    let directory = state.replicas.as_ref()?;
    if headers.contains_key(FORWARDED_HEADER) {
        return None;
    }
    let leaders = match directory.leaders_elsewhere().await {
        Ok(leaders) => leaders,
        Err(error) => {
            tracing::warn!(%error, "the leaders cannot be read; answering for the services led here");
            Vec::new()
        }
    };
    let authorization = headers.get(header::AUTHORIZATION).cloned().or_else(|| {
        // A caller that could not set a header (a browser's EventSource, a link) sent its token in the query.
        let token = uri.query()?.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name == "access_token").then_some(value)
        })?;
        HeaderValue::from_str(&format!("Bearer {token}")).ok()
    });
    Some(Peers {
        leaders,
        order: directory.services(),
        authorization,
        replica: directory.replica().to_owned(),
    })
}

/// The services of this replica that answer (the ones it leads), `None` when it leads none.
fn led_here(state: &AppState) -> Option<ServiceSet> {
    let live: Vec<_> = state
        .services
        .snapshot()
        .iter()
        .filter(|service| !service.driver.is_stopped())
        .cloned()
        .collect();
    (!live.is_empty()).then(|| ServiceSet::new(live))
}

impl Peers {
    /// Asks every other leader for `path` (with `query` pairs and the extra `headers`), all at once, each within
    /// [`MERGE_TIMEOUT`]; `covered` starts with `here`, the services this replica answered for.
    async fn ask<T: DeserializeOwned>(
        &self,
        state: &AppState,
        path: &str,
        query: &[(&str, String)],
        headers: &[(HeaderName, String)],
        here: &Option<ServiceSet>,
    ) -> Parts<T> {
        let calls = self.leaders.iter().map(|leader| async move {
            let mut call = state
                .http
                .get(format!("{}{path}", leader.url.trim_end_matches('/')))
                .query(query)
                .timeout(MERGE_TIMEOUT)
                .header(FORWARDED_HEADER, &self.replica);
            if let Some(authorization) = &self.authorization {
                call = call.header(header::AUTHORIZATION, authorization.clone());
            }
            for (name, value) in headers {
                call = call.header(name.clone(), value);
            }
            let answer = tokio::time::timeout(MERGE_TIMEOUT, async {
                let response = call.send().await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, bytes))
            })
            .await;
            (leader, answer)
        });
        let mut parts = Parts {
            answers: Vec::new(),
            covered: here
                .iter()
                .flat_map(|set| set.iter().map(|service| service.name.clone()))
                .collect(),
            not_found: 0,
        };
        for (leader, answer) in futures_util::future::join_all(calls).await {
            match answer {
                Ok(Ok((StatusCode::OK, bytes))) => match serde_json::from_slice::<T>(&bytes) {
                    Ok(answer) => {
                        parts.answers.push(answer);
                        parts.covered.extend(leader.leads.iter().cloned());
                    }
                    Err(error) => {
                        tracing::warn!(leader = %leader.replica, %path, %error, "a replica's part is not valid");
                    }
                },
                Ok(Ok((StatusCode::NOT_FOUND, _))) => {
                    parts.not_found += 1;
                    parts.covered.extend(leader.leads.iter().cloned());
                }
                Ok(Ok((status, _))) => {
                    tracing::warn!(leader = %leader.replica, %path, %status, "a replica did not give its part");
                }
                Ok(Err(error)) => {
                    tracing::warn!(leader = %leader.replica, %path, %error, "a replica did not give its part");
                }
                Err(_) => {
                    tracing::warn!(leader = %leader.replica, %path, "a replica did not give its part in time");
                }
            }
        }
        parts
    }

    /// Where `name` comes in profile order (a name the profile does not list comes last).
    fn position(&self, name: &str) -> usize {
        self.order
            .iter()
            .position(|known| known == name)
            .unwrap_or(usize::MAX)
    }

    /// The answer `body`, with [`PARTIAL_HEADER`] naming the watched services not `covered`.
    fn respond<T: serde::Serialize>(&self, covered: &BTreeSet<String>, body: T) -> Response {
        let missing: Vec<&str> = self
            .order
            .iter()
            .filter(|name| !covered.contains(*name))
            .map(String::as_str)
            .collect();
        let mut response = axum::Json(body).into_response();
        if !missing.is_empty()
            && let Ok(value) = HeaderValue::from_str(&missing.join(", "))
        {
            response
                .headers_mut()
                .insert(HeaderName::from_static(PARTIAL_HEADER), value);
        }
        response
    }

    /// Every service's state, in profile order (a service answered twice during a handover: the first answer),
    /// and the services answered for.
    async fn service_states(
        &self,
        state: &AppState,
    ) -> Result<(Vec<ServiceState>, BTreeSet<String>), ApiError> {
        let here = led_here(state);
        let mut states = Vec::new();
        if let Some(set) = &here {
            for service in set.iter() {
                states.push(super::routes::services::service_state(service).await?);
            }
        }
        let parts = self
            .ask::<Vec<ServiceState>>(state, "/api/services", &[], &[], &here)
            .await;
        states.extend(parts.answers.into_iter().flatten());
        let mut seen = BTreeSet::new();
        states.retain(|one| seen.insert(one.name.clone()));
        states.sort_by_key(|one| self.position(&one.name));
        if states.is_empty() {
            return Err(ApiError::NotLedHere(
                "no replica leading a service answered in time: try again",
            ));
        }
        Ok((states, parts.covered))
    }

    /// `GET /api/services` across replicas.
    pub(in crate::http) async fn services(&self, state: &AppState) -> Result<Response, ApiError> {
        let (states, covered) = self.service_states(state).await?;
        Ok(self.respond(&covered, states))
    }

    /// `GET /api/status` across replicas: the worst status, the first in profile order on a tie.
    pub(in crate::http) async fn status(&self, state: &AppState) -> Result<Response, ApiError> {
        let (mut states, covered) = self.service_states(state).await?;
        let worst = worst_of(states.iter().map(|one| one.status.status)).unwrap_or_default();
        let status: SystemStatus = states.swap_remove(worst).status;
        Ok(self.respond(&covered, status))
    }

    /// `GET /api/incidents/current` across replicas: the open incident of the service whose status matters most,
    /// else the first open one in profile order.
    pub(in crate::http) async fn current_incident(
        &self,
        state: &AppState,
    ) -> Result<Response, ApiError> {
        let (states, covered) = self.service_states(state).await?;
        let worst = worst_of(states.iter().map(|one| one.status.status)).unwrap_or_default();
        let card: Option<IncidentCard> = states[worst]
            .current_incident
            .clone()
            .or_else(|| states.iter().find_map(|one| one.current_incident.clone()));
        Ok(self.respond(&covered, card))
    }

    /// `GET /api/incidents` across replicas: each part is a page of `limit` from the same cursor, merged as one
    /// process merges its services' ([`page_of`]).
    pub(in crate::http) async fn incidents(
        &self,
        state: &AppState,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Response, ApiError> {
        let here = led_here(state);
        let before = match before {
            None => None,
            Some(id) => Some(self.incident_key(state, &here, id).await?),
        };
        let mut incidents = Vec::new();
        let mut more = false;
        if let Some(set) = &here {
            let page = set.incidents_before(limit, before.clone()).await?;
            more |= page.next_before.is_some();
            incidents.extend(page.incidents);
        }
        let mut query = vec![("limit", limit.to_string())];
        let mut headers = Vec::new();
        if let Some((at, id)) = &before {
            query.push(("before", id.as_str().to_owned()));
            headers.push((
                HeaderName::from_static(BEFORE_AT_HEADER),
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ));
        }
        let parts = self
            .ask::<IncidentPage>(state, "/api/incidents", &query, &headers, &here)
            .await;
        for page in parts.answers {
            more |= page.next_before.is_some();
            incidents.extend(page.incidents);
        }
        Ok(self.respond(&parts.covered, page_of(incidents, limit, more)))
    }

    /// The `(detected_at, incident_id)` key of the incident `id`, from this replica or the first leader that knows
    /// it; 404 `incident_not_found` when none does.
    async fn incident_key(
        &self,
        state: &AppState,
        here: &Option<ServiceSet>,
        id: &str,
    ) -> Result<(DateTime<Utc>, IncidentId), ApiError> {
        let incident_id = IncidentId::new(id);
        let detail = match here {
            Some(set) => set.incident_history(&incident_id).await?,
            None => None,
        };
        let detail = match detail {
            Some(detail) => Some(detail),
            None => {
                let path = format!("/api/incidents/{}", encode_segment(id));
                self.ask::<IncidentDetail>(state, &path, &[], &[], here)
                    .await
                    .answers
                    .into_iter()
                    .next()
            }
        };
        let detail =
            detail.ok_or_else(|| ApiError::IncidentNotFound(truncate(id, MAX_ID_CHARS)))?;
        Ok((detail.incident.detected_at, incident_id))
    }

    /// `GET /api/remediations` across replicas: the proposals newest first, ties in profile order, then each
    /// engine's order; 404 when `incident_id` is given and no replica knows it.
    pub(in crate::http) async fn remediations(
        &self,
        state: &AppState,
        incident_id: Option<&IncidentId>,
        kill_switch: fixloop_contract::KillSwitchState,
    ) -> Result<Response, ApiError> {
        let here = led_here(state);
        let mut proposals: Vec<RemediationProposal> = Vec::new();
        let mut known_here = false;
        if let Some(set) = &here {
            match remediation::proposals(set, incident_id).await {
                Ok(mine) => {
                    known_here = true;
                    proposals.extend(mine);
                }
                Err(crate::runtime::Error::IncidentNotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        let query: Vec<(&str, String)> = incident_id
            .map(|id| ("incident_id", id.as_str().to_owned()))
            .into_iter()
            .collect();
        let parts = self
            .ask::<RemediationList>(state, "/api/remediations", &query, &[], &here)
            .await;
        let known = known_here || !parts.answers.is_empty();
        if let (Some(id), false) = (incident_id, known) {
            return Err(ApiError::IncidentNotFound(truncate(
                id.as_str(),
                MAX_ID_CHARS,
            )));
        }
        proposals.extend(parts.answers.into_iter().flat_map(|list| list.proposals));
        // Stable sorts: profile order, then newest first; within one service the engine's order stays.
        proposals.sort_by_key(|proposal| self.position(&proposal.service));
        proposals.sort_by_key(|proposal| std::cmp::Reverse(proposal.proposed_at));
        Ok(self.respond(
            &parts.covered,
            RemediationList {
                proposals,
                kill_switch,
            },
        ))
    }

    /// `GET /api/remediations/stats` across replicas: every service's rows, in profile order.
    pub(in crate::http) async fn remediation_stats(
        &self,
        state: &AppState,
    ) -> Result<Response, ApiError> {
        let here = led_here(state);
        let mut actions: Vec<RemediationActionStats> = Vec::new();
        if let Some(set) = &here {
            actions.extend(remediation::stats(set).await?);
        }
        let parts = self
            .ask::<RemediationStats>(state, "/api/remediations/stats", &[], &[], &here)
            .await;
        actions.extend(parts.answers.into_iter().flat_map(|stats| stats.actions));
        actions.sort_by_key(|row| self.position(&row.service));
        Ok(self.respond(&parts.covered, RemediationStats { actions }))
    }
}

/// `id` as one URL path segment (percent-encoded beyond the unreserved characters).
fn encode_segment(id: &str) -> String {
    let mut encoded = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The `before` key a hop request of `GET /api/incidents` carries ([`BEFORE_AT_HEADER`]), when it is one.
pub(in crate::http) fn hop_before_key(
    headers: &HeaderMap,
    before: Option<&str>,
) -> Option<(DateTime<Utc>, IncidentId)> {
    if !headers.contains_key(FORWARDED_HEADER) {
        return None;
    }
    let at = headers.get(BEFORE_AT_HEADER)?.to_str().ok()?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some((at, IncidentId::new(before?)))
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn an_id_is_one_path_segment() {
        assert_eq!(encode_segment("inc-0001"), "inc-0001");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
