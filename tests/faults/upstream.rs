//! A purpose-built misbehaving upstream on raw TCP: each connection reads one request
//! head and then does whatever the current [`Behaviour`] says, so a test can make the
//! upstream reset, lie or stall at the moment it chooses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::common::IO_TIMEOUT;

/// The `Content-Length` a `ResetMidBody` response promises (it sends far less).
pub const MID_BODY_LENGTH: usize = 1_000_000;

/// What the upstream does after reading a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Behaviour {
    /// `200` with body `fine`, then closes.
    Fine,
    /// Resets the connection (RST) without answering.
    ResetBeforeResponse,
    /// Closes the connection (FIN) without answering.
    CloseBeforeResponse,
    /// Bytes that are not HTTP at all.
    Garbage,
    /// `HTTP/1.1 abc OK`.
    BadStatusLine,
    /// Two different `Content-Length` values.
    ConflictingLengths,
    /// A header name with a space in it.
    BadHeaderName,
    /// Promises `MID_BODY_LENGTH` bytes, sends 64 KiB, then resets.
    ResetMidBody,
    /// Reads the request body forever and never answers.
    SwallowBody,
    /// Counts the request as in flight and answers `200` only after `release`.
    HoldUntilReleased,
}

const ALL: [Behaviour; 10] = [
    Behaviour::Fine,
    Behaviour::ResetBeforeResponse,
    Behaviour::CloseBeforeResponse,
    Behaviour::Garbage,
    Behaviour::BadStatusLine,
    Behaviour::ConflictingLengths,
    Behaviour::BadHeaderName,
    Behaviour::ResetMidBody,
    Behaviour::SwallowBody,
    Behaviour::HoldUntilReleased,
];

#[derive(Default)]
struct Counters {
    behaviour: AtomicU8,
    ended: AtomicU64,
    body_started: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// The running upstream; everything it spawned dies with [`Misbehaving::stop`].
pub struct Misbehaving {
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    release: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Misbehaving {
    pub async fn start() -> Misbehaving {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let counters = Arc::new(Counters::default());
        let (release, released) = watch::channel(false);
        let c = counters.clone();
        let accept = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (c, released) = (c.clone(), released.clone());
                        conns.spawn(async move {
                            serve(stream, &c, released).await;
                            c.ended.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Misbehaving {
            addr,
            counters,
            release,
            accept,
        }
    }

    pub fn set(&self, b: Behaviour) {
        self.counters.behaviour.store(b as u8, Ordering::SeqCst);
    }

    /// Connections whose handling has ended (for any reason).
    pub fn ended(&self) -> u64 {
        self.counters.ended.load(Ordering::SeqCst)
    }

    /// Requests held by `HoldUntilReleased` right now.
    pub fn in_flight(&self) -> usize {
        self.counters.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests held at any one time.
    pub fn max_in_flight(&self) -> usize {
        self.counters.max_in_flight.load(Ordering::SeqCst)
    }

    /// Lets every held request (and any later one) be answered.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }

    /// Waits until `n` requests have started sending a body to `SwallowBody`.
    pub async fn wait_body_started(&self, n: u64) {
        self.wait(
            || self.counters.body_started.load(Ordering::SeqCst) >= n,
            "body",
        )
        .await;
    }

    /// Waits until `n` requests are held at once.
    pub async fn wait_in_flight(&self, n: usize) {
        self.wait(|| self.in_flight() >= n, "in-flight requests")
            .await;
    }

    async fn wait(&self, done: impl Fn() -> bool, what: &str) {
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "upstream: no {what} within {IO_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops accepting and drops every connection.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }
}

/// Reads up to the end of the head; returns the bytes after it (the body's start).
async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(buf.split_off(end + 4));
        }
    }
}

async fn serve(mut stream: TcpStream, c: &Counters, mut released: watch::Receiver<bool>) {
    let Some(body_start) = read_head(&mut stream).await else {
        return;
    };
    let behaviour = ALL[usize::from(c.behaviour.load(Ordering::SeqCst))];
    let reply = |s: &'static str| s.as_bytes();
    match behaviour {
        Behaviour::Fine => {
            let _ = stream
                .write_all(reply(
                    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfine",
                ))
                .await;
        }
        Behaviour::ResetBeforeResponse => {
            let _ = stream.set_zero_linger();
        }
        Behaviour::CloseBeforeResponse => {}
        Behaviour::Garbage => {
            let _ = stream
                .write_all(b"\x00\x01\x02 this is not http\r\n\r\n")
                .await;
        }
        Behaviour::BadStatusLine => {
            let _ = stream
                .write_all(reply("HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"))
                .await;
        }
        Behaviour::ConflictingLengths => {
            let _ = stream
                .write_all(reply(
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                ))
                .await;
        }
        Behaviour::BadHeaderName => {
            let _ = stream
                .write_all(reply(
                    "HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n",
                ))
                .await;
        }
        Behaviour::ResetMidBody => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {MID_BODY_LENGTH}\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&[b'y'; 64 * 1024]).await;
            let _ = stream.flush().await;
            let _ = stream.set_zero_linger();
        }
        Behaviour::SwallowBody => {
            let mut started = !body_start.is_empty();
            if started {
                c.body_started.fetch_add(1, Ordering::SeqCst);
            }
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !started => {
                        started = true;
                        c.body_started.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                }
            }
        }
        Behaviour::HoldUntilReleased => {
            let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            c.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let _ = released.wait_for(|r| *r).await;
            c.in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = stream
                .write_all(reply(
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                ))
                .await;
        }
    }
}
