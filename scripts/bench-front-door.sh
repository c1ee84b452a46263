#!/usr/bin/env bash
# bench-front-door.sh -- TLS front door of claude-proxy vs HAProxy 2.6, both answering GET /health from
# memory over HTTPS/1.1 on 127.0.0.1 (no upstream involved). Builds nothing: pass the binary as $BIN.
#
#   BIN=.build-bench/release/claude-proxy scripts/bench-front-door.sh
#
# Peers (PEERS, run one at a time, never two at once; each (round, peer) gets a freshly started server):
#   ours-warning  claude-proxy serve, LOGGER__LEVEL=warning (no per-request log line)
#   ours-info     claude-proxy serve, LOGGER__LEVEL=info    (one log line per request, to a file)
#   haproxy-t2    haproxy -db, nbthread 2, `http-request return` of the same 46-byte JSON
#   haproxy-t1    the same, nbthread 1
# Both use the same ECDSA P-256 certificate (made by `$BIN gen-cert`; HAProxy gets cert+key in one PEM),
# TLS 1.2..1.3 (both negotiate TLS 1.3 / X25519 / AES-128-GCM with these clients), ALPN http/1.1.
#
# Scenarios (SCENARIOS), each bounded by `timeout`:
#   ka-c8 ka-c64 ka-c256  keep-alive: h2load --h1 -c N -D DURATION https://.../health  -> req/s
#   hs-full               new TLS connections: back-to-back `h2load --h1 -c HS_BATCH -n HS_BATCH` runs for
#                         DURATION s; every h2load run is a new process, so every connection is a FULL
#                         handshake (nothing to resume) carrying one request -> connections/s
#   st-new  st-reuse      openssl s_time -connect ... -new|-reuse -time DURATION (full / resumed
#                         handshakes) -> connections/s (count from s_time, wall time measured here: s_time's
#                         "real seconds" are whole seconds). No HTTP request. With TLS 1.3 a bare `-reuse` never
#                         resumes (s_time reads nothing, so it never sees the post-handshake session ticket), so
#                         st-reuse adds ST_REUSE_ARGS="-tls1_2" (TLS 1.2 session-id resumption, server-side cache).
#                         `-www /health` would fix TLS 1.3 but needs the server to close after an HTTP/1.0
#                         response, which claude-proxy does not do (see docs/benchmarks.md). The table shows the
#                         fraction actually resumed (s_time's 'r' marks).
# Per run: server CPU (utime+stime delta of the server PID from /proc/PID/stat) per request/connection,
# peak RSS (VmHWM from /proc/PID/status, reset before each scenario through /proc/PID/clear_refs = 5),
# whole-machine CPU busy % during the run. Each cell keeps the best of ROUNDS rounds (by throughput).
#
# Knobs: BIN=bin/claude-proxy ROUNDS=2 DURATION=10 HS_BATCH=200 PEERS="ours-warning ours-info haproxy-t2 haproxy-t1"
#        SCENARIOS="ka-c8 ka-c64 ka-c256 hs-full st-new st-reuse" PORT=18544 RESULTS_DIR=bench-results/front-door-<ts>
#        HAPROXY=haproxy H2LOAD=h2load OPENSSL=openssl  QUIET_MAX=20 (wait up to QUIET_WAIT=120 s for the box
#        to be at most that % busy before each run; runs that started busier are flagged with `!`)
#        PERF=1: also `perf record` the server for PERF_SECONDS=8 s during an extra ka-c64 and hs-full run of
#        the first ours-* and haproxy-* peer (reports in RESULTS_DIR/perf-*.txt; needs linux-perf).
# Output: a markdown table on stdout (also RESULTS_DIR/table.md), raw outputs and results.tsv in RESULTS_DIR.
# Every process started here is stopped by its PID on exit (TERM, then KILL).
set -u -o pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

