use super::*;
use http_body_util::Empty;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Sends one request over a fresh HTTP/1.1 connection.
async fn send_h1<B>(addr: SocketAddr, req: Request<B>) -> TestResult<Response<Incoming>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

fn get(addr: SocketAddr, target: &str) -> Request<Empty<Bytes>> {
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = target.parse().expect("valid target");
    req.headers_mut().insert(
        "host",
        HeaderValue::from_str(&addr.to_string()).expect("host"),
    );
    req
}

/// Hashes a response body frame by frame, returning (len, hex sha256).
async fn hash_body(mut body: Incoming) -> hyper::Result<(u64, String)> {
    let (mut hasher, mut len) = (Sha256::new(), 0u64);
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame?.data_ref() {
            hasher.update(d);
            len += d.len() as u64;
        }
    }
    Ok((len, hex(&hasher.finalize())))
}

async fn json_body(resp: Response<Incoming>) -> TestResult<serde_json::Value> {
    Ok(serde_json::from_slice(
        &resp.into_body().collect().await?.to_bytes(),
    )?)
}

#[tokio::test]
async fn echoes_small_post() -> TestResult {
    let server = EchoServer::start().await?;
    let body = Bytes::from_static(b"hello echo");
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = hyper::Method::POST;
    *req.uri_mut() = "/api/items?a=1&b=%20x".parse()?;
    let h = req.headers_mut();
    h.insert("host", HeaderValue::from_str(&server.addr.to_string())?);
    h.append("X-Multi", HeaderValue::from_static("one"));
    h.append("x-multi", HeaderValue::from_static("two"));
    let resp = send_h1(server.addr, req).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-echo"], "1");
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    let v = json_body(resp).await?;
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/api/items");
    assert_eq!(v["query"], "a=1&b=%20x");
    assert_eq!(v["version"], "HTTP/1.1");
    assert_eq!(v["headers"]["x-multi"], serde_json::json!(["one", "two"]));
    assert_eq!(v["headers"]["content-length"], serde_json::json!(["10"]));
    assert_eq!(v["bodyBytes"], 10);
    assert_eq!(v["bodySha256"], hex(&Sha256::digest(&body)));
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn hashes_large_streamed_upload() -> TestResult {
    let server = EchoServer::start().await?;
    let n = 20 * 1024 * 1024;
    let mut req = Request::new(PatternBody { sent: 0, len: n });
    *req.method_mut() = hyper::Method::POST;
    *req.uri_mut() = "/upload".parse()?;
    req.headers_mut()
        .insert("host", HeaderValue::from_static("echo"));
    let v = json_body(send_h1(server.addr, req).await?).await?;
    assert_eq!(v["bodyBytes"], n);
    assert_eq!(v["bodySha256"], pattern_sha256(n));
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn raw_path_is_not_normalized() -> TestResult {
    let server = EchoServer::start().await?;
    let mut stream = TcpStream::connect(server.addr).await?;
    let target = "//a/%2e%2E/./b/../%2fc";
    let req = format!("GET {target}?q=%41 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let raw = String::from_utf8(raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no header end")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_str(body)?;
    assert_eq!(v["path"], target);
    assert_eq!(v["query"], "q=%41");
    assert_eq!(v["bodyBytes"], 0);
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn http2_prior_knowledge() -> TestResult {
    let server = EchoServer::start().await?;
    let stream = TcpStream::connect(server.addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::new(Full::new(Bytes::from_static(b"h2 body")));
    *req.method_mut() = hyper::Method::PUT;
    *req.uri_mut() = format!("http://{}/h2//x?status=503", server.addr).parse()?;
    let resp = sender.send_request(req).await?;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let v = json_body(resp).await?;
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["path"], "/h2//x");
    assert_eq!(v["bodyBytes"], 7);
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn download_streams_pattern() -> TestResult {
    let server = EchoServer::start().await?;
    let n = 5_000_000;
    let resp = send_h1(server.addr, get(server.addr, &format!("/dl?download={n}"))).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/octet-stream");
    assert_eq!(resp.headers()[CONTENT_LENGTH], n.to_string().as_str());
    assert_eq!(resp.headers()["x-echo"], "1");
    let advertised = resp.headers()["x-body-sha256"].to_str()?.to_owned();
    assert_eq!(advertised, pattern_sha256(n));
    assert_eq!(hash_body(resp.into_body()).await?, (n, advertised));
    // The client re-buffers, so check the server's framing on the body itself.
    let mut body = PatternBody { sent: 0, len: n };
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        frames.push(frame?.into_data().map_err(|_| "non-data frame")?.len());
    }
    assert!(frames.iter().all(|&f| f <= CHUNK) && frames.iter().sum::<usize>() == n as usize);
    assert_eq!(frames.len(), (n as usize).div_ceil(CHUNK));
    // Independent check of the pattern definition on a small size.
    let small: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(pattern_sha256(1000), hex(&Sha256::digest(&small)));
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn delay_and_status() -> TestResult {
    let server = EchoServer::start().await?;
    let started = Instant::now();
    let resp = send_h1(
        server.addr,
        get(server.addr, "/slow?delay_ms=300&status=503"),
    )
    .await?;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["x-echo"], "1");
    assert_eq!(json_body(resp).await?["query"], "delay_ms=300&status=503");
    let resp = send_h1(server.addr, get(server.addr, "/?status=abc")).await?;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    server.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn drop_keeps_serving_and_shutdown_closes_listener() -> TestResult {
    let dropped = EchoServer::start().await?;
    let addr = dropped.addr;
    drop(dropped); // the runtime reaps its task when this test ends
    assert_eq!(
        send_h1(addr, get(addr, "/")).await?.status(),
        StatusCode::OK
    );

    let server = EchoServer::start_on(TcpListener::bind(("127.0.0.1", 0)).await?).await?;
    let addr = server.addr;
    assert_eq!(
        send_h1(addr, get(addr, "/")).await?.status(),
        StatusCode::OK
    );
    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    Ok(())
}
