#!/usr/bin/env bash
# The forge's latency through `automaton platform serve`: commitRepoFiles over REST (one small
# file), and the real git CLI's push (one small commit), clone and fetch of a repository with
# N commits, all authenticated with the platform token. Prints medians of N (default 15).
# Uses $AUTOMATON_BIN (default: the release build; build it first with
# `cargo build --release -p automaton-runtime`); needs curl, git and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${N:-15}"
bin="${AUTOMATON_BIN:-$(pwd)/${CARGO_TARGET_DIR:-target}/release/automaton}"
scratch="$(mktemp -d)"
"$bin" platform serve --json --listen 127.0.0.1:0 --data-dir "$scratch/data" >"$scratch/serve.log" 2>&1 &
daemon=$!
trap 'kill $daemon; wait $daemon 2>/dev/null || true; rm -rf "$scratch"' EXIT
while [ ! -f "$scratch/data/endpoint.json" ]; do sleep 0.05; done
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$scratch/data/endpoint.json" "$1"; }
url="$(field url)"
token="$(field token)"
auth="Authorization: Bearer $token"
curl -sf -H "$auth" -d '{"name":"bench"}' "$url/v1/projects" >/dev/null
curl -sf -H "$auth" -d '{"name":"site"}' "$url/v1/projects/bench/repos" >/dev/null
export HOME="$scratch" GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
clone_url="${url/http:\/\//http://x:$token@}/git/bench/site.git"
timed() { # timed LABEL COMMAND...: appends "LABEL microseconds"
    local label="$1"; shift
    local start end
    start=$(date +%s%N); "$@"; end=$(date +%s%N)
    echo "$label $(((end - start) / 1000))" >>"$scratch/times"
}
for i in $(seq "$n"); do
    timed commit curl -sf -o /dev/null -H "$auth" \
        -d "{\"message\":\"c$i\",\"files\":[{\"path\":\"f$i.txt\",\"content\":\"$i\"}]}" \
        "$url/v1/projects/bench/repos/site/commits"
done
git clone -q "$clone_url" "$scratch/checkout"
for i in $(seq "$n"); do
    echo "$i" >"$scratch/checkout/p$i.txt"
    git -C "$scratch/checkout" add "p$i.txt"
    git -C "$scratch/checkout" commit -qm "p$i"
    timed push git -C "$scratch/checkout" push -q origin HEAD:main
done
for i in $(seq "$n"); do
    timed clone git clone -q "$clone_url" "$scratch/clone$i"
    timed fetch git -C "$scratch/clone$i" fetch -q origin
done
python3 - "$scratch/times" <<'PY'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, micros = line.split()
    times[label].append(int(micros) / 1000)
for label, values in times.items():
    values.sort()
    print(f"{label:7} n={len(values)} median {statistics.median(values):.1f} ms  min {values[0]:.1f}  max {values[-1]:.1f}")
PY