BIN="${BIN:-bin/claude-proxy}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10}"
HS_BATCH="${HS_BATCH:-200}"
PEERS="${PEERS:-ours-warning ours-info haproxy-t2 haproxy-t1}"
SCENARIOS="${SCENARIOS:-ka-c8 ka-c64 ka-c256 hs-full st-new st-reuse}"
PORT="${PORT:-18544}"
HAPROXY="${HAPROXY:-haproxy}"
H2LOAD="${H2LOAD:-h2load}"
OPENSSL="${OPENSSL:-openssl}"
QUIET_MAX="${QUIET_MAX:-20}"
QUIET_WAIT="${QUIET_WAIT:-120}"
PERF="${PERF:-0}"
ST_REUSE_ARGS="${ST_REUSE_ARGS:--tls1_2}"
PERF_SECONDS="${PERF_SECONDS:-8}"
RESULTS_DIR="${RESULTS_DIR:-bench-results/front-door-$(date +%Y%m%d-%H%M%S)}"
ADMIN_KEY="bench-admin-key-0123456789"
HOST=127.0.0.1
URL="https://$HOST:$PORT/health"
CLK_TCK="$(getconf CLK_TCK)"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$BIN" ] || die "BIN=$BIN is not an executable (build it: swift build -c release --product claude-proxy)"
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
for t in "$H2LOAD" "$OPENSSL" curl timeout setsid; do command -v "$t" >/dev/null || die "missing $t (apt-get install nghttp2-client openssl curl)"; done
case " $PEERS " in *" haproxy"*) command -v "$HAPROXY" >/dev/null || die "missing haproxy (apt-get install haproxy)";; esac
[ "$PERF" = 1 ] && { command -v perf >/dev/null || die "PERF=1 needs perf (apt-get install linux-perf)"; }

mkdir -p "$RESULTS_DIR"
RESULTS_DIR="$(cd "$RESULTS_DIR" && pwd)"
TSV="$RESULTS_DIR/results.tsv"
printf 'round\tpeer\tscenario\tcount\twall_s\trate\tserver_cpu_us_per\tserver_cpu_pct\tvmhwm_kb\tmachine_busy_pct\tbusy_before_pct\terrors\tresumed\n' > "$TSV"

# ---- processes: every one started here is remembered by PID and stopped by PID ----------------------
SERVER_PID=""
stop_pid() {
  local p="$1" i
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null
  for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null || true
}
cleanup() { stop_pid "$SERVER_PID"; SERVER_PID=""; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

# ---- measurements --------------------------------------------------------------------------------
cpu_ticks() { local f; f=$(cut -d')' -f2- "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }; set -- $f; echo $(( ${12} + ${13} )); }
sys_busy_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
vmhwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
reset_hwm() { echo 5 > "/proc/$1/clear_refs" 2>/dev/null || true; }
busy_pct() {  # machine-wide busy % over $1 s
  local a b; a=$(sys_busy_ticks); sleep "$1"; b=$(sys_busy_ticks)
  awk -v d=$((b - a)) -v w="$1" -v h="$CLK_TCK" -v n="$(nproc)" 'BEGIN{printf "%.0f", d/h/w/n*100}'
}
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT)) warned=0
  while :; do
    BUSY_BEFORE=$(busy_pct 1)
    [ "$BUSY_BEFORE" -le "$QUIET_MAX" ] && return
    [ $SECONDS -ge $deadline ] && { log "  WARNING: machine still ${BUSY_BEFORE}% busy; running anyway (flagged)"; return; }
    [ $warned = 0 ] && { log "  machine ${BUSY_BEFORE}% busy (other workload?); waiting up to ${QUIET_WAIT}s"; warned=1; }
  done
}

# ---- certificates and configs --------------------------------------------------------------------
CERT_DIR="$RESULTS_DIR/certs"
"$BIN" gen-cert --out "$CERT_DIR" > "$RESULTS_DIR/gen-cert.log" 2>&1 || die "gen-cert failed (see $RESULTS_DIR/gen-cert.log)"
cat "$CERT_DIR/server.crt" "$CERT_DIR/server.key" > "$CERT_DIR/server.pem"
HAPROXY_CFG="$RESULTS_DIR/haproxy.cfg"
cat > "$HAPROXY_CFG" <<EOF
# Generated by scripts/bench-front-door.sh: HAProxy answering /health from memory over TLS (http/1.1).
global
    nbthread "\${PEER_THREADS}"
    ssl-default-bind-options ssl-min-ver TLSv1.2
    log stderr format raw local0 emerg

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend health
    bind $HOST:$PORT ssl crt $CERT_DIR/server.pem alpn http/1.1
    http-request return status 200 content-type application/json string '{"status":"ok","uptime_s":1,"version":"0.1.0"}' if { path /health }
    http-request return status 404 content-type application/json string '{"error":"not found"}'
