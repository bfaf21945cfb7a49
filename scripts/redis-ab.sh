#!/usr/bin/env bash
# Redis's CPU per record for `logviewer --role ingest`, two builds side by
# side: one burst of 1,000,000 RFC 3164 lines over 4 TCP connections per
# run into a private Redis with one PSUBSCRIBE counter (logbench), Redis's
# CPU read from INFO cpu before and after; the builds, the proof of
# concept's rsyslog (plain PUBLISH per record) and both builds on two
# shards alternate, ROUNDS times.
#
#   scripts/redis-ab.sh OLD_REF [ROUNDS]     # e.g. scripts/redis-ab.sh main 3
#   RATE=200000 KINDS="old new oldshards shards" scripts/redis-ab.sh main 3
#
# RATE sends at that many lines/s (a steady rate, where flushes go by time,
# not size) instead of as fast as possible; KINDS picks the runs of a round.
#
# OLD_REF is a git revision, built from `git archive`; the new build is the
# working tree. Needs go, redis-server, redis-cli, rsyslogd with omhiredis.
set -euo pipefail
cd "$(dirname "$0")/.."
old_ref=${1:?usage: scripts/redis-ab.sh OLD_REF [ROUNDS]}
rounds=${2:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/redis-ab.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/old-src"
git archive "$old_ref" | tar -x -C "$W/old-src"
(cd "$W/old-src" && go build -o "$W/lv-old" ./cmd/logviewer)
go build -o "$W/lv-new" ./cmd/logviewer
go build -o "$W/logbench" ./cmd/logbench
# render_poc_conf from bench.sh: the proof of concept's rsyslog config.
eval "$(awk '/^render_poc_conf\(\)/{f=1} f{print} f&&/^EOF$/{getline; print; exit}' scripts/bench.sh)"

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() {
  local i
  for i in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
  echo "redis-ab.sh: nothing listens on $1" >&2; exit 1
}
redis_cpu() { redis-cli -p "$1" info cpu | awk -F: '/^used_cpu_(user|sys):/{s+=$2} END{printf "%.3f", s}'; }
# start_redis: a private Redis; the counter must not be cut off when it
# falls behind (client-output-buffer-limit pubsub); sets RP, RPID.
start_redis() {
  RP=$(free_port)
  mkdir -p "$W/redis-$RP"
  redis-server --port "$RP" --bind 127.0.0.1 --dir "$W/redis-$RP" --save '' --appendonly no --loglevel warning \
    --client-output-buffer-limit 'pubsub 1gb 1gb 0' >/dev/null 2>&1 &
  RPID=$!
  pids+=("$RPID")
  wait_port "$RP"
}

# run NAME old|new|poc|shards: one burst; prints delivered/s, lost and
# each Redis's CPU µs per record.
run() {
  local name=$1 kind=$2 sp hp ingest url ports=() rpids=() before=() i extra=()
  start_redis; ports+=("$RP"); rpids+=("$RPID")
  url=redis://127.0.0.1:$RP/0
  if [ "$kind" = shards ] || [ "$kind" = oldshards ]; then
    start_redis; ports+=("$RP"); rpids+=("$RPID")
    url="$url,redis://127.0.0.1:$RP/0"
    extra=(--app-per-conn)
  fi
  sp=$(free_port) hp=$(free_port)
  case $kind in
  poc)
    mkdir -p "$W/rs-$sp/spool"
    render_poc_conf "$sp" "${ports[0]}" "$W/rs-$sp" >"$W/rs-$sp/rsyslog.conf"
    rsyslogd -n -i "$W/rs-$sp/pid" -f "$W/rs-$sp/rsyslog.conf" >/dev/null 2>&1 &
    ;;
  old) "$W/lv-old" --role ingest --redis "$url" --syslog-addr "127.0.0.1:$sp" --http-addr "127.0.0.1:$hp" --log-level warn >/dev/null 2>&1 & ;;
  new) "$W/lv-new" --role ingest --redis "$url" --syslog-addr "127.0.0.1:$sp" --http-addr "127.0.0.1:$hp" --log-level warn >/dev/null 2>&1 & ;;
  oldshards) "$W/lv-old" --role ingest --redis "$url" --channel-from app --syslog-addr "127.0.0.1:$sp" --http-addr "127.0.0.1:$hp" --log-level warn >/dev/null 2>&1 & ;;
  shards) "$W/lv-new" --role ingest --redis "$url" --channel-from app --syslog-addr "127.0.0.1:$sp" --http-addr "127.0.0.1:$hp" --log-level warn >/dev/null 2>&1 & ;;
  esac
  ingest=$!
  pids+=("$ingest")
  wait_port "$sp"
  for i in "${!ports[@]}"; do before[$i]=$(redis_cpu "${ports[$i]}"); done
  if [ -n "${RATE:-}" ]; then extra+=(--rate "$RATE"); fi
  "$W/logbench" --addr "127.0.0.1:$sp" -c 4 --count 1000000 --kind rfc3164 --size 140 "${extra[@]}" \
    --redis "$url" --redis-pattern '*' --json-out "$W/$name.json" >"$W/$name.txt" 2>&1 || true
  local cpus=""
  for i in "${!ports[@]}"; do
    cpus+=" $(python3 -c "print(f'{($(redis_cpu "${ports[$i]}") - ${before[$i]}):.2f}')")"
  done
  python3 - "$W/$name.json" "$name" "$cpus" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["groups"][0]
print(f"{sys.argv[2]}: {g['delivered_rate']:,.0f} lines/s delivered, {g['lost']:,} lost; Redis CPU µs per record:{sys.argv[3]}")
PY
  kill "$ingest" "${rpids[@]}" 2>/dev/null || true
  wait "$ingest" "${rpids[@]}" 2>/dev/null || true
}

echo "redis-ab.sh: old $old_ref ($(git rev-parse --short "$old_ref")), new: the working tree ($(git rev-parse --short HEAD)), $rounds rounds"
for round in $(seq "$rounds"); do
  for kind in ${KINDS:-old new poc oldshards shards}; do run "$kind-$round" "$kind"; done
done
