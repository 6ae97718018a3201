//! HTTP/1.1 upgrades (WebSocket): an authorized upgrade request is forwarded with its
//! `Upgrade` header, and once the upstream answers 101 both sides' connections are
//! joined and streamed in both directions until either closes.

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The `Upgrade` header of an HTTP/1.1 request that asks to switch protocols
/// (`Connection: upgrade` plus `Upgrade`); `None` for every other request.
pub fn requested<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 || !connection_has_upgrade(req.headers()) {
        return None;
    }
    req.headers().get(UPGRADE).cloned()
}

/// True when a `Connection` header lists the `upgrade` token.
pub fn connection_has_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
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
