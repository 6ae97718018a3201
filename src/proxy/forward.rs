//! The upstream side: pooled connections, the outgoing request built from the decided
//! path, bodies streamed both ways, failures classified for 502/504.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::pool::{BoxError, Pool, PoolError};
use super::{IdentityNames, Peer, headers, upgrade};
use crate::auth::Principal;
use crate::config::UpstreamConfig;
use crate::decide::{Reason, identity};
use crate::policy::Policy;
use crate::respond::Body;

/// Why the upstream could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid upstream url `{0}`")]
    Url(String),
    #[error("could not connect: {0}")]
    Connect(#[source] BoxError),
    #[error("no response headers within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Failed(#[source] BoxError),
    #[error("could not build the upstream request: {0}")]
    Build(#[from] http::Error),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("the upstream switched protocols without being asked to")]
    UnaskedUpgrade,
}

impl UpstreamError {
    /// The refusal this failure is answered with.
    pub fn reason(&self) -> Reason {
        match self {
            UpstreamError::Timeout(_) => Reason::UpstreamTimeout,
            _ => Reason::UpstreamUnavailable,
        }
    }

    /// The `kind` label of `scopegate_upstream_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Failed(e) if is_reset(e.as_ref()) => "reset",
            _ => "protocol",
        }
    }
}

fn is_reset(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
        }
        source = s.source();
    }
    false
}

/// Everything about a request the upstream side needs besides the request itself.
pub(crate) struct Outgoing<'a> {
    /// The normalized path the decision was made on: exactly what is forwarded.
    pub path: &'a str,
    pub peer: &'a Peer,
    pub request_id: &'a HeaderValue,
    /// The verified caller and the policy that gives its effective scopes.
    pub identity: Option<(&'a Principal, &'a Policy)>,
    pub names: &'a IdentityNames,
    pub trusted: &'a [ipnet::IpNet],
}

/// The upstream: where to send, and the shared connections.
pub struct Upstream {
    transport: Transport,
    scheme: Scheme,
    authority: Authority,
    /// A path prefix from the upstream URL, without its trailing `/`.
    base_path: String,
    host: HeaderValue,
    timeout: Duration,
    version: Version,
}

/// How long an unused upstream connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// HTTP/1.1 upstreams use our pool; HTTP/2 multiplexes one connection, which hyper-util's
/// client already shares without per-request work.
enum Transport {
    Http1(Arc<Pool>),
    Http2(Box<Client<HttpsConnector<HttpConnector>, Incoming>>),
}

impl Upstream {
    /// Builds the pooled client once; every request reuses its connections.
    pub fn new(cfg: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
        let url: Uri = cfg
            .url
            .parse()
            .map_err(|_| UpstreamError::Url(cfg.url.clone()))?;
        let (Some(scheme), Some(authority)) = (url.scheme().cloned(), url.authority().cloned())
        else {
            return Err(UpstreamError::Url(cfg.url.clone()));
        };
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| UpstreamError::Url(cfg.url.clone()))?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        // The TLS connector is there for `https` upstreams and passes `http` through. Its
        // builder sets ALPN from the enabled versions (the config must not have any yet).
        let builder = if scheme == Scheme::HTTPS {
            http.enforce_http(false);
            HttpsConnectorBuilder::new()
                .with_tls_config(crate::tls::client_config(cfg.ca.as_deref())?)
                .https_only()
        } else {
            HttpsConnectorBuilder::new()
                .with_tls_config(crate::tls::unused_client_config()?)
                .https_or_http()
        };
        let connector = if cfg.http2 {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        let transport = if cfg.http2 {
            Transport::Http2(Box::new(
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(IDLE_TIMEOUT)
                    .pool_max_idle_per_host(cfg.max_idle_connections)
                    .http2_only(true)
                    .build(connector),
            ))
        } else {
            let target = Uri::builder()
                .scheme(scheme.clone())
                .authority(authority.clone())
                .path_and_query("/")
                .build()?;
            Transport::Http1(Arc::new(Pool::new(
                connector,
                target,
                cfg.max_idle_connections,
                IDLE_TIMEOUT,
            )))
        };
        Ok(Upstream {
            transport,
            scheme,
            authority,
            base_path: url.path().trim_end_matches('/').to_string(),
            host,
            timeout: cfg.timeout,
            version: if cfg.http2 {
                Version::HTTP_2
            } else {
                Version::HTTP_11
            },
        })
    }

