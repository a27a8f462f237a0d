#!/usr/bin/env bash
# Reproduces the runtime's performance figures: start-up time (hyperfine), the tokens of the
# assembled prompt and tool specs, the runtime's overhead per turn, and the memory and CPU of
# a sleeping `automaton run`. Release builds only; needs hyperfine and jq
# (`apt-get install -y hyperfine jq`). Figures are medians; the machine is shared, so
# repeat a run before trusting a change of a few percent.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p automaton-runtime
bin="$(pwd)/${CARGO_TARGET_DIR:-target}/release/automaton"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
home="$scratch/home"
"$bin" --home "$home" init --json --name Bench \
    --genesis-prompt "Build small web tools and sell them." \
    --creator 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed >/dev/null

echo "== start-up (target: --version < 10 ms)"
hyperfine --warmup 3 -N --export-json "$scratch/startup.json" \
    "$bin --version" "$bin --home $home status --json"
jq -r '.results[] | "median \(.median * 1e6 | round / 1e3) ms  min \(.min * 1e6 | round / 1e3) ms  \(.command)"' \
    "$scratch/startup.json"

echo "== peak RSS of one-shot commands (KiB; prompt loads the tokenizer, status does not)"
for args in "--version" "status --json" "prompt --json"; do
    # shellcheck disable=SC2086 # the arguments are meant to split
    /usr/bin/time -f "%M KiB  $args" "$bin" --home "$home" $args >/dev/null
done

echo "== prompt and tool-spec tokens (fresh home)"
"$bin" --home "$home" prompt --json | jq -c '{prompt_tokens, tool_spec_tokens, layers}'

echo "== overhead per turn (target: p50 < 2 ms)"
cargo bench -p automaton-runtime --bench turn_overhead

echo "== sleeping automaton run (target: RSS < 20 MB)"
cargo bench -p automaton-runtime --bench sleep_rss
