# bench/common.sh: what bench/run and bench/soak share. Sourced with HERE,
# REPO, OUT and LOAD_CPU set: ports, process bookkeeping, the release build,
# and the origin side (nginx origin, mock Ollama, telemetry sink) on LOAD_CPU.
ORIGIN=18080 MOCK=18081 OTLP=14317 SENTRY=19411
declare -A PORT=([direct]=18080 [nginx]=18090 [haproxy]=18091 [sidecar-off]=18092 [sidecar-all]=18093 [sidecar-traced]=18094 [sidecar-genai]=18095
  [sidecar-metrics-otlp]=18096 [sidecar-logs-console]=18097 [sidecar-logs-otlp]=18098 [sidecar-outcome]=18099)
declare -A PID=()
mkdir -p "$OUT/tmp" "$OUT/www" "$OUT/logs"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

start() { # name cpu cmd...
  local name=$1 cpu=$2; shift 2
  taskset -c "$cpu" "$@" >"$OUT/logs/$name.log" 2>&1 &
  PIDS+=($!); PID[$name]=$!
}
render() { sed -e "s#@DIR@#$OUT#g; s#@PORT@#$2#g; s#@ORIGIN@#$ORIGIN#g; s#@STREAM@#127.0.0.1:$MOCK#g" "$HERE/$1" >"$OUT/$3"; }
wait_ready() { # port
  for _ in $(seq 100); do curl -fs -o /dev/null -X POST "http://127.0.0.1:$1/api/generate" && return 0; sleep 0.1; done
  echo "nothing answers on port $1 (see $OUT/logs)" >&2; exit 1
}
cpu_split() { awk '{print $14, $15}' "/proc/$1/stat"; } # user and kernel clock ticks
start_sidecar() { # name cpu: otel-sidecar with bench/NAME.toml on its port
  LISTEN_ADDR=127.0.0.1:${PORT[$1]} UPSTREAM_URL=${SIDECAR_UPSTREAM:-http://127.0.0.1:$ORIGIN} OTLP_ENDPOINT=http://127.0.0.1:$OTLP \
  SENTRY_DSN=http://benchkey@127.0.0.1:$SENTRY/1 ACCESS_LOG_FILE=${ACCESS_LOG_FILE:-$OUT/logs/$1-access.log} \
    start "$1" "$2" "$BIN/otel-sidecar" --config "$HERE/$1.toml"
}
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }

echo "building (release)..."
(cd "$REPO" && cargo build --release --quiet --bin otel-sidecar --example mock_ollama --example telemetry_sink --example streamload)
BIN=${CARGO_TARGET_DIR:-$REPO/target}/release

head -c 1048576 /dev/urandom >"$OUT/www/big"
truncate -s 1G "$OUT/www/huge"

MOCK_TOKEN_DELAY_MS=20 start mock "$LOAD_CPU" "$BIN/examples/mock_ollama" "127.0.0.1:$MOCK"
start telemetry "$LOAD_CPU" "$BIN/examples/telemetry_sink" "127.0.0.1:$OTLP" "127.0.0.1:$SENTRY"
render origin-nginx.conf "$ORIGIN" origin.conf
start direct "$LOAD_CPU" nginx -p "$OUT" -c "$OUT/origin.conf"
wait_ready "$ORIGIN"

