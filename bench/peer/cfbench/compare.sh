#!/usr/bin/env bash
# Run from the repository root with errand (serve --dev --config bench/peer/cfbench/errand.yaml)
# on :8090 and Centrifugo v6.9.1 (centrifugo -c bench/peer/cfbench/centrifugo.json) on :8000.
# SSE fan-out: errand (own process, SQLite synchronous=full, every event stored) vs
# Centrifugo v6.9.1 uni_sse (memory engine, history 1000), the same client, alternating.
R=${1:-3}; SUBS=${2:-10000}; EV=${3:-100}
for r in $(seq 1 $R); do
  for t in errand centrifugo; do
    url=http://127.0.0.1:8090; [ $t = centrifugo ] && url=http://127.0.0.1:8000
    sleep 5; echo "round $r load $(cut -d' ' -f1 /proc/loadavg) $(go run ./bench/peer/cfbench -target $t -url $url -subs $SUBS -events $EV)"
  done
done
