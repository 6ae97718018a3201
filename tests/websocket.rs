//! WebSocket through the gateway: an authorized upgrade reaches a real WebSocket echo
//! server and messages flow both ways; an unauthorized one is refused before any
//! upgrade and never reaches the upstream.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const POLICY: &str = r#"
version: 1
routes:
  - path: /chat
    methods: [GET]
    scopes: [chat:read]
unmatched: deny
"#;

/// A WebSocket echo server; it reports the `x-auth-subject` each handshake carried and
/// counts the connections it accepted.
struct WsEcho {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    subjects: mpsc::UnboundedReceiver<Option<String>>,
}

async fn ws_echo() -> WsEcho {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let (tx, subjects) = mpsc::unbounded_channel();
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            tokio::spawn(async move {
                // tungstenite's callback type fixes the (large) error type.
                #[allow(clippy::result_large_err)]
                let seen = |req: &Request, resp: Response| {
                    let subject = req
                        .headers()
                        .get("x-auth-subject")
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    let _ = tx.send(subject);
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, seen).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            break;
                        }
                    } else if msg.is_close() {
                        break;
                    }
                }
            });
        }
    });
    WsEcho {
        addr,
        connections,
        subjects,
    }
}

async fn gateway(upstream: SocketAddr) -> Harness {
    let url = format!("http://{upstream}");
    Harness::start_with(Setup {
        policy: POLICY,
        upstream_url: Some(&url),
        ..Setup::default()
    })
    .await
}

async fn open(
    h: &Harness,
    authorization: Option<&str>,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<TcpStream>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let mut req = format!("ws://{}/chat", h.addr)
        .into_client_request()
        .unwrap();
    if let Some(a) = authorization {
        req.headers_mut()
            .insert("authorization", a.parse().unwrap());
    }
    let tcp = TcpStream::connect(h.addr).await.unwrap();
    tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("websocket handshake timed out")
}

#[tokio::test]
async fn an_authorized_websocket_echoes_both_ways() {
    let mut upstream = ws_echo().await;
    let h = gateway(upstream.addr).await;
    let token = format!("Bearer {}", h.token(&[], &["chat:read"], "alice", &[]));

    let (mut ws, resp) = open(&h, Some(&token)).await.expect("upgrade allowed");
    assert_eq!(resp.status(), 101);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(
        upstream.subjects.recv().await,
        Some(Some("alice".to_string())),
        "the upstream saw the gateway's identity header"
    );

    for text in ["hello", "second message"] {
        ws.send(Message::text(text)).await.unwrap();
        let back = tokio::time::timeout(IO_TIMEOUT, ws.next())
            .await
            .expect("echo timed out")
            .expect("stream open")
            .expect("message");
        assert_eq!(back, Message::text(text));
    }
    let big = vec![7u8; 256 * 1024];
    ws.send(Message::binary(big.clone())).await.unwrap();
    let back = tokio::time::timeout(IO_TIMEOUT, ws.next())
        .await
        .expect("echo timed out")
        .expect("stream open")
        .expect("message");
    assert_eq!(back.into_data().as_ref(), &big[..]);
    ws.close(None).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn an_unauthorized_websocket_is_refused_before_the_upgrade() {
    let upstream = ws_echo().await;
    let h = gateway(upstream.addr).await;
    let wrong_scope = format!("Bearer {}", h.token(&[], &["chat:write"], "mallory", &[]));
    for (auth, status) in [(None, 401), (Some(wrong_scope.as_str()), 403)] {
        match open(&h, auth).await {
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status(), status);
                let body = resp.body().as_deref().unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(body).expect("JSON denial");
                assert_eq!(v["statusCode"], status, "{v}");
            }
            Err(e) => panic!("expected an HTTP refusal, got {e}"),
            Ok(_) => panic!("the upgrade was allowed"),
        }
    }
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        0,
        "a refused upgrade reached the upstream"
    );
    h.stop().await;
}
