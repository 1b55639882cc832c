//! FixLoop's alert webhooks (README "Alert webhooks"; not part of the seed's contract, so `fixloop` profile only):
//! `POST /internal/datadog/webhook` and `POST /internal/alertmanager/webhook`, guarded by the shared secret in
//! `X-FixLoop-Webhook-Secret`. The cases run only when the runner is given the secret (`--webhook-secret`).
//!
//! They never change the server's state: the one accepted delivery is an alert for a service nobody watches,
//! which the server must acknowledge (202) and ignore.

use serde_json::{Value, json};

use super::check::violations_outcome;
use super::context::{Ctx, info};
use crate::case::{CaseInfo, Outcome, Phase, Profile};
use crate::client::Body;
use crate::spec::truncate;

/// The header that carries the secret.
const SECRET_HEADER: &str = "X-FixLoop-Webhook-Secret";

/// A label value no watched service carries.
const NO_SUCH_SERVICE: &str = "fixloop-conformance-no-such-service";

/// One webhook endpoint and the delivery it accepts and ignores.
struct Hook {
    /// `datadog` or `alertmanager`: the case ids' operation part.
    name: &'static str,
    path: &'static str,
    /// What the server answers for an alert that matches no watched service.
    ignored: Value,
}

fn hooks() -> [Hook; 2] {
    [
        Hook {
            name: "datadog",
            path: "/internal/datadog/webhook",
            ignored: json!({"accepted": false}),
        },
        Hook {
            name: "alertmanager",
            path: "/internal/alertmanager/webhook",
            ignored: json!({"accepted": 0}),
        },
    ]
}

/// A well-formed delivery of an alert for [`NO_SUCH_SERVICE`].
fn unmatched_alert(hook: &str) -> Value {
    match hook {
        "datadog" => json!({
            "id": "fixloop-conformance-probe",
            "event_type": "query_alert_monitor",
            "title": "[Triggered] fixloop-conformance probe",
            "alert_id": "fixloop-conformance-probe",
            "alert_transition": "Triggered",
            "alert_type": "error",
            "alert_title": "fixloop-conformance probe",
            "alert_scope": format!("service:{NO_SUCH_SERVICE}"),
            "aggreg_key": "fixloop-conformance-probe",
        }),
        _ => json!({
            "version": "4",
            "groupKey": "fixloop-conformance-probe",
            "status": "firing",
            "receiver": "fixloop",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "FixloopConformanceProbe", "service": NO_SUCH_SERVICE},
                "annotations": {"summary": "fixloop-conformance probe"},
                "fingerprint": "fixloop-conformance-probe",
            }],
        }),
    }
}

/// The catalog entries.
pub(super) fn cases() -> Vec<CaseInfo> {
    let mut cases = Vec::new();
    for hook in hooks() {
        let clause = format!(
            "README \"Alert webhooks\" (a FixLoop addition); POST {}; #/components/schemas/ErrorBody",
            hook.path
        );
        let descriptions = [
            format!(
                "POST {} without the secret answers 401 with an ErrorBody",
                hook.path
            ),
            format!(
                "POST {} with a wrong secret answers 401 with an ErrorBody",
                hook.path
            ),
            format!(
                "POST {} with the secret and a body that is not JSON answers 400 with an ErrorBody",
                hook.path
            ),
            format!(
                "POST {} with the secret and an alert for a service nobody watches answers 202 {}",
                hook.path, hook.ignored
            ),
        ];
        for (n, description) in descriptions.iter().enumerate() {
            let mut case = info(
                Profile::Fixloop,
                &format!("webhook/{}/{}", hook.name, n + 1),
                description,
                &clause,
                Phase::Webhook,
            );
            case.needs_webhook_secret = true;
            cases.push(case);
        }
    }
    cases
}

/// Sends the deliveries and judges the answers.
pub(super) async fn run(ctx: &mut Ctx<'_>) {
    let Some(secret) = ctx.target.webhook_secret.clone() else {
        return;
    };
    let secret = secret.expose().to_owned();
    for hook in hooks() {
        let id = |n: usize| format!("webhook/{}/{n}", hook.name);
        let with_secret = |value: &str| vec![(SECRET_HEADER.to_owned(), value.to_owned())];
        let alert = Body::Json(unmatched_alert(hook.name));
        let attempts = [
            (Vec::new(), alert.clone(), 401),
            (with_secret(&format!("{secret}-wrong")), alert.clone(), 401),
            (
                with_secret(&secret),
                Body::Raw {
                    content_type: "application/json",
                    bytes: b"{\"not json".to_vec(),
                },
                400,
            ),
        ];
        for (n, (headers, body, status)) in attempts.into_iter().enumerate() {
            if !ctx.wants(&id(n + 1)) {
                continue;
            }
            let outcome = error_outcome(ctx, hook.path, &headers, body, status).await;
            ctx.record(&id(n + 1), outcome);
        }
        if ctx.wants(&id(4)) {
            let outcome = match ctx
                .http()
                .send_to(
                    "POST",
                    &format!("{}{}", ctx.target.base_url, hook.path),
                    &with_secret(&secret),
                    alert,
                )
                .await
            {
                Err(error) => {
                    Outcome::fail("status 202", format!("no response: {error}"), "status")
                }
                Ok(reply) if reply.status != 202 => Outcome::fail(
                    "status 202",
                    format!(
                        "status {} with body {}",
                        reply.status,
                        truncate(&reply.text, 300)
                    ),
                    "status",
                ),
                Ok(reply) => match reply.json {
                    Ok(body) if body == hook.ignored => Outcome::Pass,
                    Ok(body) => Outcome::fail(
                        format!("{} (the alert matches no watched service)", hook.ignored),
                        crate::spec::short_json(&body),
                        "",
                    ),
                    Err(error) => Outcome::fail(
                        "a JSON body",
                        format!("{error}: {}", truncate(&reply.text, 200)),
                        "",
                    ),
                },
            };
            ctx.record(&id(4), outcome);
        }
    }
}

/// Sends one delivery that must be refused with `status` and an `ErrorBody`.
async fn error_outcome(
    ctx: &Ctx<'_>,
    path: &str,
    headers: &[(String, String)],
    body: Body,
    status: u16,
) -> Outcome {
    let url = format!("{}{path}", ctx.target.base_url);
    let reply = match ctx.http().send_to("POST", &url, headers, body).await {
        Ok(reply) => reply,
        Err(error) => {
            return Outcome::fail(
                format!("status {status} with an ErrorBody"),
                format!("no response: {error}"),
                "status",
            );
        }
    };
    if reply.status != status {
        return Outcome::fail(
            format!("status {status} with an ErrorBody"),
            format!(
                "status {} with body {}",
                reply.status,
                truncate(&reply.text, 300)
            ),
            "status",
        );
    }
    let json = match &reply.json {
        Ok(json) => json,
        Err(error) => {
            return Outcome::fail(
                "an ErrorBody JSON document",
                format!("{error}: {}", truncate(&reply.text, 200)),
                "",
            );
        }
    };
    violations_outcome(
        &ctx.spec.check_component("ErrorBody", json),
        "#/components/schemas/ErrorBody",
    )
    .map_or_else(|outcome| outcome, |()| Outcome::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_webhook_case_needs_the_secret_and_belongs_to_fixloop() {
        let cases = cases();
        assert_eq!(cases.len(), 8);
        assert!(
            cases
                .iter()
                .all(|case| case.needs_webhook_secret && case.profile == Profile::Fixloop)
        );
        assert_eq!(cases[0].id, "webhook/datadog/1");
        assert_eq!(cases[7].id, "webhook/alertmanager/4");
    }
}
