//! Reading the Kubernetes manifests under `deploy/` the way the kubelet would use them:
//! objects by kind and name, named container ports, and a projected volume laid out in a
//! temp dir so the real gateway (or `scopegate check`) can run on its files.
//! Kept apart from `common` (the gateway harness), which other test files extend.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every object of a (multi-document) manifest file under `deploy/`.
pub fn manifests(rel: &str) -> Vec<Value> {
    let path = deploy_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// The object of `kind` named `name` among the manifests in `dir`'s `files`.
pub fn object(dir: &str, files: &[&str], kind: &str, name: &str) -> Value {
    files
        .iter()
        .flat_map(|f| manifests(&format!("{dir}/{f}")))
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{dir}: no {kind} {name}"))
}

pub fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// A container port by name (how the probes and Services refer to them).
pub fn container_port(container: &Value, port: &Value) -> u16 {
    let n = match port {
        Value::Number(n) => n.as_u64(),
        Value::String(name) => container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == *name)
            .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
            .as_u64(),
        other => panic!("port {other}"),
    };
    n.and_then(|n| u16::try_from(n).ok())
        .expect("a port number")
}

/// The config file the container runs with, relative to the volume mounted at its
/// directory (the `--config=` argument).
pub fn config_file_in_mount(container: &Value) -> (String, String) {
    let config = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--config="))
        .expect("a --config= argument");
    let (dir, file) = config.rsplit_once('/').expect("an absolute config path");
    let mount = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["mountPath"] == dir)
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    assert!(
        mount.get("subPath").is_none(),
        "a subPath mount never sees ConfigMap updates"
    );
    (
        mount["name"].as_str().expect("mount name").to_string(),
        file.to_string(),
    )
}

/// Lays the volume `volume` of `deployment` out in a temp dir as the kubelet would: the
/// data of every projected ConfigMap, and for Secrets the paths their items name (with
/// placeholder contents, since no Secret is shipped).
pub fn materialize(dir: &str, files: &[&str], deployment: &Value, volume: &str) -> TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == volume)
        .unwrap_or_else(|| panic!("no volume {volume}"));
    let sources = volume["projected"]["sources"]
        .as_array()
        .expect("a projected volume");
    for source in sources {
        if let Some(cm) = source.get("configMap") {
            let name = cm["name"].as_str().expect("configMap name");
            let cm = object(dir, files, "ConfigMap", name);
            for (file, text) in cm["data"].as_object().expect("data") {
                std::fs::write(tmp.path().join(file), text.as_str().expect("text"))
                    .expect("write ConfigMap file");
            }
        } else if let Some(secret) = source.get("secret") {
            for item in secret["items"].as_array().expect("secret items") {
                let path = tmp.path().join(item["path"].as_str().expect("item path"));
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(path, "placeholder\n").expect("write secret item");
            }
        }
    }
    tmp
}

pub fn run_check(config: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .env_remove("SCOPEGATE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run scopegate check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn secs(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("seconds: {v}"))
}

pub fn prestop_sleep(container: &Value) -> u64 {
    container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap_or(0)
}
