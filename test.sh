#!/usr/bin/env bash
# The test command: vet, then every test (unit, conformance, end-to-end against the
# real binary, crash tests with kill -9). CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")"

# What the tests need beyond Go, from Debian: pdfinfo (checks the demo's PDF),
# Chromium (browser tests, driven headless by chromedp; nothing downloads a
# browser of its own), python3 (a urllib client), promtool (`promtool check
# metrics` on /metrics; Debian ships it in the prometheus package).
need() { command -v "$1" >/dev/null 2>&1; }
missing=()
need pdfinfo || missing+=(poppler-utils)
need chromium || missing+=(chromium)
need python3 || missing+=(python3)
need promtool || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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

# The message brokers the bridge tests talk to (cmd/errand/bridge*_test.go):
# the machine's RabbitMQ (5672), Mosquitto (1883) and NATS with JetStream
# (4222), each started if it does not answer. Kafka runs in the tests' own
# process (franz-go's kfake).
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
waitup() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 1; done; echo "port $1 did not open" >&2; return 1; }
if ! up 4222 && [ -x /usr/sbin/nats-server ]; then
  echo "== starting NATS (JetStream)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js \
    -sd /var/lib/nats-server -l /var/log/nats-server.log
  waitup 4222
fi
if ! up 1883 && need mosquitto; then
  echo "== starting Mosquitto"
  mkdir -p /run/mosquitto && chown mosquitto: /run/mosquitto 2>/dev/null || true
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  waitup 1883
fi
if ! up 5672 && need rabbitmq-server; then
  echo "== starting RabbitMQ"
  rabbitmq-server -detached
  waitup 5672
fi

echo "== go mod tidy (go.mod and go.sum must already be tidy)"
cp go.mod /tmp/errand-go.mod.$$ && cp go.sum /tmp/errand-go.sum.$$
go mod tidy
if ! cmp -s go.mod /tmp/errand-go.mod.$$ || ! cmp -s go.sum /tmp/errand-go.sum.$$; then
  git --no-pager diff -- go.mod go.sum || true
  echo "go.mod or go.sum is not tidy: run go mod tidy and commit the result" >&2
  exit 1
fi
rm -f /tmp/errand-go.mod.$$ /tmp/errand-go.sum.$$

echo "== go generate ./graphql (the committed gqlgen code must be what it makes)"
tmp=$(mktemp -d) && cp graphql/exec/*_gen.go graphql/exec/generated.go "$tmp"/
go generate ./graphql
for f in "$tmp"/*.go; do
  cmp -s "$f" "graphql/exec/$(basename "$f")" || { echo "graphql/exec/$(basename "$f") is not what go generate ./graphql makes: run it and commit" >&2; exit 1; }
done
rm -rf "$tmp"

echo "== go vet"
go vet ./...
echo "== go test (race detector on)"
go test -count=1 -race -timeout 15m ./... 2>&1 | tee /tmp/errand-test.log
