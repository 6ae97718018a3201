//! Header hygiene between client and upstream: hop-by-hop headers, spoofed identity,
//! method overrides, `X-Forwarded-*` and the request id.

use std::net::IpAddr;

use http::header::{
    CONNECTION, HOST, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::IdentityNames;
use crate::respond::REQUEST_ID;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1). Typed
/// names, so removing them does not parse a string on every request.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHORIZATION,
];

/// Headers some frameworks read to change the method after we decided on it.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-method-override",
    "x-http-method",
];

/// Headers some frameworks and proxies read as the request's "real" target (Symfony and
/// IIS `X-Original-URL`/`X-Rewrite-URL`, nginx `auth_request` setups and oauth2-proxy
/// `X-Forwarded-Uri`, Envoy `X-Envoy-Original-Path`). The gateway decided on the request
/// line's path and forwards exactly that path, so a client-sent copy could only make the
/// upstream route somewhere the decision never looked: always removed, trusted peer or not.
const TARGET_OVERRIDES: [&str; 6] = [
    "x-original-url",
    "x-rewrite-url",
    "x-original-uri",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-envoy-original-path",
];

/// The `X-Forwarded-*` headers this module sets: their `_` spellings are never ours, and
/// CGI-style servers (`HTTP_X_FORWARDED_FOR`) would read them as the real thing.
const FORWARDED_SET: [&str; 3] = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"];

/// The request's id: the client's when it is sane, else a new random one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(v) = headers.get(REQUEST_ID)
        && !v.is_empty()
        && v.len() <= 128
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    let id: [u8; 16] = rand::random();
    let mut hex = [0u8; 32];
    crate::hex::encode_into(&id, &mut hex);
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The trimmed elements of a comma-separated list header (`Connection`, `TE`, `Upgrade`),
/// over all its lines; lines that are not visible ASCII are skipped.
pub fn list_elements<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// True when the client's `te` lists `trailers` (gRPC clients send `te: trailers`).
pub fn wants_trailers(headers: &HeaderMap) -> bool {
    list_elements(headers, &TE).any(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("trailers")
    })
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // `Connection: keep-alive` (or `close`, `upgrade`) names nothing beyond the fixed
    // set, so the usual message collects nothing.
    let standard = |n: &str| {
        n.eq_ignore_ascii_case("close")
            || HOP_BY_HOP
                .iter()
                .any(|h| n.eq_ignore_ascii_case(h.as_str()))
    };
    if list_elements(headers, &CONNECTION).any(|n| !standard(n)) {
        let named: Vec<HeaderName> = list_elements(headers, &CONNECTION)
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    debug_assert!(!headers.contains_key(TE) && !headers.contains_key(TRAILER));
    debug_assert!(!headers.contains_key(TRANSFER_ENCODING) && !headers.contains_key(UPGRADE));
}

/// Removes what a client must not be able to tell the upstream: method overrides,
/// target overrides and any copy of the identity headers, each also spelled with `_`
/// for `-` (some servers fold `X_Auth_Subject` into `X-Auth-Subject`), and `_`
/// spellings of the `X-Forwarded-*` headers that [`set_forwarded`] controls.
pub fn strip_client_claims(headers: &mut HeaderMap, names: &IdentityNames) {
    let ours = [
        names.subject.as_str(),
        names.roles.as_str(),
        names.scopes.as_str(),
    ];
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            ours.iter()
                .chain(METHOD_OVERRIDES.iter())
                .chain(TARGET_OVERRIDES.iter())
                .any(|o| same_ignoring_underscores(k, o))
                || (k.contains('_')
                    && FORWARDED_SET
                        .iter()
                        .any(|o| same_ignoring_underscores(k, o)))
        })
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}

/// Header names are already lower-case; `_` and `-` count as the same character.
fn same_ignoring_underscores(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let norm = |c: u8| if c == b'_' { b'-' } else { c };
            norm(x) == norm(y)
        })
}

