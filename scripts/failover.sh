#!/usr/bin/env bash
# Failover time over N runs: two `fixloop serve` replicas (lease 3 s) watch a `fixloop demo-app` on one PostgreSQL
# schema; the leader is SIGKILLed; the time from the kill to the new leader's first journal entry (epoch + 1) is
# measured on the database. Usage: failover.sh BINARY [RUNS]
set -euo pipefail
BIN=$1; RUNS=${2:-10}; DB=${FIXLOOP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
LEASE=${LEASE:-3}
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$BIN" demo-app --demo-port 18901 >"$work/app.log" 2>&1 &
for run in $(seq 1 "$RUNS"); do
  schema="fixloop_failover_$$_$run"
  psql -q "$DB" -c "CREATE SCHEMA $schema" >/dev/null
  url="$DB?options=-csearch_path%3D$schema"
  env -i PATH="$PATH" RUST_LOG=warn DEMO_APP_URL=http://127.0.0.1:18901 FIXLOOP_DATABASE_URL="$url" \
    FIXLOOP_REPLICA_ID=a FIXLOOP_LEASE_SECONDS=$LEASE "$BIN" serve --port 18911 >"$work/a.log" 2>&1 & a=$!
  until curl -sf http://127.0.0.1:18911/healthz | grep -q '"leads":\["demo-checkout"\]'; do sleep 0.05; done
  env -i PATH="$PATH" RUST_LOG=warn DEMO_APP_URL=http://127.0.0.1:18901 FIXLOOP_DATABASE_URL="$url" \
    FIXLOOP_REPLICA_ID=b FIXLOOP_LEASE_SECONDS=$LEASE "$BIN" serve --port 18912 >"$work/b.log" 2>&1 & b=$!
  until curl -sf http://127.0.0.1:18912/healthz >/dev/null; do sleep 0.05; done
  sleep 1
  killed=$(date +%s.%N); kill -9 $a; wait $a 2>/dev/null || true
  first=""
  until [ -n "$first" ]; do
    first=$(psql -qtA "$DB" -c "SELECT extract(epoch FROM min(at::timestamptz)) FROM $schema.journal WHERE epoch > 1")
    sleep 0.05
  done
  echo "run $run: $(echo "$first - $killed" | bc -l | xargs printf '%.3f') s"
  kill $b; wait $b 2>/dev/null || true
  psql -q "$DB" -c "DROP SCHEMA $schema CASCADE" >/dev/null
done
