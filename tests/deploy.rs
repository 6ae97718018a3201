//! The deployment files under `deploy/` against the real gateway and against each other:
//! the sidecar example's ConfigMap files run a real gateway whose admin port answers the
//! probes its Deployment declares; every shipped config passes `scopegate check`; ports,
//! grace periods and file paths agree between configs and manifests; the Prometheus
//! Operator objects select what the manifests define.
//!
//! Schema validation of the manifests is `.ci/run`'s job (kubernetes-validate, promtool).

mod common;
mod manifests;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{IO_TIMEOUT, Resp, parse_raw_response, raw_request};
use manifests::{
    config_file_in_mount, container, container_port, deploy_dir, manifests, materialize, object,
    prestop_sleep, run_check, secs,
};
use scopegate::app::{App, Listeners};
use scopegate::config::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Shipped configs `scopegate check` cannot accept on this build yet, with the message
/// it gives and why. The test fails once one passes, so the entry gets removed.
const CHECK_PENDING: &[(&str, &str, &str)] = &[];

/// One GET on a fresh connection to `addr`.
async fn get(addr: SocketAddr, path: &str) -> Resp {
    let mut stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    stream
        .write_all(raw_request("GET", path, &[]).as_bytes())
        .await
        .expect("write request");
    let mut buf = Vec::new();
    tokio::time::timeout(IO_TIMEOUT, stream.read_to_end(&mut buf))
        .await
        .expect("response timed out")
        .expect("read response");
    parse_raw_response(&buf)
}

const SIDECAR: &str = "kubernetes/sidecar";
const SIDECAR_FILES: &[&str] = &["configmap.yaml", "deployment.yaml", "service.yaml"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_configmap_runs_a_gateway_that_answers_the_probes_as_declared() {
    let deployment = object(SIDECAR, SIDECAR_FILES, "Deployment", "orders-api");
    let gw = container(&deployment, "scopegate");
    let (volume, config_file) = config_file_in_mount(gw);
    let dir = materialize(SIDECAR, SIDECAR_FILES, &deployment, &volume);
    let config = Config::load(&dir.path().join(&config_file)).expect("sidecar config");

    // The probes: on the admin listener's port, which binds beyond loopback because the
    // kubelet connects to the pod IP.
    let live = &gw["livenessProbe"]["httpGet"];
    let ready = &gw["readinessProbe"]["httpGet"];
    for probe in [live, ready] {
        assert_eq!(
            container_port(gw, &probe["port"]),
            config.admin.listen.port(),
            "probe port vs admin.listen"
        );
    }
    assert!(
        config.admin.listen.ip().is_unspecified(),
        "the kubelet probes the pod IP: admin.listen must not be loopback"
    );
    // The Service sends clients to the gateway's proxy port, never to the admin port or
    // straight to the app.
    let service = object(SIDECAR, SIDECAR_FILES, "Service", "orders-api");
    for port in service["spec"]["ports"].as_array().expect("ports") {
        assert_eq!(
            container_port(gw, &port["targetPort"]),
            config.listen.port(),
            "Service targetPort vs listen"
        );
    }
    assert_ne!(config.listen.port(), config.admin.listen.port());
    let upstream: http::Uri = config.upstream.url.parse().expect("upstream url");
    assert_eq!(
        upstream.host(),
        Some("127.0.0.1"),
        "the app is reached on the pod's loopback"
    );
    // Termination: the preStop pause and the whole drain fit in the grace period.
    let grace = secs(&deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]);
    assert!(
        grace > prestop_sleep(gw) + config.limits.shutdown_grace.as_secs(),
        "terminationGracePeriodSeconds {grace} vs preStop + shutdown_grace"
    );

    // The real gateway on these files (listeners on loopback port 0 stand in for the
    // container ports checked above).
    let app = App::build(config, &|_: &str| None).expect("gateway from the sidecar files");
    let public = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let admin = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let (public_addr, admin_addr) = (
        public.local_addr().expect("addr"),
        admin.local_addr().expect("addr"),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run(Listeners { public, admin }, async {
        let _ = stopped.await;
    }));

    let live_path = live["path"].as_str().expect("liveness path");
    let ready_path = ready["path"].as_str().expect("readiness path");
    assert_eq!(get(admin_addr, live_path).await.status, 200, "{live_path}");
    // Ready once the policy and the issuer's keys are loaded (static keys: at once).
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let r = get(admin_addr, ready_path).await;
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ready_path} never became ready: {}",
            r.brief()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The proxy port is the gateway: it refuses unauthenticated callers itself, and the
    // admin paths are not served there.
    assert_eq!(get(public_addr, "/orders").await.status, 401);
    for path in [live_path, ready_path, "/metrics"] {
        let r = get(public_addr, path).await;
        assert_eq!(r.status, 403, "{path} on the proxy port: {}", r.brief());
        assert!(!r.body.starts_with(b"ok") && !r.body.starts_with(b"ready"));
    }

    let _ = stop.send(());
    tokio::time::timeout(IO_TIMEOUT, task)
        .await
        .expect("gateway stops")
        .expect("gateway task");
}