/// Sets `X-Forwarded-For/-Proto/-Host`: a trusted proxy's values are extended or kept,
/// anyone else's are replaced by what this connection shows.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: IpAddr,
    tls: bool,
    trusted: bool,
    original_host: Option<HeaderValue>,
) {
    let peer_text = peer.to_string();
    let xff = if trusted {
        let prior: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if prior.is_empty() {
            peer_text
        } else {
            format!("{}, {peer_text}", prior.join(", "))
        }
    } else {
        peer_text
    };
    if let Some(v) = owned_value(xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(
            X_FORWARDED_PROTO,
            HeaderValue::from_static(if tls { "https" } else { "http" }),
        );
    }
    if !(trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match original_host {
            Some(h) => {
                headers.insert(X_FORWARDED_HOST, h);
            }
            None => {
                headers.remove(&X_FORWARDED_HOST);
            }
        }
    }
    headers.remove(HOST);
}

/// A header value that takes the string's buffer instead of copying it; `None` when the
/// text is not a valid header value.
pub fn owned_value(text: String) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> IdentityNames {
        IdentityNames {
            subject: HeaderName::from_static("x-auth-subject"),
            roles: HeaderName::from_static("x-auth-roles"),
            scopes: HeaderName::from_static("x-auth-scopes"),
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn te_trailers_is_recognised_among_other_codings() {
        let mut h = HeaderMap::new();
        assert!(!wants_trailers(&h));
        h.insert(TE, HeaderValue::from_static("gzip;q=0.5, Trailers"));
        assert!(wants_trailers(&h));
        h.insert(TE, HeaderValue::from_static("gzip, trailersx"));
        assert!(!wants_trailers(&h));
    }

    #[test]
    fn identity_spoofs_in_any_spelling_and_overrides_go() {
        let mut h = HeaderMap::new();
        h.insert("x-auth-subject", HeaderValue::from_static("admin"));
        h.insert("x_auth_roles", HeaderValue::from_static("admin"));
        h.insert("x-auth_scopes", HeaderValue::from_static("*"));
        h.insert("x-http-method-override", HeaderValue::from_static("DELETE"));
        h.insert("x-method-override", HeaderValue::from_static("DELETE"));
        h.insert("x-http-method", HeaderValue::from_static("DELETE"));
        h.insert("x-auth-subjects", HeaderValue::from_static("kept"));
        strip_client_claims(&mut h, &names());
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn target_and_method_overrides_go_in_any_spelling() {
        let mut h = HeaderMap::new();
        for name in [
            "x-original-url",
            "x_original_url",
            "x-rewrite-url",
            "x-original-uri",
            "x-forwarded-uri",
            "x_forwarded_uri",
            "x-forwarded-path",
            "x-envoy-original-path",
            "x_http_method_override",
            "x_method_override",
        ] {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("/admin/x"),
            );
        }
        h.insert("x_forwarded_for", HeaderValue::from_static("10.0.0.1"));
        h.insert(
            "x_forwarded_host",
            HeaderValue::from_static("admin.internal"),
        );
        h.insert("x-forwarded-prefix", HeaderValue::from_static("/api"));
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.2"));
        strip_client_claims(&mut h, &names());
        assert_eq!(h.len(), 2, "{h:?}");
        // The dashed spelling is set_forwarded's business (kept or replaced there).
        assert!(h.contains_key(X_FORWARDED_FOR));
        assert!(h.contains_key("x-forwarded-prefix"));
    }

    #[test]
    fn forwarded_for_is_replaced_unless_the_peer_is_trusted() {
        let peer: IpAddr = "127.0.0.9".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        set_forwarded(
            &mut h,
            peer,
            false,
            false,
            Some(HeaderValue::from_static("api.test")),
        );
        assert_eq!(h[&X_FORWARDED_FOR], "127.0.0.9");
        assert_eq!(h[&X_FORWARDED_PROTO], "http");
        assert_eq!(h[&X_FORWARDED_HOST], "api.test");

        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        set_forwarded(&mut h, peer, false, true, None);
        assert_eq!(h[&X_FORWARDED_FOR], "203.0.113.7, 127.0.0.9");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
    }

    #[test]
    fn request_ids_are_kept_or_made() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        let made = request_id(&h);
        assert_eq!(made.len(), 32);
        assert!(
            made.as_bytes()
                .iter()
                .all(|b| b"0123456789abcdef".contains(b)),
            "{made:?}"
        );
        assert_ne!(made, request_id(&HeaderMap::new()));
    }
}