EOF

start_peer() {  # start_peer PEER -> SERVER_PID
  local peer="$1" logf="$RESULTS_DIR/r$ROUND-$1.log" i
  port_busy && die "port $PORT already in use"
  case "$peer" in
    ours-warning|ours-info)
      AUTH__API_KEY="$ADMIN_KEY" SERVER__HOST="$HOST" SERVER__PORT="$PORT" \
        SERVER__TLS__CERT_FILE="$CERT_DIR/server.crt" SERVER__TLS__KEY_FILE="$CERT_DIR/server.key" \
        LOGGER__LEVEL="${peer#ours-}" setsid "$BIN" serve > "$logf" 2>&1 < /dev/null &
      SERVER_PID=$! ;;
    haproxy-t*)
      PEER_THREADS="${peer#haproxy-t}" setsid "$HAPROXY" -db -f "$HAPROXY_CFG" > "$logf" 2>&1 < /dev/null &
      SERVER_PID=$! ;;
    *) die "unknown peer $peer" ;;
  esac
  for i in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "$peer exited at start (see $logf)"
    curl -sf --max-time 2 --cacert "$CERT_DIR/ca.crt" "$URL" -o /dev/null && break
    sleep 0.1
  done
  curl -sf --max-time 2 --cacert "$CERT_DIR/ca.crt" "$URL" -o "$RESULTS_DIR/check-$peer.json" || die "$peer not ready (see $logf)"
}

# ---- one scenario against the running server -----------------------------------------------------
run_scenario() {  # run_scenario PEER SCENARIO -> appends a TSV row
  local peer="$1" sc="$2" base="$RESULTS_DIR/r$ROUND-$peer-$sc" pid="$SERVER_PID"
  local c0 c1 s0 s1 t0 t1 wall count errors=0 rate us cpu_pct busy hwm n resumed=-
  [ "${SKIP_QUIET:-0}" = 1 ] || wait_quiet
  reset_hwm "$pid"
  c0=$(cpu_ticks "$pid"); s0=$(sys_busy_ticks); t0=$(date +%s.%N)
  case "$sc" in
    ka-c*)
      n="${sc#ka-c}"
      timeout --signal=INT --kill-after=5 $((DURATION + 30)) "$H2LOAD" --h1 -c "$n" -D "$DURATION" "$URL" > "$base.txt" 2>&1
      count=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^succeeded/) print $i}' "$base.txt")
      errors=$(awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^(failed|errored|timeout)/) s+=$i} END{print s+0}' "$base.txt")
      ;;
    hs-full)
      local end=$((SECONDS + DURATION)) i=0
      while [ $SECONDS -lt $end ]; do
        i=$((i + 1))
        timeout --signal=INT --kill-after=5 30 "$H2LOAD" --h1 -c "$HS_BATCH" -n "$HS_BATCH" "$URL" > "$base.$i.txt" 2>&1
      done
      count=$(cat "$base".*.txt | awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^succeeded/) s+=$i} END{print s+0}')
      errors=$(cat "$base".*.txt | awk '/^requests:/ {for (i=1;i<=NF;i++) if ($(i+1) ~ /^(failed|errored|timeout)/) s+=$i} END{print s+0}')
      { echo "# $i h2load runs"; cat "$base".*.txt; } > "$base.txt"; rm -f "$base".[0-9]*.txt
      ;;
    st-new|st-reuse)
      local st_args=(-new); [ "$sc" = st-reuse ] && st_args=(-reuse $ST_REUSE_ARGS)
      timeout --signal=INT --kill-after=5 $((DURATION + 30)) "$OPENSSL" s_time -connect "$HOST:$PORT" \
        "${st_args[@]}" -time "$DURATION" > "$base.txt" 2>&1
      # "N connections in T real seconds, ..." (the "connections/user sec" line is per s_time CPU second)
      count=$(awk '/connections in .* real seconds/ {print $1}' "$base.txt" | tail -1)
      # s_time prints one mark per connection: 'r' = session resumed, '*' = full handshake
      resumed=$(grep -E '^[*rt3]+$' "$base.txt" | tr -cd 'r' | wc -c)
      ;;
  esac
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid"); s1=$(sys_busy_ticks); hwm=$(vmhwm "$pid")
  kill -0 "$pid" 2>/dev/null || die "$peer died during $sc (see $RESULTS_DIR/r$ROUND-$peer.log)"
  [ -n "$count" ] || count=0
  if [ "${sc%%-*}" = ka ]; then
    wall=$(awk '/^finished in/ {sub(/s,$/,"",$3); print $3}' "$base.txt")           # h2load's own timing
  else
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  fi
  local twall; twall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
  rate=$(awk -v n="$count" -v w="$wall" 'BEGIN{printf "%.0f", (w>0)? n/w : 0}')
  us=$(awk -v d=$((c1 - c0)) -v h="$CLK_TCK" -v n="$count" 'BEGIN{ if (n>0) printf "%.1f", d/h/n*1e6; else print "-"}')
  cpu_pct=$(awk -v d=$((c1 - c0)) -v h="$CLK_TCK" -v w="$twall" 'BEGIN{printf "%.0f", d/h/w*100}')
  busy=$(awk -v d=$((s1 - s0)) -v h="$CLK_TCK" -v w="$twall" -v n="$(nproc)" 'BEGIN{printf "%.0f", d/h/w/n*100}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$peer" "$sc" "$count" "$wall" "$rate" "$us" \
    "$cpu_pct" "$hwm" "$busy" "$BUSY_BEFORE" "$errors" "$resumed" >> "$TSV"
  log "  r$ROUND $peer $sc: $rate/s ($count in ${wall}s), server ${us} us each, ${cpu_pct}% CPU, VmHWM ${hwm} kB, errors $errors, resumed $resumed"
}

