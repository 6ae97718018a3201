//! HTTP/1.1 upgrades (WebSocket): an authorized upgrade request is forwarded with its
//! `Upgrade` header, and once the upstream answers 101 both sides' connections are
//! joined and streamed in both directions until either closes.

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The `Upgrade` header of an HTTP/1.1 request that asks to switch protocols
/// (`Connection: upgrade` plus `Upgrade`); `None` for every other request.
///
/// `h2c` is never passed on: a tunnelled HTTP/2 connection would carry requests the
/// gateway never decides on ("h2c smuggling"). Such a request goes upstream as a plain
/// request without its `Upgrade` header.
pub fn requested<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 || !connection_has_upgrade(req.headers()) {
        return None;
    }
    let value = req.headers().get(UPGRADE)?;
    let h2c = value.to_str().map_or(true, |v| {
        v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c"))
    });
    (!h2c).then(|| value.clone())
}

/// True when a `Connection` header lists the `upgrade` token.
pub fn connection_has_upgrade(headers: &HeaderMap) -> bool {
    super::headers::list_elements(headers, &CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// Puts back the two hop-by-hop headers an upgrade needs on the next hop.
pub fn set_headers(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(UPGRADE, protocol);
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
}

/// Joins the client's and the upstream's upgraded connections once both are ready.
pub fn spawn_tunnel(client: OnUpgrade, upstream: OnUpgrade) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(up, down, "upgraded connection closed"),
            Err(e) => tracing::debug!(error = %e, "upgraded connection ended with an error"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut r = Request::new(());
        *r.version_mut() = version;
        for (k, v) in headers {
            r.headers_mut().append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        r
    }

    #[test]
    fn only_http1_requests_with_both_headers_upgrade() {
        let ws = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ];
        assert_eq!(
            requested(&req(Version::HTTP_11, &ws)),
            Some(HeaderValue::from_static("websocket"))
        );
        assert_eq!(requested(&req(Version::HTTP_2, &ws)), None);
        assert_eq!(requested(&req(Version::HTTP_10, &ws)), None);
        assert_eq!(
            requested(&req(Version::HTTP_11, &[("upgrade", "websocket")])),
            None,
            "Upgrade without Connection: upgrade"
        );
        assert_eq!(
            requested(&req(Version::HTTP_11, &[("connection", "upgrade")])),
            None
        );
        let h2c = [
            ("connection", "Upgrade, HTTP2-Settings"),
            ("upgrade", "H2C"),
        ];
        assert_eq!(
            requested(&req(Version::HTTP_11, &h2c)),
            None,
            "h2c smuggling"
        );
    }
}
