//! Every refusal and upstream failure, rendered in one place: status, the OneLogin-shaped
//! JSON body, `WWW-Authenticate` (RFC 6750 §3), `Allow`, and gRPC-style answers for gRPC
//! clients.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use serde::Serialize;

use crate::decide::Reason;

/// The body type of every response the gateway sends: streamed from the upstream or
/// generated here.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// The header carrying the request id both ways.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// What a refusal says beyond its reason.
#[derive(Debug, Default)]
pub struct Refusal<'a> {
    pub required: &'a [&'a str],
    pub missing: &'a [&'a str],
    /// The `Allow` header of a 405.
    pub allow: Option<&'a HeaderValue>,
    /// A human detail (which path rule a 400 broke); never user secrets.
    pub detail: Option<&'a str>,
    /// A token or key was sent, so 401 says `error="invalid_token"`.
    pub credentials_sent: bool,
    /// The client speaks gRPC and gets `grpc-status` instead of a JSON body.
    pub grpc: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Json<'a> {
    message: String,
    status_code: u16,
    name: &'static str,
    reason: &'static str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    required_scopes: &'a [&'a str],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    missing_scopes: &'a [&'a str],
    request_id: &'a str,
}

/// A body from bytes we made ourselves.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// True when the request is a gRPC call (denials must then be gRPC-shaped).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Renders a refusal for `reason`, tagged with the request id.
pub fn refusal(reason: Reason, request_id: &HeaderValue, r: &Refusal<'_>) -> Response<Body> {
    let status = reason.status();
    let message = message(reason, r);
    if r.grpc {
        return grpc(reason, &message, request_id);
    }
    let json = Json {
        message,
        status_code: status,
        name: name(status),
        reason: reason.as_str(),
        required_scopes: r.required,
        missing_scopes: r.missing,
        request_id: request_id.to_str().unwrap_or(""),
    };
    let body = serde_json::to_vec(&json).unwrap_or_default();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(REQUEST_ID, request_id.clone());
    if let Some(allow) = r.allow {
        h.insert(ALLOW, allow.clone());
    }
    if let Some(challenge) = challenge(reason, r) {
        h.insert(WWW_AUTHENTICATE, challenge);
    }
    resp
}

fn message(reason: Reason, r: &Refusal<'_>) -> String {
    let detail = r.detail.unwrap_or("");
    match reason {
        Reason::BadRequest => format!("Bad request: {detail}"),
        Reason::NoMatchingRoute => "No route matches this request".into(),
        Reason::MethodNotAllowed => format!(
            "Method not allowed here (allowed: {})",
            r.allow.and_then(|a| a.to_str().ok()).unwrap_or("")
        ),
        Reason::MissingCredentials => "Missing credentials".into(),
        Reason::InvalidToken => "Invalid credentials".into(),
        Reason::ExpiredToken => "Token expired or not yet valid".into(),
        Reason::RoleNotPermitted => "Role not permitted on this route".into(),
        Reason::InsufficientScope => format!("Missing required scope: {}", r.missing.join(" ")),
        Reason::ConstraintFailed => "Not permitted on this resource".into(),
        Reason::UpstreamUnavailable => "Upstream unavailable".into(),
        Reason::UpstreamTimeout => "Upstream did not answer in time".into(),
    }
}

fn name(status: u16) -> &'static str {
    match status {
        400 => "BadRequestError",
        401 => "UnauthorizedError",
        403 => "ForbiddenError",
        405 => "MethodNotAllowedError",
        502 => "BadGatewayError",
        504 => "GatewayTimeoutError",
        _ => "Error",
    }
}

fn challenge(reason: Reason, r: &Refusal<'_>) -> Option<HeaderValue> {
    let value = match reason {
        Reason::MissingCredentials if !r.credentials_sent => {
            r#"Bearer realm="scopegate""#.to_string()
        }
        Reason::MissingCredentials | Reason::InvalidToken | Reason::ExpiredToken => {
            r#"Bearer realm="scopegate", error="invalid_token""#.to_string()
        }
        Reason::InsufficientScope => format!(
            r#"Bearer realm="scopegate", error="insufficient_scope", scope="{}""#,
            r.required.join(" ")
        ),
        _ => return None,
    };
    HeaderValue::from_str(&value).ok()
}

/// gRPC clients read `grpc-status` from a trailers-only response with HTTP 200.
fn grpc(reason: Reason, message: &str, request_id: &HeaderValue) -> Response<Body> {
    let code = match reason.status() {
        400 => "3",
        401 => "16",
        403 => "7",
        405 => "12",
        502 => "14",
        504 => "4",
        _ => "2",
    };
    let mut resp = Response::new(full(Bytes::new()));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert("grpc-status", HeaderValue::from_static(code));
    let encoded =
        percent_encoding::utf8_percent_encode(message, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        h.insert("grpc-message", v);
    }
    h.insert(REQUEST_ID, request_id.clone());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(resp: Response<Body>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn insufficient_scope_follows_the_onelogin_shape_and_rfc6750() {
        let id = HeaderValue::from_static("req-1");
        let r = Refusal {
            required: &["orders:delete"],
            missing: &["orders:delete"],
            ..Default::default()
        };
        let resp = refusal(Reason::InsufficientScope, &id, &r);
        assert_eq!(resp.status(), 403);
        assert_eq!(
            resp.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="scopegate", error="insufficient_scope", scope="orders:delete""#
        );
        assert_eq!(resp.headers()[REQUEST_ID], "req-1");
        let v = body_json(resp).await;
        assert_eq!(v["message"], "Missing required scope: orders:delete");
        assert_eq!(v["statusCode"], 403);
        assert_eq!(v["name"], "ForbiddenError");
        assert_eq!(v["reason"], "insufficient_scope");
        assert_eq!(v["requiredScopes"][0], "orders:delete");
        assert_eq!(v["missingScopes"][0], "orders:delete");
        assert_eq!(v["requestId"], "req-1");
    }

    #[tokio::test]
    async fn unauthorized_says_invalid_token_only_when_one_was_sent() {
        let id = HeaderValue::from_static("r");
        let none = refusal(Reason::MissingCredentials, &id, &Refusal::default());
        assert_eq!(
            none.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="scopegate""#
        );
        let sent = Refusal {
            credentials_sent: true,
            ..Default::default()
        };
        let bad = refusal(Reason::InvalidToken, &id, &sent);
        assert_eq!(bad.status(), 401);
        assert_eq!(
            bad.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="scopegate", error="invalid_token""#
        );
        assert_eq!(body_json(bad).await["name"], "UnauthorizedError");
    }

    #[test]
    fn grpc_clients_get_grpc_status() {
        let id = HeaderValue::from_static("r");
        let r = Refusal {
            grpc: true,
            ..Default::default()
        };
        for (reason, code) in [
            (Reason::BadRequest, "3"),
            (Reason::MissingCredentials, "16"),
            (Reason::RoleNotPermitted, "7"),
            (Reason::MethodNotAllowed, "12"),
            (Reason::UpstreamUnavailable, "14"),
            (Reason::UpstreamTimeout, "4"),
        ] {
            let resp = refusal(reason, &id, &r);
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["grpc-status"], code, "{reason:?}");
            assert!(resp.headers().contains_key("grpc-message"));
        }
    }
}
