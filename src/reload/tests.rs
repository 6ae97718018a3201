//! The watch-event mapping and the reload thread's answer to a rescan.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify_debouncer_full::DebouncedEvent;
use notify_debouncer_full::notify::event::{CreateKind, Flag, ModifyKind, RenameMode};
use notify_debouncer_full::notify::{Error, Event, EventKind};

use super::{Msg, Reloader, message, run};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::policy::{LivePolicy, Policy};

fn debounced(event: Event) -> DebouncedEvent {
    DebouncedEvent::new(event, Instant::now())
}

#[test]
fn changed_paths_are_passed_on() {
    let events = vec![
        debounced(Event::new(EventKind::Create(CreateKind::File)).add_path("/p/a".into())),
        debounced(
            Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
                .add_path("/p/.tmp".into())
                .add_path("/p/policy.yaml".into()),
        ),
    ];
    let paths = ["/p/a", "/p/.tmp", "/p/policy.yaml"]
        .map(PathBuf::from)
        .to_vec();
    assert_eq!(message(Ok(events)), Msg::Changed(paths));
}

/// A rescan notice carries no paths: read as a change to nothing, a lost event
/// would wait for the poll (or forever, with polling off).
#[test]
fn a_rescan_notice_looks_at_every_file() {
    let events = vec![
        debounced(Event::new(EventKind::Other).set_flag(Flag::Rescan)),
        debounced(Event::new(EventKind::Create(CreateKind::File)).add_path("/p/a".into())),
    ];
    assert_eq!(message(Ok(events)), Msg::Rescan);
}

#[test]
fn a_watch_error_looks_at_every_file() {
    assert_eq!(
        message(Err(vec![Error::generic("queue overflow")])),
        Msg::Rescan
    );
}

/// With watching and polling both off, a rescan is the only thing that can bring a
/// changed file in.
#[test]
fn the_reload_thread_applies_a_change_on_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    let write = |scope: &str| {
        let text = format!(
            "version: 1\nscopes: {{ {scope}: x }}\nroutes:\n  - {{ path: /a, scopes: [{scope}] }}\n"
        );
        std::fs::write(&policy, text).unwrap();
    };
    write("a:read");
    let file = dir.path().join("scopegate.yaml");
    let text = "upstream: { url: \"http://127.0.0.1:9\" }\npolicy: policy.yaml\n";
    let config = Config::from_str(&file, text).unwrap();
    let live = Arc::new(LivePolicy::new(Policy::load(&policy).unwrap()));
    let auth = Arc::new(Authenticator::new(&config.auth, 8192, dir.path(), &|_| None).unwrap());
    let first = live.load().version.clone();
    let reloader = Reloader::new(&config, live.clone(), auth);

    let (tx, rx) = std::sync::mpsc::channel();
    let (armed_tx, _armed) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::spawn(move || run(reloader, rx, None, Duration::ZERO, armed_tx));
    write("b:read");
    tx.send(Msg::Rescan).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while live.load().version == first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    tx.send(Msg::Stop).unwrap();
    thread.join().unwrap();
    assert_ne!(live.load().version, first, "the rescan did not reload");
}
