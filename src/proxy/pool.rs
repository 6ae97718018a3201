//! Reusable HTTP/1.1 upstream connections, handed back without a task per response.
//!
//! hyper-util's pooled client returns an HTTP/1.1 connection by spawning a task for every
//! response that waits until the connection is idle again. Here a connection goes back to
//! the pool when the response body sent to the client is dropped after its end, and a
//! request takes only a connection that is already ready, so no request ever waits on
//! another one's exchange (an upload still in flight, say). One task per connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// A boxed error from the connector (DNS, TCP, TLS).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request could not be exchanged.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// No connection could be opened; nothing was sent.
    Connect(BoxError),
    /// The exchange failed after the request was handed to a connection.
    Failed(hyper::Error),
}

/// Idle HTTP/1.1 connections to one upstream, most recently used last.
pub(crate) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// `scheme://authority/`, what the connector dials.
    target: Uri,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

impl Pool {
    pub(crate) fn new(
        connector: HttpsConnector<HttpConnector>,
        target: Uri,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Pool {
        Pool {
            connector,
            target,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) on a ready idle connection, or on a new
    /// one. A request an idle connection refused before writing it (it had just closed)
    /// is tried on the next.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut req: Request<Incoming>,
    ) -> Result<Response<PooledBody>, PoolError> {
        while let Some(mut sender) = self.take_ready() {
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(self.wrap(response, sender)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(PoolError::Failed(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        match sender.send_request(req).await {
            Ok(response) => Ok(self.wrap(response, sender)),
            Err(e) => Err(PoolError::Failed(e)),
        }
    }

    /// The most recently returned connection that can take a request now. Closed and
    /// expired ones are dropped on the way; busy ones stay for later.
    fn take_ready(&self) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        idle.retain(|i| !i.sender.is_closed() && now.duration_since(i.since) < self.idle_timeout);
        let at = idle.iter().rposition(|i| i.sender.is_ready())?;
        Some(idle.remove(at).sender)
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, PoolError> {
        let io = self
            .connector
            .clone()
            .call(self.target.clone())
            .await
            .map_err(PoolError::Connect)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| PoolError::Connect(e.into()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Keeps the connection with the response body unless it switched protocols (the
    /// connection is then the tunnel's).
    fn wrap(
        self: &Arc<Self>,
        response: Response<Incoming>,
        sender: SendRequest<Incoming>,
    ) -> Response<PooledBody> {
        let reusable = response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        response.map(|inner| PooledBody {
            inner,
            ended: false,
            back: reusable.then(|| (sender, Arc::clone(self))),
        })
    }

    fn put_back(&self, sender: SendRequest<Incoming>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// An upstream response body that returns its connection to the pool once it has been
/// read to the end. A body dropped early takes its connection with it, and hyper closes
/// a connection whose response was not read.
pub(crate) struct PooledBody {
    inner: Incoming,
    ended: bool,
    back: Option<(SendRequest<Incoming>, Arc<Pool>)>,
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.ended = true,
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if self.ended || self.inner.is_end_stream() {
            if let Some((sender, pool)) = self.back.take() {
                pool.put_back(sender);
            }
        }
    }
}
