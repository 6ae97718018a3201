# Shared by the load scripts: temp dir and process cleanup, ports, an RS256 token minter
# and the nginx upstream. Source it after setting ROOT.
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; cat "$WORK"/*.log >&2; exit 1; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

KEY="$ROOT/tests/fixtures/keys/rsa1.key.pem"
PUB="$ROOT/tests/fixtures/keys/rsa1.pub.pem"
mint() { # RS256 token with the given scope, valid for an hour
  local now; now=$(date +%s)
  local h p s
  h=$(printf '{"alg":"RS256","typ":"JWT","kid":"k1"}' | b64url)
  p=$(printf '{"iss":"bench","sub":"u1","scope":"%s","exp":%d}' "$1" $((now + 3600)) | b64url)
  s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$KEY" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}

build_gateway() {
  echo "== building the gateway (release)"
  (cd "$ROOT" && cargo build --release --quiet)
  BIN="${SCOPEGATE_BIN:-$ROOT/target/release/scopegate}"
}

# Starts the upstream on $UP: nginx answering 200 "ok" when installed, else the
# gateway's built-in echo server. Sets UPSTREAM_KIND.
start_upstream() {
  UP=$(free_port)
  if command -v nginx >/dev/null; then
    mkdir -p "$WORK/nginx"
    cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } }
}
NGINX
    nginx -c "$WORK/nginx.conf" 2>"$WORK/nginx.log" & PIDS+=($!)
    UPSTREAM_KIND=nginx
  else
    echo "nginx not found: the upstream is the echo server of \`scopegate demo\` (slower; ratios to direct are then not comparable)"
    "$BIN" demo --listen 127.0.0.1:0 >"$WORK/demo.out" 2>"$WORK/demo.log" & PIDS+=($!)
    UPSTREAM_KIND=echo
    UP=""
    for _ in $(seq 1 100); do
      UP=$(sed -n 's|.*echo upstream on http://127.0.0.1:\([0-9]*\).*|\1|p' "$WORK/demo.out")
      [ -n "$UP" ] && break
      sleep 0.1
    done
    [ -n "$UP" ] || { echo "the demo's echo upstream did not start" >&2; cat "$WORK/demo.log" >&2; exit 1; }
  fi
  wait_port "$UP"
}

# Starts the gateway on $GW in front of $UP with $WORK/policy.yaml and an RS256 issuer
# `bench` (key k1); extra top-level config lines come as $1, and $2 names its config and
# log files in $WORK (default: gateway). Sets GW and GW_PID.
start_gateway() {
  local name=${2:-gateway}
  GW=$(free_port)
  cat > "$WORK/$name.yaml" <<YAML
listen: 127.0.0.1:$GW
admin: { listen: 127.0.0.1:$(free_port) }
upstream: { url: "http://127.0.0.1:$UP" }
policy: policy.yaml
${1:-}
auth:
  jwt:
    issuers:
      - issuer: bench
        algorithms: [RS256]
        keys: [{ kid: k1, alg: RS256, pem_file: $PUB }]
YAML
  SCOPEGATE_LOG=warn "$BIN" run -c "$WORK/$name.yaml" 2>"$WORK/$name.log" & GW_PID=$!; PIDS+=($GW_PID)
  wait_port "$GW"
  kill -0 "$GW_PID" 2>/dev/null || { cat "$WORK/$name.log"; exit 1; }
}
