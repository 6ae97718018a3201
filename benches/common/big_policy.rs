//! The large policy the compile benchmark and the memory example share, so both measure
//! the same file.

use std::fmt::Write;

/// 10,000 routes over 2,500 resource families with a catalog of their scopes, templates,
/// `any_scopes`, role gates, constraints and inheriting roles: every compile step has work.
pub fn policy_text(routes: usize) -> String {
    let families = routes / 4;
    let mut t = String::from(
        "version: 1\nactions: { GET: read, HEAD: read, POST: write, PUT: write, PATCH: write, DELETE: delete }\nscopes:\n",
    );
    for i in 0..families {
        for a in ["read", "write", "delete"] {
            let _ = writeln!(t, "  r{i}:{a}: {a} r{i}");
        }
    }
    t.push_str(
        "default_role: reader\nroles:\n  reader: { scopes: [r0:read, r1:read, r2:read], attributes: { projects: [p1, p2] } }\n  \
         writer: { inherits: [reader], scopes: [\"*\"], deny: [r0:delete] }\n  admin: { inherits: [writer], scopes: [\"*\"] }\nroutes:\n",
    );
    for i in 0..families {
        let _ = writeln!(
            t,
            "  - {{ path: /r{i}, methods: [GET, POST], scopes: [\"r{i}:{{action}}\"] }}"
        );
        let _ = writeln!(
            t,
            "  - {{ path: \"/r{i}/{{id}}\", scopes: [\"r{i}:{{action}}\"], require: {{ id: {{ in: [role:projects] }} }}, bypass_roles: [admin] }}"
        );
        let _ = writeln!(
            t,
            "  - {{ path: \"/r{i}/{{id}}/refund\", methods: [POST], any_scopes: [[r{i}:write], [r{i}:delete]] }}"
        );
        let _ = writeln!(
            t,
            "  - {{ path: \"/r{i}/{{id}}/files/{{*rest}}\", methods: [GET], scopes: [r{i}:read], roles: [writer, admin] }}"
        );
    }
    t
}
