//! `scopegate demo` keeps its promise: each example it prints gets the status it prints.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use scopegate::tooling::demo::Demo;

#[tokio::test]
async fn every_printed_example_gets_its_printed_status() {
    let demo = Demo::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    assert!(demo.examples.len() >= 8);
    let mut seen = std::collections::BTreeSet::new();
    for ex in &demo.examples {
        let mut req = Request::builder()
            .method(ex.method)
            .uri(format!("http://{}{}", demo.addr, ex.path));
        if let Some(t) = &ex.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = client
            .request(req.body(Empty::new()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            status,
            ex.expect,
            "{}: {}",
            ex.what,
            String::from_utf8_lossy(&body)
        );
        assert!(ex.curl(demo.addr).contains(ex.path));
        seen.insert(status);
    }
    // The demo shows allowed and refused requests alike.
    for status in [200, 401, 403, 405] {
        assert!(seen.contains(&status), "no example answers {status}");
    }
    demo.shutdown().await;
}
