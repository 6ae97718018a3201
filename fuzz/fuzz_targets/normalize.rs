//! The path normalizer on arbitrary bytes: it never panics, and whatever it accepts is
//! in normal form and normalizes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::normalize::{NormalizeOptions, normalize_path};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    for allow_semicolons in [false, true] {
        let opts = NormalizeOptions { allow_semicolons };
        let Ok(once) = normalize_path(path, opts) else {
            continue;
        };
        assert!(once.starts_with('/'), "{path:?} -> {once:?}");
        for bad in [
            "//", "/./", "/../", "%2F", "%2f", "%5C", "%5c", "\\", "#", "\0",
        ] {
            assert!(!once.contains(bad), "{path:?} -> {once:?} contains {bad:?}");
        }
        assert!(
            !once.ends_with("/.") && !once.ends_with("/.."),
            "{path:?} -> {once:?}"
        );
        if !allow_semicolons {
            assert!(
                !once.contains(';') && !once.contains("%3B"),
                "{path:?} -> {once:?}"
            );
        }
        assert!(path.is_empty() || once.len() <= path.len(), "{path:?} grew");
        let twice = normalize_path(&once, opts);
        assert_eq!(twice.as_deref(), Ok(&*once), "not idempotent on {path:?}");
    }
});
