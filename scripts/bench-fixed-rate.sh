#!/usr/bin/env bash
# Latency at a fixed request rate: S1-S4 of ../shared/bench/run-peers.sh with h2load pacing every client (--rps),
# so p50/p99 show what each peer adds below saturation instead of queueing on a saturated 2-core machine.
#   scripts/bench-fixed-rate.sh                      # RATE=16000 req/s in total, peers: haproxy ours
#   RATE=8000 PEERS="haproxy caddy ours" scripts/bench-fixed-rate.sh
# The harness is read-only and has no knob for extra h2load options: it is copied to a temporary directory and its
# h2load command line gets `--rps <RATE / clients>` (S1/S3: 64 clients, S2/S4: 8). Knobs: BENCH_DIR (default
# ../shared/bench), CLAUDE_PROXY_BIN (default .build/release/claude-proxy), DURATION (8), RATE, PEERS, SCENARIOS,
# KEEP=1 (keep the copy with its results/ and progress.log; otherwise it is removed at exit).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench="${BENCH_DIR:-$repo/../shared/bench}"
rate="${RATE:-16000}"
peers="${PEERS:-haproxy ours}"
scenarios="${SCENARIOS:-S1 S2 S3 S4}"
copy="$(mktemp -d /tmp/bench-fixed-rate-XXXXXX)"
trap '[ -n "${KEEP:-}" ] && echo "kept: $copy" || rm -rf "$copy"' EXIT
cp -a "$bench/." "$copy/"
chmod -R u+w "$copy"
rm -rf "$copy/results"
pattern='h2load "${SC_ARGS[@]}" -t'
grep -qF "$pattern" "$copy/run-peers.sh" || { echo "run-peers.sh changed: its h2load line was not found" >&2; exit 1; }
sed -i 's|h2load "${SC_ARGS\[@\]}" -t|h2load "${SC_ARGS[@]}" ${H2LOAD_EXTRA:-} -t|' "$copy/run-peers.sh"
run() {  # run "S1 S3" CLIENTS
    local selected="" s
    for s in $1; do [[ " $scenarios " == *" $s "* ]] && selected="$selected $s"; done
    [ -n "$selected" ] || return 0
    (cd "$copy" && H2LOAD_EXTRA="--rps $((rate / $2))" SCENARIOS="$selected" CLAUDE_PROXY_BIN="${CLAUDE_PROXY_BIN:-$repo/.build/release/claude-proxy}" \
        OURS_CMD="exec $repo/scripts/bench-ours.sh" DURATION="${DURATION:-8}" WARMUP=2 QUIET_MAX=40 QUIET_WAIT=60 \
        ./run-peers.sh $peers 2>> "$copy/progress.log") | grep -E '^\| (scenario|---|S[0-9])' ||
        echo "no results for$selected (see progress.log: KEEP=1 keeps it)"
}
echo "fixed rate: $rate req/s in total (h2load --rps per client)"
run "S1 S3" 64
run "S2 S4" 8
