#!/usr/bin/env bash
# The test command: vet, then every test (unit, conformance, end-to-end against the
# real binary, crash tests with kill -9). CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")"

# What the tests need beyond Go: pdfinfo (checks the demo's PDF).
need() { command -v "$1" >/dev/null 2>&1; }
if ! need pdfinfo; then
  echo "== installing poppler-utils (pdfinfo)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
fi
# The third-party clients the end-to-end tests drive (npm eventsource, ws, …),
# at the versions package-lock.json pins.
if [ ! -d e2e/js/node_modules ] || [ e2e/js/package-lock.json -nt e2e/js/node_modules ]; then
  echo "== npm ci (e2e/js)"
  (cd e2e/js && npm ci --no-audit --no-fund --silent)
fi

# PostgreSQL for the storage conformance suite (storage/postgres): the machine's
# own server, started if it is stopped; ERRAND_TEST_POSTGRES names another.
if [ -z "${ERRAND_TEST_POSTGRES:-}" ] && need pg_ctlcluster && [ -d /etc/postgresql ]; then
  ver=$(ls /etc/postgresql | head -1)
  if ! pg_ctlcluster --skip-systemctl-redirect "$ver" main status >/dev/null 2>&1; then
    echo "== starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  fi
fi

echo "== go vet"
go vet ./...
echo "== go test (race detector on)"
go test -count=1 -race -timeout 15m ./... 2>&1 | tee /tmp/errand-test.log
