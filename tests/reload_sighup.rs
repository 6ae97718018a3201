//! SIGHUP forces a reload attempt at once, with watching and polling both off.
//!
//! Its own test binary: the signal goes to the whole test process.

mod common;

use std::time::Instant;

use common::Harness;
use common::reload::{CLOSED, OPEN, rename_write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_changed_file() {
    let h = Harness::start(OPEN, "reload:\n  watch: false\n  poll_interval: 0s\n").await;
    assert_eq!(h.flip().await, 200);
    rename_write(&h.policy_path(), CLOSED);
    // Nothing else would notice the change: the file is only read on SIGHUP.
    assert_eq!(h.flip().await, 200);
    let t = Instant::now();
    let pid = std::process::id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let took = h.await_flip(401, t).await;
    eprintln!("SIGHUP applied after {took:?}");
    h.stop().await;
}
