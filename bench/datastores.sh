#!/usr/bin/env bash
# The datastores' latency through `automaton platform serve`, over REST with the admin token:
# adding a PostgreSQL datastore (the first starts the managed cluster), a Redis one and a
# SQLite one; a one-row query on each; a backup of 10,000 PostgreSQL rows. Prints medians of
# N (default 5) fresh platforms for the adds, of 4*N for the queries.
# Uses $AUTOMATON_BIN (default: the release build; build it first with
# `cargo build --release -p automaton-runtime`); needs curl, python3, PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-5}"
bin="${AUTOMATON_BIN:-$(pwd)/${CARGO_TARGET_DIR:-target}/release/automaton}"
scratch="$(mktemp -d)"
daemon=""
trap '[ -n "$daemon" ] && kill $daemon 2>/dev/null; wait 2>/dev/null || true; rm -rf "$scratch"' EXIT
timed() { # timed LABEL COMMAND...: appends "LABEL microseconds"
    local label="$1"; shift
    local start end
    start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N)
    echo "$label $(((end - start) / 1000))" >>"$scratch/times"
}
for round in $(seq "$n"); do
    data="$scratch/data$round"
    "$bin" platform serve --json --listen 127.0.0.1:0 --data-dir "$data" >"$scratch/serve$round.log" 2>&1 &
    daemon=$!
    while [ ! -f "$data/endpoint.json" ]; do sleep 0.05; done
    field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$data/endpoint.json" "$1"; }
    url="$(field url)"
    auth="Authorization: Bearer $(field token)"
    api() { curl -sf -H "$auth" -H 'Content-Type: application/json' "$@"; }
    api -d '{"name":"bench"}' "$url/v1/projects" >/dev/null
    timed "add-postgres-first" api -d '{"kind":"postgres","name":"main"}' "$url/v1/projects/bench/datastores"
    timed "add-postgres-again" api -d '{"kind":"postgres","name":"second"}' "$url/v1/projects/bench/datastores"
    timed "add-redis" api -d '{"kind":"redis","name":"cache"}' "$url/v1/projects/bench/datastores"
    timed "add-sqlite" api -d '{"kind":"sqlite","name":"local"}' "$url/v1/projects/bench/datastores"
    api -d '{"query":"CREATE TABLE t AS SELECT g AS n FROM generate_series(1, 10000) g"}' "$url/v1/projects/bench/datastores/main/query" >/dev/null
    for i in 1 2 3 4; do
        timed "query-postgres" api -d '{"query":"SELECT COUNT(*) FROM t"}' "$url/v1/projects/bench/datastores/main/query"
        timed "query-redis" api -d "{\"query\":\"SET k$i v\"}" "$url/v1/projects/bench/datastores/cache/query"
        timed "query-sqlite" api -d '{"query":"SELECT 1"}' "$url/v1/projects/bench/datastores/local/query"
    done
    timed "backup-postgres-10k" api -X POST "$url/v1/projects/bench/datastores/main/backups"
    kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=""
done
python3 - "$scratch/times" <<'PY'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, micros = line.split()
    times[label].append(int(micros) / 1000)
for label, values in times.items():
    values.sort()
    print(f"{label:20} n={len(values):2} median {statistics.median(values):8.1f} ms  min {values[0]:8.1f}  max {values[-1]:8.1f}")
PY
