//! The example policies (one per real access model) decide their own test cases as
//! their `*.tests.yaml` files expect: a table-driven test of the decision core over the
//! Make, mittwald, Keygen, EVRYTHNG and OneLogin models and the reference policy.

use std::path::Path;

use scopegate::tooling::policy_test::{Setup, run_file};

fn run(name: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies")
        .join(format!("{name}.tests.yaml"));
    let outcomes = run_file(&file, &Setup::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        outcomes.len() >= 10,
        "{name}: only {} cases",
        outcomes.len()
    );
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| {
            format!(
                "{}: {}\n    {}",
                o.name,
                o.mismatch.as_deref().unwrap_or(""),
                o.trace.join("\n    ")
            )
        })
        .collect();
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
}

#[test]
fn make() {
    run("make");
}

#[test]
fn mittwald() {
    run("mittwald");
}

#[test]
fn keygen() {
    run("keygen");
}

#[test]
fn evrythng() {
    run("evrythng");
}

#[test]
fn onelogin() {
    run("onelogin");
}

#[test]
fn orders_reference() {
    run("orders");
}

/// A case whose expectation is wrong must fail: the runner is not a rubber stamp.
#[test]
fn a_wrong_expectation_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/orders.yaml"),
        dir.path().join("orders.yaml"),
    )
    .unwrap();
    let tests = dir.path().join("t.tests.yaml");
    std::fs::write(
        &tests,
        "policy: orders.yaml\ncases:\n  - name: wrong\n    request: { method: DELETE, path: /orders/1 }\n    principal: { roles: [customer] }\n    expect: { status: 200 }\n",
    )
    .unwrap();
    let outcomes = run_file(&tests, &Setup::default()).unwrap();
    assert!(!outcomes[0].passed);
    assert!(
        outcomes[0]
            .mismatch
            .as_deref()
            .unwrap_or("")
            .contains("status 403, expected 200")
    );
}
