#!/usr/bin/env bash
# What a socket's event loop and channel cost per request: reactor-bench's one-thread TLS HTTP/1.1 server (a fixed
# 587-byte response to every request head) on NIO's socket channels, on our reactor's ReactorChannel (same pipeline),
# and driven directly by the reactor (no pipeline: the floor), each loaded by h2load in turn.
#   scripts/bench-reactor.sh                      # nio reactor direct, 3 rounds, 8 s each, h2load --h1 -c 64
#   MODES="nio reactor" ROUNDS=5 SECONDS_MEASURED=10 CONNECTIONS=16 scripts/bench-reactor.sh
# Reports per run: req/s, server CPU (cores) and server CPU µs per request (user + sys, from /proc over the measured
# window, after a 2 s warm-up). The server and h2load share the machine: compare CPU per request, not req/s.
# Every process started here is stopped by PID at exit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
modes="${MODES:-nio reactor direct}"
rounds="${ROUNDS:-3}"
seconds="${SECONDS_MEASURED:-8}"
connections="${CONNECTIONS:-64}"
port="${PORT:-18555}"
release_flags=(-c release --static-swift-stdlib -Xswiftc -cross-module-optimization -Xswiftc -use-ld=lld)
(cd "$repo" && swift build "${release_flags[@]}" --product reactor-bench > /dev/null 2>&1)
bin="$(cd "$repo" && swift build "${release_flags[@]}" --show-bin-path)/reactor-bench"
work="$(mktemp -d /tmp/bench-reactor-XXXXXX)"
server=""
cleanup() {
    [ -z "$server" ] || kill -TERM "$server" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2> /dev/null
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
printf '| mode | round | req/s | server cores | server µs/req |\n|---|---|---:|---:|---:|\n'
for round in $(seq 1 "$rounds"); do
    for mode in $modes; do
        "$bin" "$mode" "$port" "$work/cert.pem" "$work/key.pem" > "$work/server.log" 2>&1 &
        server=$!
        for _ in $(seq 1 50); do
            (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
            sleep 0.1
        done
        h2load --h1 -c "$connections" -D "$((seconds + 2))" --warm-up-time 2 "https://127.0.0.1:$port/" \
            > "$work/h2load.out" 2>&1 &
        load=$!
        sleep 3
        before=$(cpu_ticks "$server")
        start=$(date +%s.%N)
        sleep "$((seconds - 2))"
        after=$(cpu_ticks "$server")
        end=$(date +%s.%N)
        wait "$load"
        kill -TERM "$server"
        wait "$server" 2> /dev/null || true
        server=""
        rps=$(grep -oE '[0-9.]+ req/s' "$work/h2load.out" | head -1 | cut -d' ' -f1)
        python3 -c "
cores = ($after - $before) / $ticks / ($end - $start)
rps = float('${rps:-0}')
print('| $mode | $round | %.0f | %.2f | %.2f |' % (rps, cores, cores / rps * 1e6 if rps else float('nan')))"
    done
done
