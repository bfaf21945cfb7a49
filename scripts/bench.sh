#!/usr/bin/env bash
# Runs the standard logbench scenarios (issue #5) on this machine and writes
# docs/PERFORMANCE.md. Loopback only; every process it starts (logviewer,
# redis-server, rsyslogd) gets free ports and its own temp directory, and is
# stopped on exit, also on Ctrl-C.
#
#   scripts/bench.sh                  # the full run, about 5 minutes on 2 cores
#   BENCH_QUICK=1 scripts/bench.sh    # smaller counts and shorter runs, to try it
#   BENCH_OUT=/tmp/perf.md            # write the page elsewhere
#   BENCH_GOTIME=300ms                # -benchtime of the Go benchmarks
#
# Needs go, python3 (renders the page), redis-server, rsyslogd with omhiredis
# (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=${BENCH_QUICK:-0}
out=${BENCH_OUT:-$root/docs/PERFORMANCE.md}
gotime=${BENCH_GOTIME:-300ms}
if [ "$quick" = 1 ]; then
  s1_count=200000 s3_rate=10000 s3_dur=5s s4_clients=200 s4_rate=1000 s4_dur=5s idle=1000
else
  s1_count=1000000 s3_rate=10000 s3_dur=30s s4_clients=1000 s4_rate=1000 s4_dur=20s idle=10000
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/logbench.XXXXXX")
started=() # PIDs of the processes this script started

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench.sh: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local pid
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: SIGTERM and wait, then forget it.
stop() {
  local pid=$1 keep=() p
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${started[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  started=("${keep[@]}")
}

# free_port prints a loopback port free for TCP and UDP.
free_port() {
  python3 - <<'EOF'
import socket
for _ in range(50):
    t = socket.socket(); t.bind(("127.0.0.1", 0)); port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close(); u.close()
    print(port); break
EOF
}

# wait_tcp PORT PID NAME: until something accepts on 127.0.0.1:PORT (20 s).
wait_tcp() {
  local i
  for i in $(seq 200); do
    kill -0 "$2" 2>/dev/null || die "$3 exited at start; its log: $(cat "$work/$3.log" 2>/dev/null)"
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$3 not listening on 127.0.0.1:$1 after 20s"
}

# wait_healthy URL PID NAME: until URL answers 200 (20 s).
wait_healthy() {
  python3 - "$1" <<'EOF' || die "$3 not healthy at $1: $(cat "$work/$3.log" 2>/dev/null)"
import sys, time, urllib.request
for _ in range(200):
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# start_logviewer NAME ARGS...: sets LV_PID, LV_SYSLOG, LV_HTTP, LV_PPROF.
start_logviewer() {
  local name=$1 sp hp pp
  shift
  sp=$(free_port) hp=$(free_port) pp=$(free_port)
  "$work/logviewer" --syslog-addr "127.0.0.1:$sp" --http-addr "127.0.0.1:$hp" --pprof-addr "127.0.0.1:$pp" \
    --log-level warn "$@" >"$work/$name.log" 2>&1 &
  LV_PID=$!
  started+=("$LV_PID")
  LV_SYSLOG=127.0.0.1:$sp LV_HTTP=127.0.0.1:$hp LV_PPROF=127.0.0.1:$pp
  wait_healthy "http://$LV_HTTP/healthz" "$LV_PID" "$name"
  echo "logviewer --syslog-addr $LV_SYSLOG --http-addr $LV_HTTP --pprof-addr $LV_PPROF --log-level warn $*" >>"$work/commands.txt"
}

# start_redis NAME: a private redis-server without persistence; sets RD_PID, RD_URL.
start_redis() {
  local name=$1 port
  port=$(free_port)
  mkdir -p "$work/$name"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$name" --save '' --appendonly no \
    --protected-mode no --daemonize no --loglevel warning >"$work/$name.log" 2>&1 &
  RD_PID=$!
  started+=("$RD_PID")
  RD_URL=redis://127.0.0.1:$port/0
  wait_tcp "$port" "$RD_PID" "$name"
  echo "redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no" >>"$work/commands.txt"
}

# start_rsyslog NAME REDIS_PORT: Debian's rsyslogd with the deploy/rsyslog
# drop-in, listening on a free port and publishing into the given Redis;
# sets RS_PID, RS_ADDR.
start_rsyslog() {
  local name=$1 redis_port=$2 port dir
  port=$(free_port)
  dir=$work/$name
  mkdir -p "$dir/spool"
  render_rsyslog_conf "$port" "$redis_port" "$dir" >"$dir/rsyslog.conf"
  rsyslogd -n -i "$dir/rsyslogd.pid" -f "$dir/rsyslog.conf" >"$work/$name.log" 2>&1 &
  RS_PID=$!
  started+=("$RS_PID")
  RS_ADDR=127.0.0.1:$port
  wait_tcp "$port" "$RS_PID" "$name"
  echo "rsyslogd -n -i $dir/rsyslogd.pid -f $dir/rsyslog.conf   # deploy/rsyslog/logviewer.conf on port $port, Redis port $redis_port" >>"$work/commands.txt"
}

# render_rsyslog_conf SYSLOG_PORT REDIS_PORT DIR: a whole rsyslog.conf that
# holds only the drop-in, its parameters rewritten as the tests do
# (testsupport.RewriteRsyslogConf: every name="..." assignment, the name not
# preceded by a letter, digit, dot or underscore).
render_rsyslog_conf() {
  printf 'global(workDirectory="%s/spool")\n' "$3"
  sed -E -e "s/(^|[^A-Za-z0-9._])(port=\")[^\"]*(\")/\1\2$1\3/g" \
    -e 's/(^|[^A-Za-z0-9._])(address=")[^"]*(")/\1\2127.0.0.1\3/g' \
    -e 's/(^|[^A-Za-z0-9._])(server=")[^"]*(")/\1\2127.0.0.1\3/g' \
    -e "s/(^|[^A-Za-z0-9._])(serverport=\")[^\"]*(\")/\1\2$2\3/g" \
    deploy/rsyslog/logviewer.conf
}

# logbench NAME ARGS...: one measured run; the table goes to the terminal,
# the JSON report to $work/NAME.json.
logbench() {
  local name=$1
  shift
  echo "logbench $*" >>"$work/commands.txt"
  log "$name: logbench $*"
  "$work/logbench" --label "$name" --json-out "$work/$name.json" "$@"
}

# cpu_profile NAME SECONDS: fetch a CPU profile of the running logviewer in
# the background; wait for it with "wait $PROF_PID".
cpu_profile() {
  go tool pprof -top -nodecount=25 -seconds="$2" "$work/logviewer" "http://$LV_PPROF/debug/pprof/profile" \
    >"$work/prof-$1-cpu.txt" 2>&1 &
  PROF_PID=$!
}

# alloc_profile NAME: allocation tops of the running logviewer since it started.
alloc_profile() {
  go tool pprof -top -nodecount=20 -sample_index=alloc_space "$work/logviewer" \
    "http://$LV_PPROF/debug/pprof/allocs" >"$work/prof-$1-alloc.txt" 2>&1 || true
}

command -v redis-server >/dev/null || die "redis-server missing: run scripts/test.sh (it installs it)"
command -v rsyslogd >/dev/null || die "rsyslogd missing: run scripts/test.sh (it installs it)"
[ -f deploy/rsyslog/logviewer.conf ] || die "deploy/rsyslog/logviewer.conf missing"

# 10,000 idle SSE clients need as many descriptors here and in the daemon.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard"
if [ "$hard" -lt $((idle + 2000)) ]; then
  idle=$((hard - 2000))
  echo "bench.sh: ulimit -n is $hard: measuring $idle idle clients" >&2
fi

log "building"
go build -o "$work/logviewer" ./cmd/logviewer
go build -o "$work/logbench" ./cmd/logbench
: >"$work/commands.txt"
start_time=$(date -u +%Y-%m-%dT%H:%MZ)

# 1. Ingest, embedded: 4 TCP connections, RFC 3164 lines of ~140 bytes, one SSE client on *.
start_logviewer s1
cpu_profile s1 $([ "$quick" = 1 ] && echo 1 || echo 3)
logbench s1-embedded --addr "$LV_SYSLOG" -c 4 --count "$s1_count" --kind rfc3164 --size 140 \
  --sub-url "http://$LV_HTTP/sse/*" --pid "$LV_PID"
wait "$PROF_PID" || true
alloc_profile s1
stop "$LV_PID"

# 2. Ingest into Redis: logviewer --role ingest vs the rsyslog drop-in, each into
#    its own private Redis with one PSUBSCRIBE counter.
start_redis s2-redis-lv
start_logviewer s2-ingest --role ingest --redis "$RD_URL"
cpu_profile s2 $([ "$quick" = 1 ] && echo 1 || echo 3)
logbench s2-logviewer-ingest --addr "$LV_SYSLOG" -c 4 --count "$s1_count" --kind rfc3164 --size 140 \
  --redis "$RD_URL" --redis-pattern '*' --pid "$LV_PID,$RD_PID"
wait "$PROF_PID" || true
alloc_profile s2
stop "$LV_PID"
stop "$RD_PID"

start_redis s2-redis-rs
start_rsyslog s2-rsyslog "${RD_URL##*:}"
logbench s2-rsyslog --addr "$RS_ADDR" -c 4 --count "$s1_count" --kind rfc3164 --size 140 \
  --redis "$RD_URL" --redis-pattern '*' --pid "$RS_PID,$RD_PID"
stop "$RS_PID"
stop "$RD_PID"

# 3. Latency: 10,000 lines/s steady, 10 SSE and 10 WebSocket clients;
#    embedded, then an ingest node and a stream node over Redis.
start_logviewer s3
logbench s3-embedded --addr "$LV_SYSLOG" --rate "$s3_rate" --duration "$s3_dur" --kind rfc3164 --size 140 \
  --sub-url "http://$LV_HTTP/sse/*" --sub-url "ws://$LV_HTTP/ws/*" -k 10 --pid "$LV_PID"
stop "$LV_PID"

start_redis s3-redis
start_logviewer s3-ingest --role ingest --redis "$RD_URL"
ingest_pid=$LV_PID ingest_syslog=$LV_SYSLOG
start_logviewer s3-stream --role stream --redis "$RD_URL"
logbench s3-redis --addr "$ingest_syslog" --rate "$s3_rate" --duration "$s3_dur" --kind rfc3164 --size 140 \
  --sub-url "http://$LV_HTTP/sse/*" --sub-url "ws://$LV_HTTP/ws/*" -k 10 --pid "$ingest_pid,$LV_PID,$RD_PID"
stop "$LV_PID"
stop "$ingest_pid"
stop "$RD_PID"

# 4. Fan-out: many SSE clients on one channel at 1,000 lines/s; then idle
#    connected clients for the memory each costs.
start_logviewer s4
cpu_profile s4 $([ "$quick" = 1 ] && echo 2 || echo 10)
logbench s4-fanout --addr "$LV_SYSLOG" --rate "$s4_rate" --duration "$s4_dur" --kind rfc3164 --size 140 \
  --sub-url "http://$LV_HTTP/sse/*" -k "$s4_clients" --pid "$LV_PID" --ready-timeout 60s
wait "$PROF_PID" || true
logbench s4-idle --idle-clients "$idle" --idle-url "http://$LV_HTTP/sse/logbench-idle" --pid "$LV_PID"
stop "$LV_PID"

# 5. Slow client: scenario 3 embedded plus one SSE client that stops reading.
start_logviewer s5
logbench s5-slow-client --addr "$LV_SYSLOG" --rate "$s3_rate" --duration "$s3_dur" --kind rfc3164 --size 140 \
  --sub-url "http://$LV_HTTP/sse/*" --sub-url "ws://$LV_HTTP/ws/*" -k 10 --slow-clients 1 --pid "$LV_PID"
stop "$LV_PID"

log "Go benchmarks (-benchtime=$gotime)"
(go test -run '^$' -bench . -benchmem -benchtime="$gotime" ./ingest ./transform ./publish 2>&1 || true) |
  tee "$work/gobench.txt"

log "writing $out"
mkdir -p "$(dirname "$out")"
BENCH_WORK=$work BENCH_QUICK=$quick BENCH_START=$start_time BENCH_GOTIME=$gotime \
  python3 scripts/bench_page.py >"$out.tmp"
mv "$out.tmp" "$out"
echo "bench.sh: wrote $out" >&2
