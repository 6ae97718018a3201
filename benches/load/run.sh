#!/usr/bin/env bash
# Load benchmark: the gateway vs. HAProxy (jwt_verify + scope ACL) vs. the upstream alone,
# back to back in rounds, on loopback only.
#
#   benches/load/run.sh [ROUNDS=3] [SECONDS=10]
#
# TARGETS="gateway-allowed haproxy-allowed" runs only those (default: all). The target
# gateway-1w-allowed is the gateway with `limits.worker_threads: 1`. CONNS sets wrk's
# connection count (default 32).
#
# Needs: wrk, nginx (the upstream; falls back to the built-in echo upstream), haproxy
# (optional: skipped when absent), openssl. Debian: apt-get install wrk nginx-light haproxy.
# Prints req/s, p50, p99 and CPU microseconds per request of the proxy process for each
# target and round, then the medians and the ratios gateway/HAProxy and gateway/direct.
set -euo pipefail
ROUNDS=${1:-3}
DURATION=${2:-10}
CONNS=${CONNS:-32}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/benches/load/lib.sh"

ALLOWED=$(mint "orders:read")
DENIED=$(mint "other:read")

build_gateway
start_upstream

cat > "$WORK/policy.yaml" <<YAML
version: 1
scopes: { orders:read: Read orders }
routes:
  - { path: "/orders/{id}", methods: [GET], scopes: [orders:read] }
YAML
# The same gateway on one worker thread: on this job wrk and the upstream share the
# machine's cores with it.
start_gateway "limits: { worker_threads: 1 }" gateway-1w
GW1=$GW GW1_PID=$GW_PID
start_gateway

# start_haproxy NAME THREADS [FRONTEND RULES]: HAProxy in front of the upstream on a free
# port; sets PORT and PID.
start_haproxy() {
  PORT=$(free_port)
  cat > "$WORK/$1.cfg" <<HAP
global
  nbthread $2
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$PORT
${3:-}
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$UP
HAP
  haproxy -f "$WORK/$1.cfg" -db >"$WORK/$1.log" 2>&1 & PID=$!; PIDS+=($PID)
  wait_port "$PORT"
}

HA=""
if command -v haproxy >/dev/null; then
  start_haproxy haproxy "${HAPROXY_THREADS:-2}" "\
  http-request deny deny_status 401 unless { req.hdr(authorization) -m beg \"Bearer \" }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.jwt_alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request deny deny_status 401 unless { var(txn.jwt_alg) -m str \"RS256\" }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.jwt_alg,\"$PUB\") -m int 1 }
  http-request set-var(txn.scope) var(txn.bearer),jwt_payload_query('\$.scope')
  http-request deny deny_status 403 unless { var(txn.scope) -m sub \"orders:read\" }"
  HA=$PORT HA_PID=$PID
  # One thread and no checks at all: the plain pass-through floor.
  start_haproxy haproxy-plain 1
  HP=$PORT HP_PID=$PID
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# run NAME PORT TOKEN PID -> "reqs p50 p99 cpu_us_per_req"
run() {
  local port=$2 token=$3 pid=$4 before after out
  before=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$port/orders/7")
  after=$([ -n "$pid" ] && cpu_ticks "$pid" || echo 0)
  local rps p50 p99 total
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  local cpu_us="-"
  if [ -n "$pid" ] && [ "$total" -gt 0 ]; then
    cpu_us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$total" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  fi
  echo "$rps $p50 $p99 $cpu_us"
}

declare -A RESULTS
printf '%-22s %5s %12s %10s %10s %12s\n' target round "req/s" p50 p99 "CPU us/req"
for r in $(seq 1 "$ROUNDS"); do
  targets=("direct:$UP::" "gateway-allowed:$GW:$ALLOWED:$GW_PID" "gateway-denied:$GW:$DENIED:$GW_PID"
    "gateway-1w-allowed:$GW1:$ALLOWED:$GW1_PID")
  [ -n "$HA" ] && targets+=("haproxy-allowed:$HA:$ALLOWED:$HA_PID" "haproxy-plain:$HP:$ALLOWED:$HP_PID")
  for t in "${targets[@]}"; do
    IFS=: read -r name port token pid <<<"$t"
    [ -z "${TARGETS:-}" ] || [[ " $TARGETS " == *" $name "* ]] || continue
    res=$(run "$name" "$port" "${token:-none}" "$pid")
    RESULTS[$name,$r]=$res
    read -r rps p50 p99 cpu <<<"$res"
    printf '%-22s %5s %12s %10s %10s %12s\n' "$name" "$r" "$rps" "$p50" "$p99" "$cpu"
  done
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "== medians over $ROUNDS rounds (wrk -t1 -c$CONNS -d${DURATION}s, upstream: $UPSTREAM_KIND)"
# wrk prints latencies with their unit; the medians are taken in microseconds.
to_us() { awk '{v=$1; if (v ~ /ms$/) {sub("ms","",v); v*=1000} else if (v ~ /us$/) {sub("us","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1e6}; print v}'; }
col() { for r in $(seq 1 "$ROUNDS"); do echo "${RESULTS[$1,$r]}" | awk -v c="$2" '{print $c}'; done; }
printf '%-22s %12s %10s %10s %12s\n' target "req/s" "p50 us" "p99 us" "CPU us/req"
for name in direct gateway-allowed gateway-denied gateway-1w-allowed haproxy-allowed haproxy-plain; do
  [ -n "${RESULTS[$name,1]:-}" ] || continue
  m=$(col "$name" 1 | median)
  p50=$(col "$name" 2 | to_us | median)
  p99=$(col "$name" 3 | to_us | median)
  c=$(col "$name" 4 | median)
  declare "MED_${name//-/_}=$m" "P99_${name//-/_}=$p99"
  printf '%-22s %12s %10s %10s %12s\n' "$name" "$m" "$p50" "$p99" "$c"
done
ratio() { awk -v a="$2" -v b="$3" -v l="$1" 'BEGIN {printf "%s: %.2fx\n", l, a / b}'; }
for gw in gateway gateway-1w; do
  v=${gw//-/_}_allowed; m=MED_$v; p=P99_$v
  [ -n "${!m:-}" ] || continue
  [ -n "${MED_haproxy_allowed:-}" ] && ratio "$gw/haproxy (RS256 + scope, req/s)" "${!m}" "$MED_haproxy_allowed" &&
    ratio "$gw/haproxy (RS256 + scope, p99)" "${!p}" "$P99_haproxy_allowed"
  [ -n "${MED_haproxy_plain:-}" ] && ratio "$gw (RS256 + scope) / haproxy plain pass-through" "${!m}" "$MED_haproxy_plain"
  [ -n "${MED_direct:-}" ] && ratio "$gw/direct" "${!m}" "$MED_direct"
done
true
