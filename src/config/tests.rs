use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let c = Config::from_str(
        Path::new("/etc/sg/scopegate.yaml"),
        "upstream: { url: http://127.0.0.1:3000 }\npolicy: p.yaml\n",
    )
    .unwrap();
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9901");
    assert_eq!(c.policy, Path::new("/etc/sg/p.yaml"));
    assert_eq!(c.limits.max_header_bytes, 16 * 1024);
    assert_eq!(c.limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.upstream.timeout, Duration::from_secs(30));
    assert_eq!(c.upstream.max_idle_connections, 64);
    assert_eq!(c.identity_headers.scopes, "X-Auth-Scopes");
}

#[test]
fn units_and_cidrs_parse() {
    let text = "upstream: { url: http://127.0.0.1:3000, timeout: 500ms, connect_timeout: 1s, max_idle_connections: 8 }\npolicy: /p.yaml\nlimits: { max_header_bytes: 32KiB, max_token_bytes: 4096 }\nforwarded: { trusted_proxies: [10.0.0.0/8, \"::1/128\"] }\n";
    let c = Config::from_str(Path::new("c.yaml"), text).unwrap();
    assert_eq!(c.upstream.timeout, Duration::from_millis(500));
    assert_eq!(c.upstream.max_idle_connections, 8);
    assert_eq!(c.limits.max_header_bytes, 32 * 1024);
    assert_eq!(c.limits.max_token_bytes, 4096);
    assert_eq!(c.forwarded.trusted_proxies.len(), 2);
}

#[test]
fn mistakes_are_located() {
    let e = Config::from_str(
        Path::new("c.yaml"),
        "upstream: { url: http://x:1 }\npolicy: p\nlimts: {}\n",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("c.yaml:3:1: unknown field `limts`"),
        "{e}"
    );
    let e = Config::from_str(
        Path::new("c.yaml"),
        "upstream: { url: http://x:1, timeout: soon }\npolicy: p\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("invalid duration `soon`"), "{e}");
    let e = Config::from_str(
        Path::new("c.yaml"),
        "upstream: { url: ftp://x }\npolicy: p\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("must be http://host:port"), "{e}");
}

#[test]
fn header_limits_hyper_cannot_enforce_are_refused() {
    let e = Config::from_str(
        Path::new("c.yaml"),
        "upstream: { url: http://x:1 }\npolicy: p\nlimits: { max_header_bytes: 2KiB }\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("at least 8KiB"), "{e}");
}

#[test]
fn tls_and_https_upstreams_are_accepted_and_paths_resolved() {
    let text = "upstream: { url: \"https://api.internal:8443\", ca: ca.pem, http2: true }\npolicy: p.yaml\ntls: { cert: tls.crt, key: tls.key, client_ca: /etc/ca.crt }\n";
    let c = Config::from_str(Path::new("/etc/sg/c.yaml"), text).unwrap();
    let tls = c.tls.as_ref().unwrap();
    assert_eq!(tls.cert, Path::new("/etc/sg/tls.crt"));
    assert_eq!(tls.key, Path::new("/etc/sg/tls.key"));
    assert_eq!(tls.client_ca.as_deref(), Some(Path::new("/etc/ca.crt")));
    assert_eq!(c.upstream.ca.as_deref(), Some(Path::new("/etc/sg/ca.pem")));
    assert!(c.upstream.http2);
}

#[test]
fn a_ca_for_a_plain_http_upstream_and_other_schemes_are_refused() {
    for (text, says) in [
        (
            "upstream: { url: \"http://127.0.0.1:3000\", ca: ca.pem }\npolicy: p\n",
            "upstream.ca is only used with an https",
        ),
        (
            "upstream: { url: \"ftp://127.0.0.1:3000\" }\npolicy: p\n",
            "must be http://host:port or https://host:port",
        ),
        (
            "upstream: { url: \"http://x:1\" }\npolicy: p\ntls: { cert: a }\n",
            "key",
        ),
    ] {
        let e = Config::from_str(Path::new("c.yaml"), text).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[test]
fn reload_section_defaults_and_overrides() {
    let base = "upstream: { url: http://127.0.0.1:3000 }\npolicy: p.yaml\n";
    let c = Config::from_str(Path::new("c.yaml"), base).unwrap();
    assert!(c.reload.watch);
    assert_eq!(c.reload.poll_interval, Duration::from_secs(1));
    let text = format!("{base}reload: {{ watch: false, poll_interval: 250ms }}\n");
    let c = Config::from_str(Path::new("c.yaml"), &text).unwrap();
    assert!(!c.reload.watch);
    assert_eq!(c.reload.poll_interval, Duration::from_millis(250));
    let bad = format!("{base}reload: {{ wach: false }}\n");
    assert!(Config::from_str(Path::new("c.yaml"), &bad).is_err());
}
