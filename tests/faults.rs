//! Fault injection: misbehaving upstreams and clients, and the listener's limits under
//! pressure. In every case the gateway answers with the documented status (or closes the
//! connection where SPEC §2 allows it), keeps serving the next request, and once stopped
//! leaves no task or file descriptor behind.
//!
//! The tests run one at a time, each on a runtime of its own created only once it holds
//! `SERIAL` ([`serial`]): file descriptors are counted per process, so no other test's
//! sockets or runtime may come and go meanwhile.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Harness, IO_TIMEOUT, ORDERS_POLICY, Setup, UpstreamKind, raw_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[path = "faults/upstream.rs"]
mod upstream;
use upstream::{Behaviour, Misbehaving};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `test` alone, on a fresh two-worker runtime that is gone when this returns.
fn serial<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) {
    let _alone = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(test());
}

// ---- leak accounting ----------------------------------------------------------------------

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// File descriptors and tasks counted before a test's gateway starts.
struct Baseline {
    fds: usize,
    tasks: usize,
}

impl Baseline {
    fn take() -> Baseline {
        Baseline {
            fds: open_fds(),
            tasks: alive_tasks(),
        }
    }

    /// After everything the test started is stopped, waits (bounded) until the counts
    /// are back to the baseline; sockets close asynchronously, so this polls.
    async fn assert_no_leaks(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        loop {
            let (fds, tasks) = (open_fds(), alive_tasks());
            if fds <= self.fds && tasks <= self.tasks {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{what}: leaked {} fds and {} tasks (fds {} -> {fds}, tasks {} -> {tasks})",
                    fds.saturating_sub(self.fds),
                    tasks.saturating_sub(self.tasks),
                    self.fds,
                    self.tasks
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn customer(h: &Harness) -> String {
    h.token(&["customer"], &["orders:read", "orders:write"], "u1", &[])
}

async fn start_against(upstream: &Misbehaving, extra: &str) -> Harness {
    Harness::start_with(Setup {
        policy: ORDERS_POLICY,
        extra_config: extra,
        upstream: UpstreamKind::At(upstream.addr),
        upstream_settings: "timeout: 2s",
        ..Setup::default()
    })
    .await
}

/// A request the misbehaving upstream answers properly: proof the gateway still serves.
async fn still_serving(h: &Harness, token: &str) {
    let resp = h
        .raw_ok(
            raw_request(
                "GET",
                "/orders/fine",
                &[&format!("Authorization: Bearer {token}")],
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.brief());
    assert_eq!(&resp.body[..], b"fine");
}

// ---- upstream faults -----------------------------------------------------------------------

#[test]
fn upstream_faults_are_502_and_the_gateway_keeps_serving() {
    serial(|| async {
        let base = Baseline::take();
        let up = Misbehaving::start().await;
        let h = start_against(&up, "").await;
        let t = customer(&h);
        let auth = format!("Authorization: Bearer {t}");
        still_serving(&h, &t).await;
        for (id, behaviour) in [
            ("reset", Behaviour::ResetBeforeResponse),
            ("close", Behaviour::CloseBeforeResponse),
            ("garbage", Behaviour::Garbage),
            ("badstatus", Behaviour::BadStatusLine),
            ("twolengths", Behaviour::ConflictingLengths),
            ("badheader", Behaviour::BadHeaderName),
        ] {
            up.set(behaviour);
            let resp = h
                .raw_ok(raw_request("GET", &format!("/orders/{id}"), &[&auth]).as_bytes())
                .await;
            common::assert_denial(&resp, 502, "BadGatewayError", "upstream_unavailable");
            up.set(Behaviour::Fine);
            still_serving(&h, &t).await;
        }
        h.stop().await;
        up.stop().await;
        base.assert_no_leaks("upstream faults").await;
    });
}

#[test]
fn upstream_reset_mid_body_cuts_the_response_and_the_gateway_keeps_serving() {
    serial(|| async {
        let base = Baseline::take();
        let up = Misbehaving::start().await;
        let h = start_against(&up, "").await;
        let t = customer(&h);
        up.set(Behaviour::ResetMidBody);
        let bytes = raw_request("GET", "/orders/7", &[&format!("Authorization: Bearer {t}")]);
        let mut stream = TcpStream::connect(h.addr).await.expect("connect");
        stream.write_all(bytes.as_bytes()).await.expect("write");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(IO_TIMEOUT, stream.read_to_end(&mut got))
            .await
            .expect("the gateway must end a response whose upstream died");
        let text = String::from_utf8_lossy(&got);
        // The status line had already gone out: the client sees 200 with a short body and a
        // closed connection, never a body that claims to be complete.
        assert!(text.starts_with("HTTP/1.1 200"), "{text:.200}");
        let body_start = text.find("\r\n\r\n").expect("head") + 4;
        assert!(
            got.len() - body_start < upstream::MID_BODY_LENGTH,
            "body was not cut"
        );
        assert!(
            !got.ends_with(b"\r\n0\r\n\r\n"),
            "a cut body was ended as complete"
        );
        drop(stream);
        up.set(Behaviour::Fine);
        still_serving(&h, &t).await;
        h.stop().await;
        up.stop().await;
        base.assert_no_leaks("reset mid-body").await;
    });
}

#[test]
fn client_disconnect_mid_upload_releases_the_upstream_connection() {
    serial(|| async {
        let base = Baseline::take();
        let up = Misbehaving::start().await;
        let h = start_against(&up, "").await;
        let t = customer(&h);
        up.set(Behaviour::SwallowBody);
        for round in 0..5 {
            let ended_before = up.ended();
            let head = format!(
                "POST /orders/7 HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer {t}\r\n\
             Content-Length: 10000000\r\n\r\n"
            );
            let mut stream = TcpStream::connect(h.addr).await.expect("connect");
            stream.write_all(head.as_bytes()).await.expect("head");
            stream.write_all(&[b'x'; 64 * 1024]).await.expect("body");
            // Wait until the upstream is receiving the body, then vanish.
            up.wait_body_started(round + 1).await;
            drop(stream);
            let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
            while up.ended() == ended_before {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "round {round}: the upstream connection outlived the client"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        up.set(Behaviour::Fine);
        still_serving(&h, &t).await;
        h.stop().await;
        up.stop().await;
        base.assert_no_leaks("client disconnect mid-upload").await;
    });
}

// ---- listener limits -----------------------------------------------------------------------

/// 1,000 clients at once against `max_connections: 50`: never more than 50 requests are
/// in flight at the upstream, and every client is served once slots free up.
#[test]
fn thousand_concurrent_connections_over_max_connections_are_all_served() {
    serial(|| async {
        const CLIENTS: usize = 1000;
        const MAX: usize = 50;
        let base = Baseline::take();
        let up = Misbehaving::start().await;
        up.set(Behaviour::HoldUntilReleased);
        let h = start_against(&up, &format!("limits:\n  max_connections: {MAX}\n")).await;
        let t = customer(&h);
        let request = Arc::new(raw_request(
            "GET",
            "/orders/7",
            &[&format!("Authorization: Bearer {t}")],
        ));
        let ok = Arc::new(AtomicUsize::new(0));
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (addr, request, ok) = (h.addr, request.clone(), ok.clone());
            clients.spawn(async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.write_all(request.as_bytes()).await.expect("write");
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.expect("read");
                if got.starts_with(b"HTTP/1.1 200") {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // The gateway fills its slots...
        up.wait_in_flight(MAX).await;
        // ...and holds there: a bounded look for an excess that must not come.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(up.in_flight(), MAX);
        up.release();
        let all = async { while clients.join_next().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("every client is served eventually");
        assert_eq!(ok.load(Ordering::SeqCst), CLIENTS);
        assert!(
            up.max_in_flight() <= MAX,
            "{} requests in flight at once",
            up.max_in_flight()
        );
        h.stop().await;
        up.stop().await;
        base.assert_no_leaks("1,000 connections").await;
    });
}

/// Oversized heads (431 or a closed connection) and oversized tokens (401), over and over:
/// each is refused without reaching the upstream, and nothing piles up.
#[test]
fn oversized_heads_and_tokens_are_refused_repeatedly_without_leaks() {
    serial(|| async {
        let base = Baseline::take();
        let h = Harness::start(
            ORDERS_POLICY,
            "limits:\n  max_header_bytes: 8KiB\n  max_token_bytes: 1KiB\n",
        )
        .await;
        let t = customer(&h);
        let big_token = h.token(
            &["customer"],
            &["orders:read"],
            "u1",
            &[("pad", &"p".repeat(1500))],
        );
        for i in 0..50 {
            let pad = format!("X-Pad: {}", "a".repeat(20 * 1024));
            let head = raw_request(
                "GET",
                "/orders/7",
                &[&format!("Authorization: Bearer {t}"), &pad],
            );
            if let Some(resp) = h.raw(head.as_bytes()).await {
                assert_eq!(resp.status, 431, "#{i}: {}", resp.brief());
            }
            let resp = h
                .raw_ok(
                    raw_request(
                        "GET",
                        "/orders/7",
                        &[&format!("Authorization: Bearer {big_token}")],
                    )
                    .as_bytes(),
                )
                .await;
            common::assert_denial(&resp, 401, "UnauthorizedError", "invalid_token");
        }
        assert_eq!(
            h.upstream_bytes(),
            0,
            "a refused request reached the upstream"
        );
        let resp = h
            .raw_ok(
                raw_request("GET", "/orders/7", &[&format!("Authorization: Bearer {t}")])
                    .as_bytes(),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.brief());
        h.stop().await;
        base.assert_no_leaks("oversized heads and tokens").await;
    });
}

/// A client that sends part of a head and then stays silent, or trickles one more byte
/// every 50 ms; true once the server has given up on it (EOF, reset, or a 408).
async fn slow_client(
    addr: std::net::SocketAddr,
    trickle: bool,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /orders/7 HTTP/1.1\r\nHost: g\r\n")
        .await
        .expect("first bytes");
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            read = s.read(&mut buf) => {
                if let Ok(n @ 1..) = read {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                }
                return true;
            }
            () = tokio::time::sleep(Duration::from_millis(50)), if trickle => {
                if s.write_all(b"x").await.is_err() {
                    return true;
                }
            }
            _ = stop.changed() => return false,
        }
    }
}

/// Clients that never finish their head (silent, or trickling a byte at a time) are cut
/// off after `header_read_timeout` counted from the first byte, while others are served;
/// once they are gone the gateway holds no more descriptors or tasks than before them.
#[test]
fn slow_header_clients_are_cut_off_and_others_are_served() {
    serial(|| async {
        let base = Baseline::take();
        let h = Harness::start(ORDERS_POLICY, "limits:\n  header_read_timeout: 300ms\n").await;
        let auth = format!("Authorization: Bearer {}", customer(&h));
        // Warm up (the upstream connection pool), then count.
        assert_eq!(h.raw_get("/orders/7", &[&auth]).await.status, 200);
        let running = Baseline::take();
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut slow = tokio::task::JoinSet::new();
        for i in 0..40 {
            slow.spawn(slow_client(h.addr, i % 2 == 1, stop_rx.clone()));
        }
        // Meanwhile a normal client is served.
        let resp = h.raw_get("/orders/7", &[&auth]).await;
        assert_eq!(resp.status, 200, "{}", resp.brief());
        let all = async {
            let mut cut = 0;
            while let Some(r) = slow.join_next().await {
                cut += usize::from(r.expect("slow client"));
            }
            cut
        };
        let cut = tokio::time::timeout(IO_TIMEOUT, all).await;
        let _ = stop_tx.send(true);
        assert_eq!(cut.ok(), Some(40), "slow clients were not all cut off");
        running
            .assert_no_leaks("slow header clients, while running")
            .await;
        h.stop().await;
        base.assert_no_leaks("slow header clients").await;
    });
}

/// A listener that accepts and never answers is a 504 after `upstream.timeout`, and the
/// stuck upstream connection is dropped.
#[test]
fn silent_upstream_is_504_and_its_connection_is_dropped() {
    serial(|| async {
        let base = Baseline::take();
        let silent = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = silent.local_addr().expect("addr");
        let h = Harness::start_with(Setup {
            policy: ORDERS_POLICY,
            upstream: UpstreamKind::At(addr),
            upstream_settings: "timeout: 200ms",
            ..Setup::default()
        })
        .await;
        let t = customer(&h);
        let req = raw_request("GET", "/orders/7", &[&format!("Authorization: Bearer {t}")]);
        let (answer, accepted) = tokio::join!(h.raw_ok(req.as_bytes()), silent.accept());
        common::assert_denial(&answer, 504, "GatewayTimeoutError", "upstream_timeout");
        let (mut conn, _) = accepted.expect("the gateway connected");
        let mut sink = Vec::new();
        // The gateway gave up: its side of the connection closes.
        tokio::time::timeout(IO_TIMEOUT, conn.read_to_end(&mut sink))
            .await
            .expect("the timed-out upstream connection was not closed")
            .ok();
        drop(conn);
        drop(silent);
        h.stop().await;
        base.assert_no_leaks("silent upstream").await;
    });
}
