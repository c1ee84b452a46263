#!/usr/bin/env bash
# Allocations per relayed request: mallocs in the proxy divided by upstream requests (nghttp2_submit_request), counted
# with perf uprobes while one bench scenario runs. A steadier figure than CPU µs per request on a shared machine.
#   scripts/count-allocations.sh S2                      # needs root (uprobes), perf, and the bench harness
# Knobs: BENCH_DIR (default ../shared/bench; it must be writable: results go under it), CLAUDE_PROXY_BIN (default
# .build/release/claude-proxy), SECONDS_COUNTED (3). Kills only what the harness started (it cleans up itself).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scenario="${1:?usage: count-allocations.sh S1|S2|S3|S4}"
bench="${BENCH_DIR:-$repo/../shared/bench}"
bin="${CLAUDE_PROXY_BIN:-$repo/.build/release/claude-proxy}"
libc=$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')
nghttp2=$(ldconfig -p | awk '/libnghttp2.so.14 .*x86-64/ {print $NF; exit}')
perf probe -l 2>/dev/null | grep -q 'probe_libc:malloc' || perf probe -q -x "$libc" --add malloc
perf probe -l 2>/dev/null | grep -q 'probe_libnghttp2:nghttp2_submit_request' ||
    perf probe -q -x "$nghttp2" --add nghttp2_submit_request
log=$(mktemp /tmp/count-allocations-XXXXXX.log)
(cd "$bench" && CLAUDE_PROXY_BIN="$bin" OURS_CMD="exec $repo/scripts/bench-ours.sh" SCENARIOS="$scenario" \
    DURATION=10 WARMUP=2 QUIET_MAX=60 QUIET_WAIT=20 ./run-peers.sh ours > "$log" 2>&1) &
harness=$!
pid=""
for _ in $(seq 1 240); do
    pid=$(ss -ltnp 2>/dev/null | grep ':18444 ' | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
    [ -n "$pid" ] && break
    sleep 0.5
done
[ -n "$pid" ] || { echo "the proxy never listened (log: $log)" >&2; wait "$harness"; exit 1; }
sleep 6  # readiness check, direct's turn done, warm-up
perf stat -x, -e probe_libc:malloc -e probe_libnghttp2:nghttp2_submit_request -p "$pid" -- sleep \
    "${SECONDS_COUNTED:-3}" 2>&1 |
    awk -F, -v s="$scenario" '{v[NR]=$1} END {if (v[2] > 0) printf "%s: %.1f mallocs per request (%d requests)\n", s, v[1]/v[2], v[2]; else printf "%s: no requests while counting (the harness was still waiting for a quiet machine?): run again\n", s}'
wait "$harness"