#[test]
fn every_shipped_config_passes_scopegate_check() {
    let mut results = Vec::new();
    // The Kubernetes examples, laid out as their volumes would be.
    for (dir, files, deployment, container_name) in [
        (SIDECAR, SIDECAR_FILES, "orders-api", "scopegate"),
        (
            "kubernetes/edge",
            &["configmap.yaml", "deployment.yaml"][..],
            "scopegate-edge",
            "scopegate",
        ),
    ] {
        let d = object(dir, files, "Deployment", deployment);
        let (volume, file) = config_file_in_mount(container(&d, container_name));
        let tmp = materialize(dir, files, &d, &volume);
        if dir == "kubernetes/edge" {
            // The Secret's certificate and key, as cert-manager would mount them.
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec!["api.example.com".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("self-signed certificate");
            let tls = tmp.path().join("tls");
            std::fs::create_dir_all(&tls).expect("tls dir");
            std::fs::write(tls.join("tls.crt"), cert.pem()).expect("write cert");
            std::fs::write(tls.join("tls.key"), key.serialize_pem()).expect("write key");
        }
        results.push((dir, run_check(&tmp.path().join(file), &[])));
    }
    // The systemd example, with the policy installed beside it as the unit's comment says.
    let tmp = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        deploy_dir().join("systemd/scopegate.yaml"),
        tmp.path().join("scopegate.yaml"),
    )
    .expect("copy config");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/orders.yaml"),
        tmp.path().join("policy.yaml"),
    )
    .expect("copy policy");
    let config = tmp.path().join("scopegate.yaml");
    let (ok, text) = run_check(&config, &[]);
    assert!(
        !ok && text.contains("SCOPEGATE_JWT_SECRET"),
        "the systemd example reads its HMAC secret from the environment: {text}"
    );
    results.push((
        "systemd",
        run_check(&config, &[("SCOPEGATE_JWT_SECRET", "not-a-real-secret")]),
    ));

    for (name, (ok, text)) in results {
        match CHECK_PENDING.iter().find(|(n, ..)| *n == name) {
            Some((_, expected, why)) => {
                assert!(
                    !ok,
                    "{name} passes `scopegate check` now ({why}): remove it from CHECK_PENDING"
                );
                assert!(
                    text.contains(expected),
                    "{name}: expected only the pending refusal ({why}), got: {text}"
                );
            }
            None => assert!(ok && text.starts_with("ok:"), "{name}: {text}"),
        }
    }
}

#[test]
fn edge_manifests_agree_with_the_edge_config() {
    const EDGE: &str = "kubernetes/edge";
    let files = &["configmap.yaml", "deployment.yaml", "service.yaml"];
    let deployment = object(EDGE, files, "Deployment", "scopegate-edge");
    let gw = container(&deployment, "scopegate");
    let cm = object(EDGE, files, "ConfigMap", "scopegate-edge-config");
    // Read as plain YAML, to compare with the manifests field by field.
    let config: Value =
        serde_saphyr::from_str(cm["data"]["scopegate.yaml"].as_str().expect("config text"))
            .expect("edge config YAML");
    let port = |key: &Value| -> u16 {
        let addr: SocketAddr = key
            .as_str()
            .expect("address")
            .parse()
            .expect("socket address");
        addr.port()
    };
    let listen = port(&config["listen"]);
    let admin = port(&config["admin"]["listen"]);
    assert!(
        config["admin"]["listen"]
            .as_str()
            .unwrap()
            .starts_with("0.0.0.0:")
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container_port(gw, &gw[probe]["httpGet"]["port"]),
            admin,
            "{probe}"
        );
    }
    let public = object(EDGE, files, "Service", "scopegate-edge");
    for p in public["spec"]["ports"].as_array().expect("ports") {
        assert_eq!(
            container_port(gw, &p["targetPort"]),
            listen,
            "public Service"
        );
    }
    let grace = secs(&deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]);
    let drain = scopegate::config::units::parse_duration(
        config["limits"]["shutdown_grace"]
            .as_str()
            .expect("shutdown_grace"),
    )
    .expect("duration");
    assert!(grace > prestop_sleep(gw) + drain.as_secs());

    // The TLS files the config names are the ones the Secret is projected to.
    let (volume, _) = config_file_in_mount(gw);
    let dir = materialize(EDGE, files, &deployment, &volume);
    for key in ["cert", "key"] {
        let file = config["tls"][key].as_str().expect("tls path");
        assert!(
            dir.path().join(file).is_file(),
            "tls.{key} {file} is not projected"
        );
    }
}