perf_profile() {  # perf_profile PEER SCENARIO: perf record the running server during one extra run
  local peer="$1" sc="$2" out="$RESULTS_DIR/perf-$1-$2"
  wait_quiet   # before perf starts, so the recording window covers the load
  timeout --signal=INT --kill-after=5 $((PERF_SECONDS + 10)) perf record -F 999 -g -p "$SERVER_PID" -o "$out.data" \
    -- sleep "$PERF_SECONDS" > "$out.record.log" 2>&1 &
  local perf_pid=$!
  sleep 0.5
  local saved_round="$ROUND"; ROUND="perf"; SKIP_QUIET=1 run_scenario "$peer" "$sc"; ROUND="$saved_round"
  wait "$perf_pid" 2>/dev/null || true
  local demangle=(cat); command -v swift >/dev/null && demangle=(swift demangle --simplified)
  perf report -i "$out.data" --no-children -g none --sort symbol --stdio 2>/dev/null | grep '%' | head -40 | "${demangle[@]}" > "$out.txt"
  perf report -i "$out.data" --no-children -g none --sort dso --stdio 2>/dev/null | grep '%' | head -15 > "$out.dso.txt"
  rm -f "$out.data.old"
  log "  perf profile: $out.txt"
}

# ---- main ------------------------------------------------------------------------------------------
log "results in $RESULTS_DIR; BIN=$BIN; rounds=$ROUNDS duration=${DURATION}s peers: $PEERS"
{
  echo "date: $(date -Is)"; echo "kernel: $(uname -sr)"; echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo) x $(nproc)"
  echo "openssl: $("$OPENSSL" version)"; echo "h2load: $("$H2LOAD" --version 2>&1 | head -1)"
  command -v "$HAPROXY" >/dev/null && echo "haproxy: $("$HAPROXY" -v | head -1)"
  command -v swift >/dev/null && echo "swift: $(swift --version 2>&1 | head -1)"
  echo "claude-proxy: $("$BIN" --version 2>/dev/null || echo '?') ($BIN)"
} > "$RESULTS_DIR/versions.txt"

