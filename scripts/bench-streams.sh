#!/usr/bin/env bash
# 1000 concurrent streams through claude-proxy: h2load (10 connections x 100 streams, TLS, h2) -> proxy (release)
# -> mock-claude (our TLS + HTTP/2 server; each answer is an SSE stream with 200 ms between events, ~2.2 s long).
# Reports: the upstream connections the proxy opened (ss, mid-run), the proxy's RSS before, mid-run and peak
# (VmHWM), and its CPU time per stream. Every process started here is killed by PID on exit.
#   scripts/bench-streams.sh            (needs .build/release/claude-proxy and .build/debug/mock-claude)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${CLAUDE_PROXY_BIN:-$repo/.build/release/claude-proxy}"
mock="${MOCK_CLAUDE_BIN:-$repo/.build/debug/mock-claude}"
streams="${STREAMS:-1000}" connections="${CONNECTIONS:-10}" port="${PROXY_PORT:-18555}"
tmp="$(mktemp -d /tmp/bench-streams-XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

"$mock" --tls-folder "$tmp/mock" > "$tmp/mock.out" 2> "$tmp/mock.log" &
pids+=($!)
for _ in $(seq 1 100); do [ -s "$tmp/mock.out" ] && break; sleep 0.1; done
mock_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$tmp/mock.out")
mock_ca=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_file"])' "$tmp/mock.out")
"$bin" gen-cert --out "$tmp/certs" > /dev/null
key="bench-admin-$(openssl rand -hex 12)"
AUTH__API_KEY="$key" SERVER__HOST=127.0.0.1 SERVER__PORT="$port" \
    SERVER__TLS__CERT_FILE="$tmp/certs/server.crt" SERVER__TLS__KEY_FILE="$tmp/certs/server.key" \
    STORAGE__DATA_FOLDER="$tmp/data" CLAUDE__BASE_URL="https://localhost:$mock_port" CLAUDE__CA_FILE="$mock_ca" \
    OAUTH__TOKEN_URL="https://localhost:$mock_port/v1/oauth/token" LOGGER__LEVEL=warning \
    LIMITS__MAX_CONCURRENT_STREAMS=128 \
    "$bin" serve > "$tmp/proxy.log" 2>&1 &
proxy=$!
pids+=($proxy)
curl_proxy() { curl -sS --cacert "$tmp/certs/ca.crt" -H "x-api-key: $key" "$@"; }
for _ in $(seq 1 100); do curl_proxy -o /dev/null "https://127.0.0.1:$port/health" 2>/dev/null && break; sleep 0.1; done
state=$(curl_proxy "https://127.0.0.1:$port/oauth/authorize" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
curl_proxy -o /dev/null "https://127.0.0.1:$port/oauth/exchange" -d "{\"code\":\"bench#$state\"}"
printf '{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true}' > "$tmp/body.json"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$proxy/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$proxy/stat"; }
before=$(rss); cpu_before=$(cpu)
h2load -c "$connections" -m $((streams / connections)) -n "$streams" -d "$tmp/body.json" \
    -H "x-api-key: $key" -H 'content-type: application/json' -H 'x-mock-fault: slow-drip' \
    "https://127.0.0.1:$port/v1/messages" > "$tmp/h2load.out" 2>&1 &
load=$!
pids+=($load)
sleep 1.2
upstream=$(ss -Htn state established "( dport = :$mock_port )" | wc -l)
during=$(rss)
open=$(curl -sS --cacert "$tmp/certs/ca.crt" -H "x-api-key: $key" "https://127.0.0.1:$port/metrics" |
    awk '/^claude_proxy_upstream_streams / {print $2}')
timeout 60 tail --pid="$load" -f /dev/null || true
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$proxy/status")
ticks=$(( $(cpu) - cpu_before )); hz=$(getconf CLK_TCK)
grep -E "requests:|status codes:" "$tmp/h2load.out"
echo "streams: $streams over $connections client connections; upstream streams open mid-run: ${open:-?}"
echo "upstream connections (ss, mid-run): $upstream (limit ceil($streams / 128) = $(( (streams + 127) / 128 )))"
echo "proxy RSS: before ${before} KiB, mid-run ${during} KiB, peak (VmHWM) ${peak} KiB"
echo "proxy CPU: $(( ticks * 1000000 / hz / streams )) us per stream"
