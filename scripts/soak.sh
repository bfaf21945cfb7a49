#!/usr/bin/env bash
# Soak run under hostile load (issue 11): builds cmd/logviewer and cmd/soak
# and runs soak, which starts a fresh daemon with small stated limits for each
# of five attacks (64 KiB lines, SSE clients that never read, 50,000 UDP
# senders, idle and half-line TCP connections, a UDP flood while the daemon is
# stopped), runs well-behaved traffic beside each, samples the daemon's RSS
# every second, and writes docs/RELIABILITY.md. big-lines and stuck-clients
# run a second time with the daemon's GOMEMLIMIT set to the sum of its
# budgets, to tell the garbage collector's headroom from memory no budget
# counts. The page's "What we found" section is scripts/soak-notes.md.
#
# Run by hand only: it is NOT part of scripts/test.sh or CI (it takes minutes,
# opens thousands of sockets and saturates the machine).
#
#   scripts/soak.sh                   # the full run: each attack 40 s, about 6 minutes on 2 cores
#   SOAK_QUICK=1 scripts/soak.sh      # each attack 10 s, about 2 minutes
#   SOAK_OUT=/tmp/rel.md              # write the page elsewhere
#   SOAK_KEEP=1                       # keep the work directory (daemon logs, heap and CPU profiles)
#   scripts/soak.sh --only big-lines --cpu-profile 10s --daemon-env GOMEMLIMIT=120MiB   # soak's own flags
#
# Loopback only: the daemon listens on free 127.0.0.1 ports; the attacks send
# from addresses in 127.0.0.0/8 (Linux treats all of it as local). Every
# process it starts is stopped on exit, also on Ctrl-C. Needs go.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=${SOAK_QUICK:-0}
out=${SOAK_OUT:-$root/docs/RELIABILITY.md}
work=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
soak_pid=

cleanup() {
  if [ -n "$soak_pid" ]; then
    kill -TERM "$soak_pid" 2>/dev/null || true
    wait "$soak_pid" 2>/dev/null || true
  fi
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "soak.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/logviewer" ./cmd/logviewer
go build -o "$work/soak" ./cmd/soak

args=(--logviewer "$work/logviewer" --work "$work" --out "$out.tmp")
command="scripts/soak.sh"
if [ "$quick" = 1 ]; then
  args+=(--quick)
  command="SOAK_QUICK=1 $command"
fi
[ ! -f scripts/soak-notes.md ] || args+=(--notes scripts/soak-notes.md)
[ $# = 0 ] || command="$command $*"
args+=(--command "$command" "$@")

# The attacks hold thousands of sockets: soak raises its own soft file limit
# to the hard one, and the daemon raises its own at start.
"$work/soak" "${args[@]}" &
soak_pid=$!
wait "$soak_pid"
soak_pid=
mkdir -p "$(dirname "$out")"
mv "$out.tmp" "$out"
echo "soak.sh: wrote $out" >&2