for ROUND in $(seq "$ROUNDS"); do
  for peer in $PEERS; do
    log "round $ROUND: $peer"
    start_peer "$peer"
    for sc in $SCENARIOS; do run_scenario "$peer" "$sc"; done
    stop_pid "$SERVER_PID"; SERVER_PID=""
  done
done

if [ "$PERF" = 1 ]; then
  ROUND=perf
  done_ours=0 done_hap=0
  for peer in $PEERS; do
    case "$peer" in ours-*) [ $done_ours = 1 ] && continue; done_ours=1 ;; haproxy-*) [ $done_hap = 1 ] && continue; done_hap=1 ;; esac
    start_peer "$peer"
    for sc in ka-c64 hs-full; do perf_profile "$peer" "$sc"; done
    stop_pid "$SERVER_PID"; SERVER_PID=""
  done
fi

# ---- table: best round per (peer, scenario) by rate; ratios ours/haproxy-t2 and ours/haproxy-t1 ----
awk -F'\t' -v peers="$PEERS" -v scen="$SCENARIOS" -v qmax="$QUIET_MAX" '
  NR == 1 || $1 == "perf" { next }
  {
    k = $2 SUBSEP $3
    if (!(k in best) || $6 + 0 > best[k] + 0) { best[k] = $6; us[k] = $7; hwm[k] = $9; err[k] = $12; res[k] = ($13 != "-" && $4 + 0 > 0) ? sprintf(", %.0f%% resumed", $13 / $4 * 100) : ""; flag[k] = ($11 + 0 > qmax) ? " !" : "" }
    if (!(k in lo) || $6 + 0 < lo[k] + 0) lo[k] = $6
    if ($9 + 0 > maxhwm[k] + 0) maxhwm[k] = $9
  }
  END {
    np = split(peers, P, " "); ns = split(scen, S, " ")
    unit["ka-c8"] = "req/s"; unit["ka-c64"] = "req/s"; unit["ka-c256"] = "req/s"
    unit["hs-full"] = "conn/s"; unit["st-new"] = "conn/s"; unit["st-reuse"] = "conn/s"
    printf "| scenario | peer | rate (best; worst) | server CPU us per req/conn | peak RSS (VmHWM) MB | rate vs haproxy-t2 | CPU/op vs haproxy-t2 | rate vs haproxy-t1 | CPU/op vs haproxy-t1 |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for (s = 1; s <= ns; s++) {
      for (p = 1; p <= np; p++) {
        k = P[p] SUBSEP S[s]; if (!(k in best)) continue
        r2 = "-"; c2 = "-"; r1 = "-"; c1 = "-"
        h2 = "haproxy-t2" SUBSEP S[s]; h1 = "haproxy-t1" SUBSEP S[s]
        if (P[p] !~ /^haproxy/) {
          if ((h2 in best) && best[h2] > 0) { r2 = sprintf("%.2f", best[k] / best[h2]); if (us[h2] + 0 > 0) c2 = sprintf("%.2f", us[k] / us[h2]) }
          if ((h1 in best) && best[h1] > 0) { r1 = sprintf("%.2f", best[k] / best[h1]); if (us[h1] + 0 > 0) c1 = sprintf("%.2f", us[k] / us[h1]) }
        }
        e = (err[k] + 0 > 0) ? sprintf(" (%d errors)", err[k]) : ""
        printf "| %s | %s | %s %s (%s)%s%s%s | %s | %.1f | %s | %s | %s | %s |\n", S[s], P[p], best[k], unit[S[s]], lo[k], res[k], e, flag[k], us[k], maxhwm[k] / 1024, r2, c2, r1, c1
      }
    }
  }' "$TSV" | tee "$RESULTS_DIR/table.md"
echo
echo "Rates: h2load's own wall time (ka-*), the script's wall time (hs-full, st-*); st-* count = s_time's connections."
echo "Server CPU: utime+stime of the server process over the whole run / completed requests (ka, hs) or connections (st)."
echo "Peak RSS: max over rounds of VmHWM, reset before each scenario. '!' = the machine was > ${QUIET_MAX}% busy before that run."
echo "Raw data: $RESULTS_DIR"