    /// Forwards a decided request and streams the answer back.
    pub(crate) async fn send(
        &self,
        mut req: Request<Incoming>,
        out: Outgoing<'_>,
    ) -> Result<Response<Body>, UpstreamError> {
        // WebSocket and other HTTP/1.1 upgrades; an HTTP/2 upstream gets none.
        let upgrade = match self.version {
            Version::HTTP_11 => upgrade::requested(&req),
            _ => None,
        };
        let client_side = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let original_host = parts.headers.get(http::header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        parts.uri = self.uri(out.path, parts.uri.query())?;
        parts.version = self.version;
        let h = &mut parts.headers;
        // gRPC needs `te: trailers` end to end; it is the one `te` HTTP/2 allows.
        let te_trailers = self.version == Version::HTTP_2 && headers::wants_trailers(h);
        headers::strip_hop_by_hop(h);
        if te_trailers {
            h.insert(http::header::TE, HeaderValue::from_static("trailers"));
        }
        if let Some(protocol) = upgrade {
            upgrade::set_headers(h, protocol);
        }
        headers::strip_client_claims(h, out.names);
        let trusted = out
            .trusted
            .iter()
            .any(|net| net.contains(&out.peer.addr.ip()));
        headers::set_forwarded(h, out.peer.addr.ip(), out.peer.tls, trusted, original_host);
        if self.version == Version::HTTP_11 {
            h.insert(http::header::HOST, self.host.clone());
        }
        h.insert(crate::respond::REQUEST_ID, out.request_id.clone());
        if let Some((principal, policy)) = out.identity {
            set_identity(h, out.names, principal, policy);
        }
        let request = Request::from_parts(parts, body);
        let mut response = match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Err(_) => return Err(UpstreamError::Timeout(self.timeout)),
            Ok(r) => r?,
        };
        let switched = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
        let switched_to = switched
            .then(|| response.headers().get(http::header::UPGRADE).cloned())
            .flatten();
        if switched {
            let Some(client_side) = client_side else {
                return Err(UpstreamError::UnaskedUpgrade);
            };
            upgrade::spawn_tunnel(client_side, hyper::upgrade::on(&mut response));
        }
        let (mut parts, body) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        if let Some(protocol) = switched_to {
            upgrade::set_headers(&mut parts.headers, protocol);
        }
        parts
            .headers
            .insert(crate::respond::REQUEST_ID, out.request_id.clone());
        Ok(Response::from_parts(parts, body))
    }

    /// One request and its response headers, on whichever transport the upstream uses.
    async fn exchange(&self, request: Request<Incoming>) -> Result<Response<Body>, UpstreamError> {
        match &self.transport {
            Transport::Http1(pool) => match pool.send(request).await {
                Ok(r) => Ok(r.map(|b| b.boxed())),
                Err(PoolError::Connect(e)) => Err(UpstreamError::Connect(e)),
                Err(PoolError::Failed(e)) => Err(UpstreamError::Failed(e.into())),
            },
            Transport::Http2(client) => match client.request(request).await {
                Ok(r) => Ok(r.map(|b| b.boxed())),
                Err(e) if e.is_connect() => Err(UpstreamError::Connect(e.into())),
                Err(e) => Err(UpstreamError::Failed(e.into())),
            },
        }
    }

    /// The upstream URI: base path + decided path + the client's query, unchanged;
    /// origin-form on an HTTP/1.1 connection, absolute for the HTTP/2 client.
    fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, UpstreamError> {
        let len = self.base_path.len() + path.len() + query.map_or(0, |q| q.len() + 1);
        let mut buf = BytesMut::with_capacity(len);
        buf.put_slice(self.base_path.as_bytes());
        buf.put_slice(path.as_bytes());
        if let Some(q) = query {
            buf.put_u8(b'?');
            buf.put_slice(q.as_bytes());
        }
        let pq = PathAndQuery::from_maybe_shared(buf.freeze()).map_err(http::Error::from)?;
        if matches!(self.transport, Transport::Http1(_)) {
            return Ok(Uri::from(pq));
        }
        Ok(Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()?)
    }
}

/// Sets the gateway's own identity headers (the client's copies are already gone).
fn set_identity(
    h: &mut http::HeaderMap,
    names: &IdentityNames,
    principal: &Principal,
    policy: &Policy,
) {
    let id = identity(policy, principal);
    if let Some(sub) = id.subject.and_then(|s| HeaderValue::from_str(s).ok()) {
        h.insert(names.subject.clone(), sub);
    }
    if let Some(v) = headers::owned_value(id.roles.join(" ")) {
        h.insert(names.roles.clone(), v);
    }
    if let Some(v) = headers::owned_value(id.scopes.join(" ")) {
        h.insert(names.scopes.clone(), v);
    }
}
