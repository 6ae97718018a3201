//! The `/v1/*` JSON API: the live policy's status, its scope catalog, its roles, and
//! `explain` (the same code as `scopegate explain`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::{error, json};
use crate::auth::{AuthFailure, Authenticator, Principal};
use crate::normalize::NormalizeOptions;
use crate::policy::{LivePolicy, Mode, Policy, Role};
use crate::tooling::explain;

/// The largest `POST /v1/explain` body read (a token plus a few claims fit easily).
const MAX_EXPLAIN_BODY: usize = 64 * 1024;

/// `GET /v1/policy`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyJson {
    version: String,
    loaded_at: String,
    routes: usize,
    mode: &'static str,
    last_error: Option<String>,
}

pub fn policy(live: &LivePolicy) -> PolicyJson {
    let s = live.status();
    PolicyJson {
        version: s.version.clone(),
        loaded_at: rfc3339(s.loaded_at),
        routes: s.routes,
        mode: match s.mode {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        },
        last_error: s.last_error.clone(),
    }
}

/// One entry of `GET /v1/scopes`.
#[derive(Serialize)]
pub struct ScopeJson<'a> {
    name: &'a str,
    description: &'a str,
}

/// The catalog, sorted by name; without a catalog, the scopes the policy names.
pub fn scopes(policy: &Policy) -> Vec<ScopeJson<'_>> {
    match policy.catalog() {
        Some(catalog) => catalog
            .iter()
            .map(|(name, description)| ScopeJson { name, description })
            .collect(),
        None => policy
            .known_scopes()
            .iter()
            .map(|name| ScopeJson {
                name,
                description: "",
            })
            .collect(),
    }
}

/// A role as `/v1/roles` shows it: `scopes` are its effective rights.
#[derive(Serialize)]
pub struct RoleJson<'a> {
    name: &'a str,
    inherits: &'a [Box<str>],
    scopes: Vec<String>,
    deny: &'a [Box<str>],
    attributes: &'a BTreeMap<String, Vec<String>>,
}

fn role_json<'a>(policy: &'a Policy, role: &'a Role) -> RoleJson<'a> {
    RoleJson {
        name: &role.name,
        inherits: &role.inherits,
        scopes: policy.role_scopes(role),
        deny: &role.deny,
        attributes: &role.attributes,
    }
}

/// `GET /v1/roles`: every role, in name order.
pub fn roles(policy: &Policy) -> Vec<RoleJson<'_>> {
    policy
        .roles()
        .iter()
        .map(|r| role_json(policy, r))
        .collect()
}

/// `GET /v1/roles/{name}`; 404 for a role the policy does not define.
pub fn role(policy: &Policy, raw_name: &str) -> Response<Full<Bytes>> {
    let name = percent_encoding::percent_decode_str(raw_name).decode_utf8_lossy();
    match policy.role(&name) {
        Some(role) => json(StatusCode::OK, &role_json(policy, role)),
        None => error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            &format!("Unknown role: {name}"),
        ),
    }
}

/// The body of `POST /v1/explain`: a token, or a principal spelled out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainRequest {
    method: String,
    path: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    claims: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `POST /v1/explain`: the decision and its trace, from `tooling::explain`.
pub async fn explain(
    req: Request<Incoming>,
    policy: &Policy,
    auth: &Authenticator,
    opts: NormalizeOptions,
) -> Response<Full<Bytes>> {
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "BadRequestError", m);
    let body = match Limited::new(req.into_body(), MAX_EXPLAIN_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return bad("Request body unreadable or larger than 64 KiB"),
    };
    let r: ExplainRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        // serde_json's message names the field and position, never echoes a value.
        Err(e) => return bad(&format!("Invalid explain request: {e}")),
    };
    let Ok(method) = Method::from_bytes(r.method.to_ascii_uppercase().as_bytes()) else {
        return bad("`method` is not an HTTP method");
    };
    let spelled_out = r.roles.is_some() || r.scopes.is_some() || r.claims.is_some();
    let caller: Option<Result<Principal, AuthFailure>> = match r.token {
        Some(_) if spelled_out => {
            return bad("Give either `token` or `roles`/`scopes`/`claims`, not both");
        }
        Some(token) => Some(
            auth.verify_jwt(&token)
                .await
                .map(std::sync::Arc::unwrap_or_clone),
        ),
        None if !spelled_out => None,
        None => {
            let claims = r.claims.unwrap_or_default();
            Some(Ok(Principal {
                subject: claims.get("sub").and_then(|s| s.as_str()).map(String::from),
                roles: r.roles.unwrap_or_default(),
                scopes: r.scopes,
                claims,
            }))
        }
    };
    json(
        StatusCode::OK,
        &explain::explain(policy, &method, &r.path, caller, opts),
    )
}

/// `2026-01-02T03:04:05Z` (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723); // 2000-02-29 01:02:03
        assert_eq!(rfc3339(t), "2000-02-29T01:02:03Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599); // last second of 2025
        assert_eq!(rfc3339(t), "2025-12-31T23:59:59Z");
    }
}
