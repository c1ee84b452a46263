#!/usr/bin/env bash
# One scenario of ../shared/bench/run-peers.sh against one peer, for profiling and paired CPU comparisons: the
# harness's mock upstream (HAProxy) and its peer set-up (conf/peer-haproxy.cfg, or scripts/bench-ours.sh), h2load
# with the scenario's options, then one measurement of the peer while h2load runs.
#   scripts/profile-relay.sh S1                       # ours: req/s and CPU µs a request (user, sys)
#   PEER=haproxy scripts/profile-relay.sh S1          # the same for HAProxy
#   MODE=record scripts/profile-relay.sh S2           # perf record -g of the peer -> $OUT.data (+ perf-buckets.py)
#   MODE=syscalls scripts/profile-relay.sh S4         # system calls a request, by call (perf stat tracepoints)
#   for r in 1 2 3; do for p in haproxy ours; do PEER=$p scripts/profile-relay.sh S1; done; done   # interleaved pairs
# Knobs: PEER (ours|haproxy), MODE (cpu|record|syscalls), SECONDS_MEASURED (8), SERVER__IO (reactor|nio, for ours),
# CLAUDE_PROXY_BIN (default bin/claude-proxy), BENCH_DIR (the harness, default ../shared/bench; copied to a temporary directory, removed at exit), OUT (output
# prefix, default /tmp/profile-relay-<peer>-<scenario>).
# Unlike run-peers.sh, h2load writes no per-request log (--log-file), so h2load itself costs less: compare peers
# measured the same way, not these numbers with the harness's. Every process started here is stopped by PID at exit.
set -euo pipefail
scenario="${1:?usage: profile-relay.sh S1|S2|S3|S4}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_bench="${BENCH_DIR:-$repo/../shared/bench}"
peer="${PEER:-ours}"
mode="${MODE:-cpu}"
seconds="${SECONDS_MEASURED:-8}"
out="${OUT:-/tmp/profile-relay-$peer-$scenario}"
case "$scenario" in
    S1) load=(--h1 -c 64) body=fixtures/request.json ;;
    S2) load=(-c 8 -m 16) body=fixtures/request.json ;;
    S3) load=(--h1 -c 64) body=fixtures/request-stream.json ;;
    S4) load=(-c 8 -m 16) body=fixtures/request-stream.json ;;
    *) echo "unknown scenario $scenario" >&2 && exit 2 ;;
esac
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2> /dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2> /dev/null || true; done
    [ -z "${bench:-}" ] || rm -rf "$bench"
}
trap cleanup EXIT
# The harness is read-only: it runs from a copy (its certificates made there when it has none).
bench="$(mktemp -d /tmp/profile-relay-bench-XXXXXX)"
cp -a "$source_bench/." "$bench/"
chmod -R u+w "$bench"
rm -rf "$bench/results"
[ -f "$bench/certs/ca.pem" ] || (cd "$bench" && ./make-certs.sh > /dev/null 2>&1)

export BENCH_DIR="$bench" MOCK_THREADS=1 PEER_THREADS=2 CLIENT_API_KEY=sk-bench-client UPSTREAM_TOKEN=test-token
export UPSTREAM_SERVER_NAME=localhost UPSTREAM_HOSTPORT=127.0.0.1:19443 UPSTREAM_URL=https://127.0.0.1:19443
export UPSTREAM_CA_FILE="$bench/certs/ca.pem" MOCK_ADDR=127.0.0.1:19443 PEER_ADDR=127.0.0.1:18444
export PROXY_HOST=127.0.0.1 PROXY_PORT=18444 PROXY_TLS_CERT="$bench/certs/server.crt"
export PROXY_TLS_KEY="$bench/certs/server.key" CLAUDE_PROXY_BIN="${CLAUDE_PROXY_BIN:-$repo/bin/claude-proxy}"

cd "$bench"
setsid haproxy -db -f conf/mock-upstream.cfg > "$out.mock.log" 2>&1 < /dev/null &
pids+=($!)
if [ "$peer" = haproxy ]; then
    setsid haproxy -db -f conf/peer-haproxy.cfg > "$out.peer.log" 2>&1 < /dev/null &
else
    setsid "$repo/scripts/bench-ours.sh" > "$out.peer.log" 2>&1 < /dev/null &
fi
leader=$!
pids+=("$leader")
for _ in $(seq 100); do curl -sk -o /dev/null https://127.0.0.1:18444/ && break || sleep 0.2; done
# bench-ours.sh execs the server, so the leader is the server itself.
target="$leader"
sleep 1

timeout $((seconds + 30)) h2load "${load[@]}" -t 1 -D $((seconds + 4)) -d "$body" -H "x-api-key: $CLIENT_API_KEY" \
    -H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' https://127.0.0.1:18444/v1/messages \
    > "$out.h2load" 2>&1 &
load_pid=$!
sleep 2
ticks() { awk '{print $14, $15}' "/proc/$target/stat"; }
case "$mode" in
    record)
        perf record -F 4999 -g -p "$target" -o "$out.data" -- sleep "$seconds" > /dev/null 2>&1
        ;;
    syscalls)
        events=()
        for call in read write writev readv sendmsg recvmsg sendto recvfrom epoll_wait epoll_ctl eventfd2 futex; do
            events+=(-e "syscalls:sys_enter_$call")
        done
        perf stat -x, "${events[@]}" -p "$target" -o "$out.syscalls" -- sleep "$seconds" > /dev/null 2>&1
        ;;
    cpu)
        read -r user0 sys0 < <(ticks)
        sleep "$seconds"
        read -r user1 sys1 < <(ticks)
        ;;
    *) echo "unknown MODE $mode" >&2 && exit 2 ;;
esac
wait "$load_pid" || true
rps=$(grep -oP 'finished in [0-9.]+s, \K[0-9.]+' "$out.h2load" || echo 0)
if [ "$mode" = cpu ]; then
    hz=$(getconf CLK_TCK)
    awk -v p="$peer" -v s="$scenario" -v r="$rps" -v u=$((user1 - user0)) -v y=$((sys1 - sys0)) -v t="$seconds" \
        -v hz="$hz" 'BEGIN {
            n = r * t; printf "%s %s req/s %.0f  CPU µs a request %.1f = user %.1f + sys %.1f\n", s, p, r,
            (u + y) * 1e6 / hz / n, u * 1e6 / hz / n, y * 1e6 / hz / n }'
elif [ "$mode" = syscalls ]; then
    awk -F, -v p="$peer" -v s="$scenario" -v r="$rps" -v t="$seconds" '
        BEGIN { printf "%s %s req/s %.0f  calls a request:", s, p, r }
        /sys_enter_/ && $1 > 0 { sub(/.*sys_enter_/, "", $3); printf " %s %.2f", $3, $1 / (r * t) } END { print "" }' \
        "$out.syscalls"
else
    echo "$scenario $peer req/s $rps  profile: $out.data (perf script -i $out.data | scripts/perf-buckets.py)"
fi
