#!/usr/bin/env bash
# A cluster on this machine, for trying it out (make cluster): a nats-server
# built from the module hangoutd pins, and three hangoutd nodes joined
# through it. Ctrl-C stops them all.
#
#   node   clients                  admin (/metrics, /readyz)
#   n1     ws://127.0.0.1:13381/    http://127.0.0.1:13391/
#   n2     ws://127.0.0.1:13382/    http://127.0.0.1:13392/
#   n3     ws://127.0.0.1:13383/    http://127.0.0.1:13393/
#
# Open http://127.0.0.1:13381/ and http://127.0.0.1:13382/ in two tabs: the
# demo pages see each other. NATS_PORT (default 4222) moves the broker;
# extra arguments go to every node (e.g. -log-level debug).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${NATS_PORT:-4222}
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

bin/nats-server -a 127.0.0.1 -p "$port" &
pids+=($!)
for i in 1 2 3; do
  bin/hangoutd -addr "127.0.0.1:1338$i" -admin "127.0.0.1:1339$i" \
    -nats "nats://127.0.0.1:$port" -node "n$i" "$@" 2>&1 | sed -u "s/^/n$i: /" &
  pids+=($!)
done
echo "cluster: nats on 127.0.0.1:$port; nodes n1..n3 on ws://127.0.0.1:13381..13383/ (Ctrl-C stops)"
wait
