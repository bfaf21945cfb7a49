#!/usr/bin/env bash
# The project's test command: installs what the tests talk to (redis-server, redis-cli,
# rsyslogd with omhiredis and gnutls, Chromium, logger, python3, htpasswd, curl) when missing, then runs
# gofmt, go vet and the whole test suite with the race detector.
# Under CI=true a part that is still missing after the install is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

have_omhiredis() { find /usr/lib -path '*rsyslog*' -name omhiredis.so 2>/dev/null | grep -q .; }
have_gtls() { find /usr/lib -path '*rsyslog*' -name lmnsd_gtls.so 2>/dev/null | grep -q .; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools) # the tests' Redis Cluster: redis-cli --cluster create
command -v rsyslogd >/dev/null || need+=(rsyslog)
have_omhiredis || need+=(rsyslog-hiredis)
have_gtls || need+=(rsyslog-gnutls)
command -v chromium >/dev/null || need+=(chromium)
command -v logger >/dev/null || need+=(bsdutils)
command -v python3 >/dev/null || need+=(python3)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# rsyslog's package starts a system daemon on install; the tests run their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet rsyslog 2>/dev/null; then
  systemctl stop rsyslog || true
fi

missing=()
for bin in redis-server redis-cli rsyslogd chromium logger prlimit python3 htpasswd curl; do
  command -v "$bin" >/dev/null || missing+=("$bin")
done
have_omhiredis || missing+=(omhiredis)
have_gtls || missing+=(lmnsd_gtls)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "test.sh: missing after install: ${missing[*]}" >&2
    exit 1
  fi
  echo "test.sh: missing ${missing[*]}: the tests that need them will be skipped" >&2
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "test.sh: gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
go test -race -count=1 -timeout 12m "$@" ./...
