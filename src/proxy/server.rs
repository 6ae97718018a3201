//! The public listener: accepts connections within the connection limit, terminates TLS
//! when configured (ALPN picks HTTP/2 or HTTP/1.1) and serves HTTP/1.1 (with upgrades)
//! and HTTP/2 on each, with the header limits applied.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::{Gateway, Peer};
use crate::config::Limits;
use crate::tls::ClientCert;

/// Serves `gateway` on `listener` until `shutdown` completes, then lets requests in
/// flight finish for up to `limits.shutdown_grace`. With `tls`, every connection is a
/// TLS connection first; the handshake must finish within `limits.header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    gateway: Gateway,
    limits: &Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let builder = Arc::new(builder(limits));
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Beyond max_connections, stop accepting until a connection closes.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            builder: builder.clone(),
            watcher: graceful.watcher(),
            gateway: gateway.clone(),
            peer: Peer {
                addr,
                tls: acceptor.is_some(),
                client_cert: None,
            },
        };
        let acceptor = acceptor.clone();
        let handshake_timeout = limits.header_read_timeout;
        crate::telemetry::connection_opened();
        tokio::spawn(async move {
            // Every spawned task is as large as its biggest branch, and each idle
            // connection holds one: the TLS branch (rustls state included) is boxed so
            // plain connections do not pay for it.
            match acceptor {
                None => conn.serve(TokioIo::new(stream)).await,
                Some(acceptor) => {
                    Box::pin(conn.serve_tls(acceptor, stream, handshake_timeout)).await
                }
            }
            crate::telemetry::connection_closed();
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    gateway: Gateway,
    peer: Peer,
}

impl Connection {
    async fn serve_tls(mut self, acceptor: TlsAcceptor, stream: TcpStream, limit: Duration) {
        let addr = self.peer.addr;
        let tls = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, peer = %addr, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %addr, "TLS handshake timed out");
                return;
            }
        };
        // rustls has verified the chain against client_ca before we get here.
        self.peer.client_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| ClientCert::from_der(der))
            .map(Arc::new);
        self.serve(TokioIo::new(tls)).await;
    }

    async fn serve<I>(self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Connection {
            builder,
            watcher,
            gateway,
            peer,
        } = self;
        let addr = peer.addr;
        let peer = Arc::new(peer);
        let service = service_fn(move |req| {
            let gw = gateway.clone();
            let peer = peer.clone();
            // hyper keeps a box the size of this future for every connection, idle or
            // not (several KiB: the whole forward path); boxed here, that box holds a
            // pointer and the future's memory lives only while a request does.
            Box::pin(async move { Ok::<_, std::convert::Infallible>(gw.handle(req, &peer).await) })
        });
        let conn = builder.serve_connection_with_upgrades(io, service);
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(error = %e, peer = %addr, "connection ended with an error");
        }
    }
}

/// The HTTP/1.1 + HTTP/2 connection settings of the public listener, with the header
/// limits applied; public so the request-head fuzz target serves in-memory streams with
/// exactly what the listener uses.
pub fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    b
}
