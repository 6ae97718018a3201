//! A real HTTP echo upstream.
//!
//! It backs the `scopegate demo` command and the integration tests: the
//! gateway proxies to it over genuine sockets, and the tests assert on what
//! the upstream *actually received* (method, raw path, headers, body hash)
//! rather than trusting the gateway's own view. Query options make it
//! misbehave on purpose (slow, large, or failing responses).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::hex::encode as hex;

/// Size of each `?download=` chunk, so large downloads stream in bounded pieces.
const CHUNK: usize = 64 * 1024;
/// Period of the download pattern (a prime, so it never aligns with chunk sizes).
const PERIOD: usize = 251;
/// How long `shutdown()` lets in-flight requests finish before aborting them,
/// so a test that leaves a `delay_ms` request pending cannot hang teardown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// One chunk of the pattern plus a full period of slack: any chunk starting at
/// any offset is a zero-copy slice of this static, so downloads never allocate.
static PATTERN: [u8; CHUNK + PERIOD] = {
    let mut a = [0u8; CHUNK + PERIOD];
    let mut i = 0;
    while i < a.len() {
        a[i] = (i % PERIOD) as u8;
        i += 1;
    }
    a
};

/// The response body: either an in-memory JSON echo or a streamed download.
type EchoBody = Either<Full<Bytes>, PatternBody>;

/// A running echo upstream; dropping the handle does not stop it, `shutdown()` does.
///
/// Dropping leaves it running so the demo can hand out the address and forget
/// the handle; tests call `shutdown()` to release the port deterministically.
#[derive(Debug)]
pub struct EchoServer {
    /// The bound address (useful when started on port 0).
    pub addr: SocketAddr,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Binds 127.0.0.1:0 and serves HTTP/1.1 and HTTP/2 cleartext (prior knowledge).
    ///
    /// Loopback only: this is a test/demo backend and must never be reachable from outside.
    pub async fn start() -> std::io::Result<EchoServer> {
        Self::start_on(TcpListener::bind(("127.0.0.1", 0)).await?).await
    }

    /// Serves on an already-bound listener, for callers that need a specific port.
    ///
    /// Uses `hyper_util::server::conn::auto::Builder`, which sniffs the HTTP/2
    /// preface, so one port covers both protocol versions the gateway may speak.
    pub async fn start_on(listener: TcpListener) -> std::io::Result<EchoServer> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(serve(listener, Arc::clone(&stop)));
        Ok(EchoServer { addr, stop, task })
    }

    /// Stops accepting, lets in-flight requests finish (up to a short grace
    /// period), aborts the rest, and waits until the listener is closed.
    pub async fn shutdown(self) {
        // `notify_one` stores a permit, so this cannot be lost even if the
        // accept loop is not currently waiting on it.
        self.stop.notify_one();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "echo server task failed");
        }
    }
}

/// Accept loop; owns every connection task so they die with it.
async fn serve(listener: TcpListener, stop: Arc<Notify>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's default HTTP/1 header-read timeout needs a timer to take effect.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.notified() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let builder = Arc::clone(&builder);
                    let watcher = graceful.watcher();
                    conns.spawn(async move {
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), service_fn(handle));
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(%peer, error = %e, "echo connection ended with error");
                        }
                    });
                }
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    tracing::warn!(error = %e, "echo accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("echo shutdown grace expired; aborting connections");
    }
    conns.shutdown().await;
}

/// Options selected by the query string; unknown keys are ignored.
#[derive(Default)]
struct Options {
    download: Option<u64>,
    delay_ms: Option<u64>,
    status: Option<StatusCode>,
}

/// Parses the raw query; a malformed known option is an error so a typo in a
/// test surfaces as a 400 instead of silently testing the wrong thing.
/// `status` must be 200..=599: a 1xx cannot be a final response with a body.
fn parse_options(query: Option<&str>) -> Result<Options, String> {
    let mut opts = Options::default();
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad {key}={value}"))
        };
        match key {
            "download" => opts.download = Some(num()?),
            "delay_ms" => opts.delay_ms = Some(num()?),
            "status" => {
                let code = value
                    .parse::<u16>()
                    .ok()
                    .filter(|c| (200..=599).contains(c));
                let code = code.and_then(|c| StatusCode::from_u16(c).ok());
                opts.status = Some(code.ok_or_else(|| format!("bad status={value}"))?);
            }
            _ => {}
        }
    }
    Ok(opts)
}

