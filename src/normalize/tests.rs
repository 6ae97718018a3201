use super::*;
use PathError::*;
use proptest::prelude::*;

const DENY: NormalizeOptions = NormalizeOptions {
    allow_semicolons: false,
};
const ALLOW: NormalizeOptions = NormalizeOptions {
    allow_semicolons: true,
};

/// (input, options, expected)
const CASES: &[(&str, NormalizeOptions, Result<&str, PathError>)] = &[
    // Plain paths stay as they are.
    ("/", DENY, Ok("/")),
    ("/a", DENY, Ok("/a")),
    ("/a/b/c", DENY, Ok("/a/b/c")),
    ("/x/", DENY, Ok("/x/")),
    ("/Users/ME", DENY, Ok("/Users/ME")),
    ("/a-b_c~d.e", DENY, Ok("/a-b_c~d.e")),
    ("/v1/items:search", DENY, Ok("/v1/items:search")),
    ("/a@b!$&'()*+,=", DENY, Ok("/a@b!$&'()*+,=")),
    ("/...", DENY, Ok("/...")),
    ("/.a/b.", DENY, Ok("/.a/b.")),
    ("/..a/a..", DENY, Ok("/..a/a..")),
    ("/é", DENY, Ok("/é")),
    // Empty, '*', relative.
    ("", DENY, Ok("/")),
    ("*", DENY, Err(NotAbsolute)),
    ("abc", DENY, Err(NotAbsolute)),
    ("a/b", DENY, Err(NotAbsolute)),
    ("./a", DENY, Err(NotAbsolute)),
    ("%2Fa", DENY, Err(NotAbsolute)),
    // Encoded unreserved characters are decoded.
    ("/%41", DENY, Ok("/A")),
    ("/%61bc", DENY, Ok("/abc")),
    ("/%7E", DENY, Ok("/~")),
    ("/%7euser", DENY, Ok("/~user")),
    ("/%2D%5F%30", DENY, Ok("/-_0")),
    ("/a%2Db", DENY, Ok("/a-b")),
    // Other escapes stay encoded, hex upper-cased.
    ("/%3a", DENY, Ok("/%3A")),
    ("/%3A", DENY, Ok("/%3A")),
    ("/a%20b", DENY, Ok("/a%20b")),
    ("/%25", DENY, Ok("/%25")),
    ("/%252F", DENY, Ok("/%252F")),
    ("/%252f", DENY, Ok("/%252f")),
    ("/%3f%3F", DENY, Ok("/%3F%3F")),
    ("/%c3%a9", DENY, Ok("/%C3%A9")),
    ("/%C3%A9", DENY, Ok("/%C3%A9")),
    ("/caf%C3%A9/x", DENY, Ok("/caf%C3%A9/x")),
    ("/%E2%82%AC", DENY, Ok("/%E2%82%AC")),
    ("/%F0%9F%98%80", DENY, Ok("/%F0%9F%98%80")),
    // Encoded dots.
    ("/a/%2E/b", DENY, Ok("/a/b")),
    ("/a/%2e/b", DENY, Ok("/a/b")),
    ("/a/b/%2E%2E/c", DENY, Ok("/a/c")),
    ("/a/b/%2e%2E", DENY, Ok("/a/")),
    ("/a/b/.%2e/c", DENY, Ok("/a/c")),
    ("/a/b/%2E./c", DENY, Ok("/a/c")),
    ("/a/%2E%2E%2E", DENY, Ok("/a/...")),
    ("/%2Ea", DENY, Ok("/.a")),
    // Dot segments (RFC 3986 §5.2.4).
    ("/a/./b", DENY, Ok("/a/b")),
    ("/./a", DENY, Ok("/a")),
    ("/a/b/..", DENY, Ok("/a/")),
    ("/a/b/../", DENY, Ok("/a/")),
    ("/a/b/.", DENY, Ok("/a/b/")),
    ("/a/b/./", DENY, Ok("/a/b/")),
    ("/a/..", DENY, Ok("/")),
    ("/.", DENY, Ok("/")),
    ("/./", DENY, Ok("/")),
    ("/a/../b", DENY, Ok("/b")),
    ("/a/b/../../c", DENY, Ok("/c")),
    ("/a/./../b/./c/..", DENY, Ok("/b/")),
    ("/public/../admin", DENY, Ok("/admin")),
    // Repeated slashes merge; '//' never introduces an authority.
    ("//a", DENY, Ok("/a")),
    ("//admin", DENY, Ok("/admin")),
    ("///admin/x", DENY, Ok("/admin/x")),
    ("/a//b", DENY, Ok("/a/b")),
    ("/a///b//c", DENY, Ok("/a/b/c")),
    ("/a//", DENY, Ok("/a/")),
    ("/a///", DENY, Ok("/a/")),
    ("//", DENY, Ok("/")),
    ("///", DENY, Ok("/")),
    ("/a//..", DENY, Ok("/")),
    ("//./a//../b", DENY, Ok("/b")),
    // Above the root, in several spellings.
    ("/..", DENY, Err(AboveRoot)),
    ("/../", DENY, Err(AboveRoot)),
    ("/../a", DENY, Err(AboveRoot)),
    ("/a/../..", DENY, Err(AboveRoot)),
    ("/a/../../b", DENY, Err(AboveRoot)),
    ("/%2e%2e", DENY, Err(AboveRoot)),
    ("/%2E%2E/a", DENY, Err(AboveRoot)),
    ("/.%2e", DENY, Err(AboveRoot)),
    ("/a/%2e%2e/%2E%2E", DENY, Err(AboveRoot)),
    ("//..", DENY, Err(AboveRoot)),
    ("/./..", DENY, Err(AboveRoot)),
    // Encoded slash.
    ("/a%2Fb", DENY, Err(EncodedSlash)),
    ("/a%2fb", DENY, Err(EncodedSlash)),
    ("/%2F", DENY, Err(EncodedSlash)),
    ("/..%2F..%2Fetc", DENY, Err(EncodedSlash)),
    // Backslash.
    ("/a\\b", DENY, Err(Backslash)),
    ("/\\admin", DENY, Err(Backslash)),
    ("/a%5Cb", DENY, Err(Backslash)),
    ("/a%5cb", DENY, Err(Backslash)),
    // NUL and control characters.
    ("/a%00", DENY, Err(Nul)),
    ("/a\0b", DENY, Err(Nul)),
    ("/a%0A", DENY, Err(ControlChar)),
    ("/a%0d%0a", DENY, Err(ControlChar)),
    ("/a%1F", DENY, Err(ControlChar)),
    ("/a%7F", DENY, Err(ControlChar)),
    ("/a\tb", DENY, Err(ControlChar)),
    ("/a\nb", DENY, Err(ControlChar)),
    ("/a\x7fb", DENY, Err(ControlChar)),
    // Fragment.
    ("/a#b", DENY, Err(Fragment)),
    ("/a/#", DENY, Err(Fragment)),
    ("/a%23b", DENY, Err(Fragment)),
    ("/a%23", ALLOW, Err(Fragment)),
    // Semicolons.
    ("/a;b", DENY, Err(Semicolon)),
    ("/a;jsessionid=1", DENY, Err(Semicolon)),
    ("/..;/admin", DENY, Err(Semicolon)),
    ("/a%3Bb", DENY, Err(Semicolon)),
    ("/a%3bb", DENY, Err(Semicolon)),
    ("/a;b", ALLOW, Ok("/a;b")),
    ("/a;b=1/c", ALLOW, Ok("/a;b=1/c")),
    ("/a%3Bb", ALLOW, Ok("/a%3Bb")),
    ("/a%3bb", ALLOW, Ok("/a%3Bb")),
    ("/a//b;c/./d", ALLOW, Ok("/a/b;c/d")),
    // Servers that strip path parameters would read these as dot segments.
    ("/public/..;/admin", ALLOW, Err(DotSegmentParameter)),
    ("/public/.;x/admin", ALLOW, Err(DotSegmentParameter)),
    ("/public/%2E%2E;/admin", ALLOW, Err(DotSegmentParameter)),
    ("/public/..%3B/admin", ALLOW, Err(DotSegmentParameter)),
    ("/public/..;/admin", DENY, Err(Semicolon)),
    ("/a/...;x", ALLOW, Ok("/a/...;x")),
    // Invalid percent-encodings.
    ("/%", DENY, Err(BadPercentEncoding)),
    ("/a%", DENY, Err(BadPercentEncoding)),
    ("/%4", DENY, Err(BadPercentEncoding)),
    ("/%4/", DENY, Err(BadPercentEncoding)),
    ("/%zz", DENY, Err(BadPercentEncoding)),
    ("/%g1", DENY, Err(BadPercentEncoding)),
    ("/%1g", DENY, Err(BadPercentEncoding)),
    ("/%%41", DENY, Err(BadPercentEncoding)),
    ("/%+1", DENY, Err(BadPercentEncoding)),
    ("/%é", DENY, Err(BadPercentEncoding)),
    ("/%4é", DENY, Err(BadPercentEncoding)),
    // Invalid UTF-8 in the decoded bytes.
    ("/%C3%28", DENY, Err(InvalidUtf8)),
    ("/%FF", DENY, Err(InvalidUtf8)),
    ("/%ff", DENY, Err(InvalidUtf8)),
    ("/%C0%AF", DENY, Err(InvalidUtf8)),
    ("/%C1%81", DENY, Err(InvalidUtf8)),
    ("/%E0%80%AF", DENY, Err(InvalidUtf8)),
    ("/%ED%A0%80", DENY, Err(InvalidUtf8)),
    ("/%F4%90%80%80", DENY, Err(InvalidUtf8)),
    ("/%F5%80%80%80", DENY, Err(InvalidUtf8)),
    ("/%80", DENY, Err(InvalidUtf8)),
    ("/%C3", DENY, Err(InvalidUtf8)),
    ("/%C3/", DENY, Err(InvalidUtf8)),
    ("/%C3/%A9", DENY, Err(InvalidUtf8)),
    ("/%C3a", DENY, Err(InvalidUtf8)),
    ("/%C3é", DENY, Err(InvalidUtf8)),
    ("/%E2%82", DENY, Err(InvalidUtf8)),
    // First error met, scanning left to right, wins.
    ("/..%2F", DENY, Err(EncodedSlash)),
    ("/../%2F", DENY, Err(AboveRoot)),
    ("/a;%2F", DENY, Err(Semicolon)),
    ("/a;%2F", ALLOW, Err(EncodedSlash)),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for &(input, opts, expected) in CASES {
        let got = normalize_path(input, opts);
        if got.as_deref().map_err(|e| *e) != expected {
            failures.push(format!(
                "{input:?} ({opts:?}): got {got:?}, want {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn table_outputs_are_fixed_points() {
    for &(input, opts, expected) in CASES {
        if let Ok(want) = expected {
            let again = normalize_path(want, opts);
            assert!(
                matches!(again, Ok(Cow::Borrowed(s)) if s == want),
                "{input:?} -> {want:?} -> {again:?}"
            );
        }
    }
}

#[test]
fn already_normal_paths_are_borrowed() {
    for p in ["/", "/a", "/a/b/", "/%C3%A9", "/a;b", "/...", "/x/%20y"] {
        let got = normalize_path(p, ALLOW);
        assert!(matches!(got, Ok(Cow::Borrowed(_))), "{p:?}: {got:?}");
    }
    assert!(matches!(normalize_path("", DENY), Ok(Cow::Borrowed("/"))));
}

#[test]
fn changed_paths_are_owned_without_growing() {
    for input in ["//a", "/a/./b", "/%41", "/%3a", "/a/..", "/a/b/."] {
        match normalize_path(input, DENY) {
            Ok(Cow::Owned(s)) => assert!(s.capacity() >= s.len() && s.len() <= input.len()),
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

#[test]
fn errors_display() {
    assert_eq!(EncodedSlash.to_string(), "encoded '/' in path");
    assert_eq!(AboveRoot.to_string(), "'..' climbs above the root");
}

#[test]
fn decode_segment_cases() {
    assert!(matches!(decode_segment("abc"), Cow::Borrowed("abc")));
    assert!(matches!(decode_segment(""), Cow::Borrowed("")));
    assert_eq!(decode_segment("caf%C3%A9"), "café");
    assert_eq!(decode_segment("a%20b%3A"), "a b:");
    assert_eq!(decode_segment("%25"), "%");
    assert_eq!(decode_segment("a;b"), "a;b");
    // Not normalized input: no panic, lossy.
    assert_eq!(decode_segment("%zz%4"), "%zz%4");
    assert_eq!(decode_segment("%FF"), "\u{FFFD}");
}

/// Path-ish strings from the alphabet `/ . % ; \\ #`, hex digits and letters, weighted
/// towards valid escapes and dot segments so that most inputs are accepted and many
/// need rewriting.
fn pathish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        6 => proptest::sample::select(&[
            "/", ".", ";", "a", "B", "z", "0", "9", "e", "E", "f", "F", "c", "C", "2",
        ][..]),
        3 => proptest::sample::select(&[
            "//", "..", "%2e", "%2E", "%41", "%7e", "%3b", "%3A", "%c3%a9", "%20", "%25",
        ][..]),
        1 => proptest::sample::select(&[
            "%", "\\", "#", "%2f", "%5c", "%00", "%ff", "%C3", "%A9", "%23", "%0a",
        ][..]),
    ];
    let lead = prop_oneof![7 => Just("/"), 1 => Just("")];
    (lead, proptest::collection::vec(token, 0..24))
        .prop_map(|(lead, tokens)| format!("{lead}{}", tokens.concat()))
}

fn assert_normal_form(out: &str) {
    assert!(out.starts_with('/'), "{out:?}");
    for bad in ["//", "/./", "/../", "%2F", "%5C"] {
        assert!(!out.contains(bad), "{out:?} contains {bad:?}");
    }
    assert!(!out.ends_with("/.") && !out.ends_with("/.."), "{out:?}");
    let bytes = out.as_bytes();
    for (i, _) in out.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
        assert!(
            hex.len() == 2
                && hex
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)),
            "{out:?}: bad escape at {i}"
        );
        let byte = u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap();
        assert!(!is_unreserved(byte), "{out:?}: needless escape at {i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn idempotent(p in pathish(), allow in any::<bool>()) {
        let opts = NormalizeOptions { allow_semicolons: allow };
        if let Ok(once) = normalize_path(&p, opts) {
            let twice = normalize_path(&once, opts);
            prop_assert_eq!(twice.as_deref(), Ok(&*once));
        }
    }

    #[test]
    fn outputs_are_in_normal_form(p in pathish(), allow in any::<bool>()) {
        let opts = NormalizeOptions { allow_semicolons: allow };
        if let Ok(out) = normalize_path(&p, opts) {
            assert_normal_form(&out);
            prop_assert!(p.is_empty() || out.len() <= p.len());
            if !allow {
                prop_assert!(!out.contains(';') && !out.contains("%3B"));
            }
        }
    }

    #[test]
    fn normal_outputs_are_borrowed(p in pathish(), allow in any::<bool>()) {
        let opts = NormalizeOptions { allow_semicolons: allow };
        if let Ok(once) = normalize_path(&p, opts) {
            let twice = normalize_path(&once, opts);
            prop_assert!(matches!(twice, Ok(Cow::Borrowed(s)) if s == &*once), "{:?}", twice);
        }
    }

    #[test]
    fn any_string_never_panics(p in any::<String>(), allow in any::<bool>()) {
        let opts = NormalizeOptions { allow_semicolons: allow };
        if let Ok(out) = normalize_path(&p, opts) {
            assert_normal_form(&out);
        }
    }

    #[test]
    fn accepted_outputs_decode_cleanly(p in pathish()) {
        // Whatever is accepted decodes to valid UTF-8 without NUL.
        if let Ok(out) = normalize_path(&p, DENY) {
            let decoded = percent_encoding::percent_decode_str(&out).decode_utf8();
            prop_assert!(decoded.is_ok_and(|d| !d.contains('\0')));
        }
    }
}
