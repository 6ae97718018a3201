//! Hot reload on real files and a real running gateway (issue 3): each way operators
//! change a file applies within 3 s; broken files keep the policy in force.

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::reload::{CLOSED, OPEN, rename_write, version_of};
use common::{Harness, Setup};
use serde_json::Value;

/// Each test times a reload against a 3 s budget, and one of them keeps the CPU busy
/// with clients; run them one at a time so no test's load eats another's budget.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editor_rename_write_applies() {
    let _serial = SERIAL.lock().await;
    let h = Harness::start(OPEN, "").await;
    assert_eq!(h.flip().await, 200);
    let t = Instant::now();
    rename_write(&h.policy_path(), CLOSED);
    let took = h.await_flip(401, t).await;
    eprintln!("rename-write applied after {took:?}");
    let v = h.admin_get("/v1/policy").await.json();
    assert_eq!(v["version"], version_of(CLOSED));
    assert_eq!(v["lastError"], Value::Null);
    h.stop().await;
}

/// The policy a reload replaced stays whole while a request still decides on it, and its
/// memory is released once that request is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_policy_is_freed_once_no_request_holds_it() {
    let _serial = SERIAL.lock().await;
    let h = Harness::start(OPEN, "").await;
    let in_flight = h.policy.load();
    let old = Arc::downgrade(&in_flight);
    let t = Instant::now();
    rename_write(&h.policy_path(), CLOSED);
    h.await_flip(401, t).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        in_flight.version,
        version_of(OPEN),
        "the request's snapshot changed"
    );
    drop(in_flight);
    let deadline = Instant::now() + Duration::from_secs(2);
    while old.upgrade().is_some() {
        assert!(
            Instant::now() < deadline,
            "the replaced policy was never freed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_truncate_and_write_applies() {
    let _serial = SERIAL.lock().await;
    let h = Harness::start(OPEN, "").await;
    assert_eq!(h.flip().await, 200);
    let t = Instant::now();
    // Same inode, truncated, then written in two pieces as a slow writer would.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(h.policy_path())
        .unwrap();
    let (first, rest) = CLOSED.split_at(CLOSED.len() / 2);
    f.write_all(first.as_bytes()).unwrap();
    f.flush().unwrap();
    f.write_all(rest.as_bytes()).unwrap();
    drop(f);
    h.await_flip(401, t).await;
    // The half-written file may have been seen and refused on the way; the final one wins.
    let v = h
        .await_policy_status(t, "error cleared", |v| v["lastError"].is_null())
        .await;
    assert_eq!(v["version"], version_of(CLOSED));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_data_symlink_swap_applies() {
    let _serial = SERIAL.lock().await;
    let h = Harness::start(OPEN, "").await;
    let dir = h.dir.path();
    // Turn the file into what a ConfigMap mount looks like:
    // policy.yaml -> ..data/policy.yaml, ..data -> ..v1
    std::fs::create_dir(dir.join("..v1")).unwrap();
    std::fs::write(dir.join("..v1/policy.yaml"), OPEN).unwrap();
    symlink("..v1", dir.join("..data")).unwrap();
    symlink("..data/policy.yaml", dir.join("policy.yaml.link")).unwrap();
    std::fs::rename(dir.join("policy.yaml.link"), dir.join("policy.yaml")).unwrap();
    assert_eq!(h.flip().await, 200);

    // The kubelet's update: a new timestamped dir, a new link, renamed over ..data.
    let t = Instant::now();
    std::fs::create_dir(dir.join("..v2")).unwrap();
    std::fs::write(dir.join("..v2/policy.yaml"), CLOSED).unwrap();
    symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..v1")).unwrap();
    let took = h.await_flip(401, t).await;
    eprintln!("..data swap applied after {took:?}");

    // And back again, to show the watch survives the swap.
    let t = Instant::now();
    std::fs::create_dir(dir.join("..v3")).unwrap();
    std::fs::write(dir.join("..v3/policy.yaml"), OPEN).unwrap();
    symlink("..v3", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..v2")).unwrap();
    h.await_flip(200, t).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_fallback_applies_with_watching_off() {
    let _serial = SERIAL.lock().await;
    let h = Harness::start(OPEN, "reload:\n  watch: false\n  poll_interval: 300ms\n").await;
    assert_eq!(h.flip().await, 200);
    let t = Instant::now();
    rename_write(&h.policy_path(), CLOSED);
    let took = h.await_flip(401, t).await;
    eprintln!("poll applied after {took:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_to_a_file_in_another_directory_is_followed() {
    let _serial = SERIAL.lock().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.yaml");
    std::fs::write(&target, OPEN).unwrap();
    let h = Harness::start(OPEN, "").await;
    symlink(&target, h.dir.path().join("policy.yaml.link")).unwrap();
    std::fs::rename(h.dir.path().join("policy.yaml.link"), h.policy_path()).unwrap();
    // Let the gateway notice the link (same bytes: nothing changes), then edit the target.
    h.await_policy_status(Instant::now(), "still the same", |v| {
        v["version"] == version_of(OPEN).as_str()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let t = Instant::now();
    rename_write(&target, CLOSED);
    h.await_flip(401, t).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_file_reloads_and_a_broken_one_keeps_the_keys() {
    let _serial = SERIAL.lock().await;
    let h = Harness::start_with(Setup {
        policy: common::ORDERS_POLICY,
        api_keys: true,
        ..Setup::default()
    })
    .await;
    let get = |key: &'static str| {
        let h = &h;
        async move {
            h.request("GET", "/orders", &[("X-API-Key", key)])
                .await
                .status
                .as_u16()
        }
    };
    assert_eq!(get("test-api-key-1").await, 200);
    let keys = h.dir.path().join("api_keys.yaml");
    // Keep only the second key (its entry in the fixture) in the file.
    let only_second: String = common::API_KEYS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .enumerate()
        .filter(|(i, _)| *i == 0 || *i >= 5)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert!(only_second.contains("reporter") && !only_second.contains("ci-bot"));
    let t = Instant::now();
    rename_write(&keys, &only_second);
    loop {
        if get("test-api-key-1").await == 401 {
            break;
        }
        assert!(
            t.elapsed() < common::reload::APPLY_WITHIN,
            "key 1 still accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get("test-api-key-2").await, 200, "the new file's key works");

    // A broken key file is refused; the keys in force stay. A policy edit written after
    // it is applied after the key file was looked at (one reload thread, in order).
    std::fs::write(&keys, "keys:\n  - sha256: nothex\n    subject: x\n").unwrap();
    let edited = format!("{}\n# edited\n", common::ORDERS_POLICY);
    let t = Instant::now();
    rename_write(&h.policy_path(), &edited);
    h.await_policy_status(t, "policy edit applied", |v| {
        v["version"] == version_of(&edited).as_str()
    })
    .await;
    assert_eq!(
        get("test-api-key-2").await,
        200,
        "a broken key file changed nothing"
    );
    assert_eq!(get("test-api-key-1").await, 401);
    h.stop().await;
}

/// Policy A allows `/flip` to readers (who hold `a:read` there); policy B requires
/// `b:write`, which readers (holding `b:read` there) lack. An answer made from one
/// snapshot is either "200, upstream saw X-Auth-Scopes: a:read" or "403, required
/// b:write"; anything else mixes the two.
const FLIP_A: &str = "version: 1\nscopes:\n  a:read: A\n  b:read: B\n  b:write: W\n\
roles:\n  reader:\n    scopes: [a:read]\nroutes:\n  - path: /flip\n    methods: [GET]\n    scopes: [a:read]\n";
const FLIP_B: &str = "version: 1\nscopes:\n  a:read: A\n  b:read: B\n  b:write: W\n\
roles:\n  reader:\n    scopes: [b:read]\nroutes:\n  - path: /flip\n    methods: [GET]\n    scopes: [b:write]\n";

#[derive(Debug, PartialEq, Eq)]
enum Seen {
    A,
    B,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_load_never_fail_or_mix_a_request() {
    let _serial = SERIAL.lock().await;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let h = Arc::new(Harness::start(FLIP_A, "").await);
    let token = h.token(&["reader"], &[], "r1", &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (h, stop, token) = (h.clone(), stop.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let auth = common::bearer(&token);
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = h.request("GET", "/flip", &[(auth.0, &auth.1)]).await;
                assert!(r.status.as_u16() < 500, "5xx during reloads: {}", r.brief());
                let kind = match r.status.as_u16() {
                    200 => {
                        assert_eq!(r.echo().header("x-auth-scopes"), Some("a:read"), "mixed");
                        Seen::A
                    }
                    403 => {
                        let v = r.json();
                        assert_eq!(v["reason"], "insufficient_scope", "{v}");
                        assert_eq!(v["requiredScopes"], serde_json::json!(["b:write"]), "{v}");
                        Seen::B
                    }
                    _ => panic!("neither policy answers like this: {}", r.brief()),
                };
                seen.push(kind);
            }
            seen
        }));
    }
    for i in 0..50 {
        let text = if i % 2 == 0 { FLIP_B } else { FLIP_A };
        let t = Instant::now();
        rename_write(&h.policy_path(), text);
        h.await_policy_status(t, "reload applied", |v| {
            v["version"] == version_of(text).as_str()
        })
        .await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for c in clients {
        seen.extend(c.await.expect("a client failed"));
    }
    let a = seen.iter().filter(|s| **s == Seen::A).count();
    let b = seen.len() - a;
    eprintln!(
        "{} requests during 50 reloads: {a} as A, {b} as B",
        seen.len()
    );
    assert!(a > 0 && b > 0, "both policies were in force at some point");
    let v = h.admin_get("/v1/policy").await.json();
    assert_eq!(v["lastError"], Value::Null);
}
