//! Request head handling: arbitrary bytes fed as a client connection to the real
//! `Gateway` behind the listener's own hyper settings (`proxy::server::builder`), over an
//! in-memory stream, with the echo server as the upstream. The literal `$TOKEN` in the
//! input is replaced with a valid customer token so the fuzzer reaches the forwarding
//! path too. The connection must always end once the client has sent everything.
#![no_main]

use std::convert::Infallible;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use scopegate::app::App;
use scopegate::config::{Config, Limits};
use scopegate::proxy::{Gateway, Peer, server};
use scopegate::tooling::echo::EchoServer;
use scopegate::tooling::token::{TokenSpec, mint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

const SECRET: &str = "fuzz-secret-0123456789abcdef0123456789";

struct World {
    rt: Runtime,
    gateway: Gateway,
    limits: Limits,
    token: Vec<u8>,
    _echo: EchoServer,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let echo = rt.block_on(EchoServer::start()).expect("echo upstream");
        let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/orders.yaml");
        let text = format!(
            "listen: 127.0.0.1:0\n\
             upstream:\n  url: http://{}\n  timeout: 2s\n\
             auth:\n  jwt:\n    issuers:\n      - issuer: scopegate\n        \
             keys: [{{ alg: HS256, secret_env: FUZZ_SECRET }}]\n\
             policy: {}\n\
             limits:\n  header_read_timeout: 1s\n",
            echo.addr,
            policy.display()
        );
        let config =
            Config::from_str(Path::new("/tmp/fuzz-scopegate.yaml"), &text).expect("config");
        let env = |name: &str| (name == "FUZZ_SECRET").then(|| SECRET.to_string());
        // The hyper client inside the gateway needs a runtime context to be built in.
        let app = rt
            .block_on(async { App::build(config, &env) })
            .expect("app");
        let spec = TokenSpec {
            sub: Some("u1".into()),
            roles: vec!["customer".into()],
            scopes: vec!["orders:read".into(), "orders:write".into()],
            ..TokenSpec::default()
        };
        let token = mint(SECRET.as_bytes(), &spec).expect("token").into_bytes();
        World {
            rt,
            gateway: app.gateway,
            limits: app.config.limits.clone(),
            token,
            _echo: echo,
        }
    })
}

/// `data` with every `$TOKEN` replaced by the valid token.
fn with_token(data: &[u8], token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(i) = rest.windows(6).position(|w| w == b"$TOKEN") {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(token);
        rest = &rest[i + 6..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let input = with_token(data, &w.token);
    let builder = server::builder(&w.limits);
    let gateway = w.gateway.clone();
    let peer = std::sync::Arc::new(Peer {
        addr: "127.0.0.1:40000".parse().expect("addr"),
        tls: false,
        client_cert: None,
    });
    w.rt.block_on(async move {
        let (mut client, server_io) = tokio::io::duplex(64 * 1024);
        let service = service_fn(move |req| {
            let gw = gateway.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(gw.handle(req, &peer).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(server_io), service);
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        let write = async {
            let _ = wr.write_all(&input).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let all = async { tokio::join!(conn, write, read) };
        let (_, (), answer) = tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("the connection did not end after the client finished");
        // Whatever the gateway answered starts like an HTTP response (or is HTTP/2 frames).
        if !answer.is_empty() && input.starts_with(b"GET ") {
            assert!(
                answer.starts_with(b"HTTP/1."),
                "{:?}",
                String::from_utf8_lossy(&answer)
            );
        }
    });
});
