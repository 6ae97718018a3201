#!/usr/bin/env bash
# Memory: the gateway's resident set with a 10,000-route policy and 1,000 idle keep-alive
# client connections, each of which has made one authorized request (so each has also
# had its upstream exchange).
#
#   benches/load/memory.sh [CONNECTIONS=1000] [ROUTES=10000]
#
# Needs python3 and openssl; nginx is the upstream when installed. Prints VmRSS after
# start-up, after the policy is loaded, and with the connections open and idle, plus
# VmHWM (the peak).
set -euo pipefail
CONNECTIONS=${1:-1000}
ROUTES=${2:-10000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/benches/load/lib.sh"

build_gateway
start_upstream

# The shape of benches/common/big_policy.rs (four routes per resource family, with
# templates, role gates and a scope catalog), without its `require` constraint so the
# one request each connection makes is allowed.
python3 - "$ROUTES" > "$WORK/policy.yaml" <<'PY'
import sys
families = int(sys.argv[1]) // 4
out = ["version: 1",
       "actions: { GET: read, HEAD: read, POST: write, PUT: write, PATCH: write, DELETE: delete }",
       "scopes:"]
for i in range(families):
    for a in ("read", "write", "delete"):
        out.append(f"  r{i}:{a}: {a} r{i}")
out += ["default_role: reader",
        "roles:",
        "  reader: { scopes: [r0:read, r1:read, r2:read], attributes: { projects: [p1, p2] } }",
        "  writer: { inherits: [reader], scopes: [\"*\"], deny: [r0:delete] }",
        "  admin: { inherits: [writer], scopes: [\"*\"] }",
        "routes:"]
for i in range(families):
    out.append(f"  - {{ path: /r{i}, methods: [GET, POST], scopes: [\"r{i}:{{action}}\"] }}")
    out.append(f"  - {{ path: \"/r{i}/{{id}}\", scopes: [\"r{i}:{{action}}\"], bypass_roles: [admin] }}")
    out.append(f"  - {{ path: \"/r{i}/{{id}}/refund\", methods: [POST], any_scopes: [[r{i}:write], [r{i}:delete]] }}")
    out.append(f"  - {{ path: \"/r{i}/{{id}}/files/{{*rest}}\", methods: [GET], scopes: [r{i}:read], roles: [writer, admin] }}")
print("\n".join(out))
PY
start_gateway "limits: { max_connections: $((CONNECTIONS + 100)) }"

rss() { awk -v k="$1:" '$1 == k {printf "%.1f MiB", $2 / 1024}' "/proc/$GW_PID/status"; }
echo "== $ROUTES routes, $CONNECTIONS connections (upstream: $UPSTREAM_KIND)"
echo "policy file: $(du -k "$WORK/policy.yaml" | cut -f1) KiB"
echo "VmRSS, policy loaded, no connections: $(rss VmRSS)"

TOKEN=$(mint "${SCOPE:-r1:read}")
python3 - "$GW" "$CONNECTIONS" "$TOKEN" "$GW_PID" <<'PY'
import socket, sys, time
port, n, token, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
request = (f"GET /r1/42 HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    conns.append(s)
ok = 0
for s in conns:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(65536)
        if not chunk:
            break
        head += chunk
    ok += head.startswith(b"HTTP/1.1 200")
time.sleep(2)  # idle: let the gateway settle with every connection open
print("last answer:", head.split(b"\r\n")[0] if conns else "")
status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
mib = lambda k: int(status[k].split()[0]) / 1024
print(f"answered 200: {ok} of {n}")
print(f"VmRSS, {n} idle keep-alive connections open: {mib('VmRSS'):.1f} MiB")
print(f"VmHWM (peak): {mib('VmHWM'):.1f} MiB")
print(f"of VmRSS: RssAnon {mib('RssAnon'):.1f} MiB (heap, stacks), RssFile {mib('RssFile'):.1f} MiB (the mapped binary and libraries)")
import os
print(f"open file descriptors: {len(os.listdir(f'/proc/{pid}/fd'))}")
for s in conns:
    s.close()
PY