#[test]
fn prometheus_operator_objects_match_the_manifests() {
    let monitor = manifests("prometheus/servicemonitor.yaml")
        .into_iter()
        .next()
        .expect("a ServiceMonitor");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    let wanted = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    let endpoint_port = monitor["spec"]["endpoints"][0]["port"].clone();
    let job_label = monitor["spec"]["jobLabel"].as_str().expect("jobLabel");
    let selects = |svc: &Value| {
        wanted
            .iter()
            .all(|(k, v)| svc["metadata"]["labels"].get(k) == Some(v))
    };

    for (dir, deployment, metrics, public) in [
        (
            SIDECAR,
            "orders-api",
            "orders-api-scopegate-metrics",
            "orders-api",
        ),
        (
            "kubernetes/edge",
            "scopegate-edge",
            "scopegate-edge-metrics",
            "scopegate-edge",
        ),
    ] {
        let files = &["deployment.yaml", "service.yaml"];
        let d = object(dir, files, "Deployment", deployment);
        let gw = container(&d, "scopegate");
        let svc = object(dir, files, "Service", metrics);
        assert!(
            selects(&svc),
            "{metrics} is not selected by the ServiceMonitor"
        );
        // job="scopegate", as the alert rules and the dashboard expect.
        assert_eq!(
            svc["metadata"]["labels"][job_label], "scopegate",
            "{metrics}"
        );
        let port = svc["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == endpoint_port)
            .unwrap_or_else(|| panic!("{metrics} has no port {endpoint_port}"));
        assert_eq!(
            container_port(gw, &port["targetPort"]),
            container_port(gw, &Value::from("admin")),
            "{metrics} targets the admin port"
        );
        // The public Service is never scraped, and never carries the admin port.
        let public = object(dir, files, "Service", public);
        assert!(
            !selects(&public),
            "{dir}: the public Service must not be scraped"
        );
        for p in public["spec"]["ports"].as_array().expect("ports") {
            assert_ne!(
                container_port(gw, &p["targetPort"]),
                container_port(gw, &Value::from("admin")),
                "{dir}: the public Service carries the admin port"
            );
        }
        // The plain-Prometheus scrape job keeps containers named scopegate with a port
        // named admin (deploy/prometheus/prometheus.yml).
        assert!(
            gw["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "admin")
        );
    }

    // The operator's copy of the alert rules is the promtool-checked one.
    let rule = manifests("prometheus/prometheusrule.yaml")
        .into_iter()
        .next()
        .expect("a PrometheusRule");
    let alerts: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy_dir().join("prometheus/alerts.yml")).expect("alerts.yml"),
    )
    .expect("alerts.yml YAML");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"], alerts,
        "prometheusrule.yaml differs from alerts.yml"
    );
}

#[test]
fn systemd_unit_waits_for_the_drain_and_reloads_with_sighup() {
    let unit =
        std::fs::read_to_string(deploy_dir().join("systemd/scopegate.service")).expect("unit file");
    let values = |key: &str| -> Vec<&str> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .collect()
    };
    let config: Config = {
        let tmp = tempfile::tempdir().expect("temp dir");
        let text = std::fs::read_to_string(deploy_dir().join("systemd/scopegate.yaml"))
            .expect("systemd config");
        Config::from_str(&tmp.path().join("scopegate.yaml"), &text).expect("systemd config")
    };
    let stop: u64 = values("TimeoutStopSec")[0].parse().expect("seconds");
    assert!(stop > config.limits.shutdown_grace.as_secs());
    assert!(values("ExecStart")[0].contains("--config=/etc/scopegate/scopegate.yaml"));
    assert_eq!(
        values("ExecReload").last(),
        Some(&"/bin/kill -HUP $MAINPID")
    );
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("DynamicUser", "yes"),
        ("ConfigurationDirectory", "scopegate"),
    ] {
        assert_eq!(values(key), [value], "{key}");
    }
    // Loopback by default outside Kubernetes.
    assert!(config.admin.listen.ip().is_loopback());
}
