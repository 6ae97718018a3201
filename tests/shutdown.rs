//! The real `scopegate run` process. Graceful shutdown: SIGTERM turns `/readyz` to 503 at
//! once, closes the public listener, lets a slow download in flight finish, and exits 0;
//! a second signal exits at once. And the runtime is sized by `limits.worker_threads`.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{IO_TIMEOUT, parse_raw_response};
use scopegate::tooling::echo::{EchoServer, pattern_sha256};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POLICY: &str =
    "version: 1\nroutes:\n  - path: /download\n    methods: [GET]\n    public: true\n";
/// Far more than loopback socket buffers hold, so the download is still in flight.
const DOWNLOAD: u64 = 32 * 1024 * 1024;

/// The real `scopegate run` process, its addresses and its stderr so far.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn start(upstream: SocketAddr) -> Gateway {
        Gateway::start_with(upstream, "")
    }

    /// Starts with more `limits` settings, each line indented by two spaces.
    fn start_with(upstream: SocketAddr, limits: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
        let config = dir.path().join("scopegate.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n\
                 upstream:\n  url: http://{upstream}\npolicy: policy.yaml\n\
                 limits:\n  shutdown_grace: 30s\n{limits}"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(["--log-format", "json", "run", "-c"])
            .arg(&config)
            .env("SCOPEGATE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start scopegate");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "scopegate listening" {
                        let addr = |k: &str| v["fields"][k].as_str().unwrap().parse().unwrap();
                        let _ = tx.send((addr("addr"), addr("admin")));
                    }
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let (addr, admin) = rx
            .recv_timeout(IO_TIMEOUT)
            .unwrap_or_else(|_| panic!("scopegate never said it was listening"));
        Gateway {
            child,
            addr,
            admin,
            log,
            _dir: dir,
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the process to exit, up to `limit`.
    async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    async fn readyz(&self) -> u16 {
        let mut s = TcpStream::connect(self.admin).await.expect("admin connect");
        s.write_all(b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        parse_raw_response(&buf).status.as_u16()
    }

    /// Polls until `/readyz` answers `want`.
    async fn await_readyz(&self, want: u16) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let got = self.readyz().await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz stayed {got}, wanted {want}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a download and reads only its first bytes, leaving the rest in flight.
async fn start_download(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /download?download={DOWNLOAD} HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = vec![0u8; 256 * 1024];
    s.read_exact(&mut got)
        .await
        .expect("first bytes of the download");
    (s, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_slow_download_refuses_new_connections_and_exits_0() {
    let echo = EchoServer::start().await.unwrap();
    let mut gw = Gateway::start(echo.addr);
    gw.await_readyz(200).await;
    let (mut stream, mut got) = start_download(gw.addr).await;

    gw.signal("TERM");
    gw.await_readyz(503).await;
    // The public listener is closed: a new connection is refused.
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match TcpStream::connect(gw.addr).await {
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
                break;
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "still accepting after SIGTERM");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "exited with a download in flight"
    );
    // Now read the rest: the download in flight completes in full.
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut got))
        .await
        .expect("download finished in time")
        .expect("read download");
    let resp = parse_raw_response(&got);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len() as u64, DOWNLOAD);
    assert_eq!(
        common::hex(&Sha256::digest(&resp.body)),
        pattern_sha256(DOWNLOAD)
    );

    let status = gw.wait(IO_TIMEOUT).await.expect("exited after draining");
    assert_eq!(status.code(), Some(0), "log:\n{}", gw.log.lock().unwrap());
    echo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let echo = EchoServer::start().await.unwrap();
    let mut gw = Gateway::start(echo.addr);
    gw.await_readyz(200).await;
    let (_stream, _) = start_download(gw.addr).await;
    gw.signal("TERM");
    gw.await_readyz(503).await;
    assert!(gw.child.try_wait().unwrap().is_none(), "draining, not gone");
    gw.signal("INT");
    let status = gw
        .wait(Duration::from_secs(5))
        .await
        .expect("the second signal ends the process at once, grace or not");
    assert_ne!(status.code(), Some(0));
    echo.shutdown().await;
}

/// The async worker threads the process runs, by the first 15 bytes of the name
/// `scopegate-worker` that the kernel keeps. The runtime's blocking pool shares the name,
/// and this config (no TLS files to re-read) never uses it.
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "scopegate-worke")
        .count()
}

#[tokio::test]
async fn limits_worker_threads_sets_the_runtime_size() {
    let echo = EchoServer::start().await.unwrap();
    for n in [1, 3] {
        let gw = Gateway::start_with(echo.addr, &format!("  worker_threads: {n}\n"));
        gw.await_readyz(200).await;
        assert_eq!(worker_threads(gw.child.id()), n);
    }
    echo.shutdown().await;
}