/// Handles one request; never fails, errors become 400 responses.
async fn handle(req: Request<Incoming>) -> Result<Response<EchoBody>, Infallible> {
    let opts = match parse_options(req.uri().query()) {
        Ok(opts) => opts,
        Err(msg) => {
            let err = serde_json::json!({ "error": msg });
            return Ok(json_response(StatusCode::BAD_REQUEST, &err));
        }
    };
    // Applied before anything else so the delay always precedes response headers.
    if let Some(ms) = opts.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = opts.status.unwrap_or(StatusCode::OK);
    if let Some(n) = opts.download {
        // Hashing N bytes up front is CPU work; keep it off the async workers so
        // a big download cannot stall other requests' timers (e.g. `delay_ms`).
        let Ok(sha) = tokio::task::spawn_blocking(move || pattern_sha256(n)).await else {
            let err = serde_json::json!({ "error": "hashing task failed" });
            return Ok(json_response(StatusCode::INTERNAL_SERVER_ERROR, &err));
        };
        let body = Either::Right(PatternBody { sent: 0, len: n });
        let mut resp = respond(status, "application/octet-stream", body);
        let h = resp.headers_mut();
        h.insert(CONTENT_LENGTH, HeaderValue::from(n));
        if let Ok(v) = HeaderValue::from_str(&sha) {
            h.insert(HeaderName::from_static("x-body-sha256"), v);
        }
        return Ok(resp);
    }

    let (parts, mut body) = req.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values = parts.headers.get_all(name).iter();
        let values = values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into())
            .collect();
        headers.insert(name.as_str().to_owned(), serde_json::Value::Array(values));
    }
    // Hash frame by frame so a large upload never sits in memory.
    let mut hasher = Sha256::new();
    let mut count: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    hasher.update(data);
                    count += data.len() as u64;
                }
            }
            Err(e) => {
                let err = serde_json::json!({ "error": format!("reading request body: {e}") });
                return Ok(json_response(StatusCode::BAD_REQUEST, &err));
            }
        }
    }
    let echo = serde_json::json!({
        "method": parts.method.as_str(),
        // `Uri::path` is the target as received; hyper/http do not normalize it.
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "bodyBytes": count,
        "bodySha256": hex(&hasher.finalize()),
    });
    Ok(json_response(status, &echo))
}

/// Serializes `value` as the JSON response body.
fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<EchoBody> {
    let body = Either::Left(Full::new(Bytes::from(value.to_string())));
    respond(status, "application/json", body)
}

/// Builds a response without the fallible `Response::builder`, stamping
/// `x-echo: 1` so tests can tell an upstream answer from a gateway-made one.
fn respond(status: StatusCode, content_type: &'static str, body: EchoBody) -> Response<EchoBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        HeaderName::from_static("x-echo"),
        HeaderValue::from_static("1"),
    );
    resp
}

/// Streams `len` bytes of the pattern in `CHUNK`-sized static slices.
struct PatternBody {
    sent: u64,
    len: u64,
}

impl PatternBody {
    /// The next chunk, or `None` when done; shared with `pattern_sha256` so the
    /// advertised hash and the streamed bytes cannot drift apart.
    fn next_chunk(&mut self) -> Option<&'static [u8]> {
        let n = (self.len - self.sent).min(CHUNK as u64) as usize;
        if n == 0 {
            return None;
        }
        let start = (self.sent % PERIOD as u64) as usize;
        self.sent += n as u64;
        Some(&PATTERN[start..start + n])
    }
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.next_chunk()
                .map(|c| Ok(Frame::data(Bytes::from_static(c)))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.sent == self.len
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len - self.sent)
    }
}

/// Lower-case hex SHA-256 of the first `n` bytes of the download pattern
/// (byte i = i % 251), so tests can check a download without buffering it.
pub fn pattern_sha256(n: u64) -> String {
    let mut body = PatternBody { sent: 0, len: n };
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next_chunk() {
        hasher.update(chunk);
    }
    hex(&hasher.finalize())
}

#[cfg(test)]
mod tests;
