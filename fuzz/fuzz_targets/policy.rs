//! The policy loader on arbitrary bytes: a bad file is an error, never a panic; a good
//! one can be looked up and decided on.
#![no_main]

use std::path::Path;

use http::Method;
use libfuzzer_sys::fuzz_target;
use scopegate::auth::{AuthFailure, Principal};
use scopegate::decide::{NoTrace, decide, wants_credentials};
use scopegate::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = Policy::from_bytes(Path::new("fuzz.yaml"), data) else {
        return;
    };
    let everyone = Principal {
        subject: Some("u1".into()),
        roles: policy.roles().iter().map(|r| r.name.to_string()).collect(),
        scopes: Some(vec!["*".into(), "orders:read".into()]),
        claims: Default::default(),
    };
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/orders/7"),
        (Method::POST, "/a/b/c"),
        (Method::DELETE, "/x"),
    ] {
        let lookup = policy.lookup(&method, path);
        let _ = wants_credentials(&policy, &lookup);
        let _ = decide(&policy, &lookup, None, &mut NoTrace);
        let _ = decide(
            &policy,
            &lookup,
            Some(Err(AuthFailure::Missing)),
            &mut NoTrace,
        );
        let _ = decide(&policy, &lookup, Some(Ok(&everyone)), &mut NoTrace);
        let _ = decide(
            &policy,
            &lookup,
            Some(Ok(&Principal::default())),
            &mut NoTrace,
        );
    }
    for role in policy.roles() {
        let _ = policy.role_scopes(role);
    }
});
