#!/usr/bin/env bash
# OURS_CMD for ../shared/bench/run-peers.sh and run-latency.sh: serves claude-proxy per the harness's env contract
# (listen on $PROXY_HOST:$PROXY_PORT with $PROXY_TLS_CERT/KEY, accept $CLIENT_API_KEY as a client key, relay to
# https://$UPSTREAM_SERVER_NAME:<port of $UPSTREAM_HOSTPORT> trusting $UPSTREAM_CA_FILE, with one account whose access
# token is $UPSTREAM_TOKEN). Stays in the foreground.
#   OURS_CMD='exec /path/to/scripts/bench-ours.sh' bench/run-peers.sh haproxy ours
# Knobs: CLAUDE_PROXY_BIN (default: bin/claude-proxy next to this script's repo), OURS_LOG_LEVEL (default warning).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${CLAUDE_PROXY_BIN:-$repo/bin/claude-proxy}"
data="$(mktemp -d /tmp/claude-proxy-bench-XXXXXX)"
export AUTH__API_KEY="bench-admin-$(openssl rand -hex 12)"
export AUTH__CLIENT_KEYS="$CLIENT_API_KEY"
export SERVER__HOST="$PROXY_HOST" SERVER__PORT="$PROXY_PORT"
export SERVER__TLS__CERT_FILE="$PROXY_TLS_CERT" SERVER__TLS__KEY_FILE="$PROXY_TLS_KEY"
export CLAUDE__BASE_URL="https://$UPSTREAM_SERVER_NAME:${UPSTREAM_HOSTPORT##*:}"
export CLAUDE__CA_FILE="$UPSTREAM_CA_FILE"
export STORAGE__DATA_FOLDER="$data/data"
export LOGGER__LEVEL="${OURS_LOG_LEVEL:-warning}"
expiry=$(( ($(date +%s) + 86400) * 1000 ))
printf '{"claudeAiOauth":{"accessToken":"%s","refreshToken":"bench-refresh-token","expiresAt":%s}}' \
    "$UPSTREAM_TOKEN" "$expiry" > "$data/credentials.json"
"$bin" accounts import "$data/credentials.json" > /dev/null
exec "$bin" serve
