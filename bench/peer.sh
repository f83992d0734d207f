#!/usr/bin/env bash
# Peer benchmark: chorus against llama.cpp's own tools, on the same GGUF file,
# with the same thread count, in one run (the ratios are what to read; the
# machines here are shared and absolute speeds drift).
#
#   bench/peer.sh
#
# Environment:
#   CHORUS_PEER_DIR  cache for node-llama-cpp, the llama.cpp build and the
#                    synthesized model (default ~/.cache/chorus-peer)
#   CHORUS_BIN       the chorus binary (default build/chorus; built with
#                    scripts/build.sh when missing)
#   THREADS          threads for both (default 2)
#   REPS             repetitions for llama-bench and chorus bench (default 3)
#
# llama.cpp comes from the npm package node-llama-cpp@3.22.1, which carries
# the matching llama.cpp source (release v0.5.0) as a git bundle. It is cloned
# and built in the cache folder, never copied into this repository.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER_DIR=${CHORUS_PEER_DIR:-$HOME/.cache/chorus-peer}
CHORUS_BIN=${CHORUS_BIN:-$ROOT/build/chorus}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
BIG=$PEER_DIR/tinyllama-1.1b-q4_0.gguf
SMALL=$ROOT/models/stories260K.gguf

log() { echo "[peer] $*" >&2; }

# --- tools -----------------------------------------------------------------

source "$ROOT/bench/llama_cpp.sh"  # LLAMA_SRC, LLAMA_BIN, apt_install, build_llama

# jq parses the JSON; GNU time (/usr/bin/time -v) measures peak RSS.
need=()
command -v jq >/dev/null || need+=(jq)
[[ -x /usr/bin/time ]] || need+=(time)
[[ ${#need[@]} -eq 0 ]] || apt_install "${need[@]}"

# --- llama.cpp ---------------------------------------------------------------

if [[ ! -x $LLAMA_BIN/llama-bench || ! -x $LLAMA_BIN/llama-batched-bench || ! -x $LLAMA_BIN/llama-perplexity ]]; then
  build_llama build.log llama-bench llama-batched-bench llama-perplexity
fi

# --- chorus and the model -----------------------------------------------------

if [[ ! -x $CHORUS_BIN ]]; then
  log "building chorus (scripts/build.sh)"
  bash "$ROOT/scripts/build.sh"
  CHORUS_BIN=$ROOT/build/chorus
fi
if [[ ! -f $BIG ]]; then
  log "synthesizing $BIG (random weights, TinyLlama-1.1B shape, Q4_0)"
  "$CHORUS_BIN" synth --shape tinyllama-1.1b --type q4_0 -o "$BIG.tmp"
  mv "$BIG.tmp" "$BIG"
fi

# --- runs --------------------------------------------------------------------

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# timed NAME cmd...: stdout to $TMP/NAME.out, GNU time report to $TMP/NAME.time.
timed() {
  local name=$1; shift
  log "$name: $*"
  /usr/bin/time -v -o "$TMP/$name.time" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" ||
    { log "$name failed:"; tail -20 "$TMP/$name.err" >&2; exit 1; }
}
peak_mib() { awk -F: '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$TMP/$1.time"; }

T=$THREADS
# 1. Prefill 512 and decode 128 (llama-bench's defaults).
timed llama_bench "$LLAMA_BIN/llama-bench" -m "$BIG" -p 512 -n 128 -t "$T" -r "$REPS" -o json
timed chorus_bench "$CHORUS_BIN" bench -m "$BIG" -p 512 -n 128 -t "$T" -r "$REPS" --streams 0 --json
# 2. Batched decode: 1, 4 and 8 sequences of 32 new tokens.
timed llama_batched "$LLAMA_BIN/llama-batched-bench" -m "$BIG" -c 2048 -b 512 -ub 512 \
  -npp 64 -ntg 32 -npl 1,4,8 -t "$T" -tb "$T" --output-format jsonl
timed chorus_batched "$CHORUS_BIN" bench -m "$BIG" -p 64 -n 32 --streams 4,8 -t "$T" -r "$REPS" --json
# 3. Decode on stories260K: per-token overhead, not bandwidth.
timed llama_small "$LLAMA_BIN/llama-bench" -m "$SMALL" -p 0 -n 128 -t "$T" -r "$REPS" -o json
timed chorus_small "$CHORUS_BIN" bench -m "$SMALL" -p 16 -n 128 -t "$T" -r "$REPS" --streams 0 --json

# --- results -----------------------------------------------------------------

lb() { jq "[.[] | select(.n_prompt == $1 and .n_gen == $2)][0].avg_ts" "$TMP/$3.out"; }
cb() { jq "[.tests[] | select(.test == \"$1\")][0].tokens_per_s" "$TMP/$2.out"; }
bb() { grep '^{' "$TMP/llama_batched.out" | jq -s "[.[] | select(.pl == $1)][0].speed_tg"; }

host=$(hostname -s 2>/dev/null || hostname)
date=$(date -u +%Y-%m-%d)
cpu=$(awk -F: '/model name/ {sub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
flags=$(grep -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')
llama_rev=$(git -C "$LLAMA_SRC" describe --tags --always 2>/dev/null || echo unknown)
chorus_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
mkdir -p "$ROOT/bench/results"
out=$ROOT/bench/results/peer-$host-$date.json

jq -n \
  --arg host "$host" --arg date "$date" --arg cpu "$cpu" --arg flags "$flags" \
  --argjson cores "$(nproc)" --argjson threads "$T" --argjson reps "$REPS" \
  --arg node_llama_cpp "$NODE_LLAMA_CPP_VERSION" --arg llama_rev "$llama_rev" --arg chorus_rev "$chorus_rev" \
  --arg model "$(basename "$BIG")" --argjson model_bytes "$(stat -c %s "$BIG")" \
  --argjson c_decode "$(cb tg128 chorus_bench)" --argjson l_decode "$(lb 0 128 llama_bench)" \
  --argjson c_prefill "$(cb pp512 chorus_bench)" --argjson l_prefill "$(lb 512 0 llama_bench)" \
  --argjson c_b1 "$(cb tg32 chorus_batched)" --argjson l_b1 "$(bb 1)" \
  --argjson c_b4 "$(cb 'tg32 x4 streams' chorus_batched)" --argjson l_b4 "$(bb 4)" \
  --argjson c_b8 "$(cb 'tg32 x8 streams' chorus_batched)" --argjson l_b8 "$(bb 8)" \
  --argjson c_small "$(cb tg128 chorus_small)" --argjson l_small "$(lb 0 128 llama_small)" \
  --argjson c_rss "$(peak_mib chorus_bench)" --argjson l_rss "$(peak_mib llama_bench)" \
  --slurpfile raw_llama_bench "$TMP/llama_bench.out" \
  --slurpfile raw_chorus_bench "$TMP/chorus_bench.out" \
  --slurpfile raw_chorus_batched "$TMP/chorus_batched.out" \
  --slurpfile raw_llama_small "$TMP/llama_small.out" \
  --slurpfile raw_chorus_small "$TMP/chorus_small.out" \
  --argjson raw_llama_batched "$(grep '^{' "$TMP/llama_batched.out" | jq -s .)" \
  '
  def row($name; $unit; $c; $l): {metric: $name, unit: $unit, chorus: $c, llama_cpp: $l,
                                 ratio: (if $l > 0 then $c / $l else null end)};
  {
    host: $host, date: $date, cpu: $cpu, cpu_flags: $flags, cores: $cores, threads: $threads,
    repetitions: $reps, peer: {node_llama_cpp: $node_llama_cpp, llama_cpp: $llama_rev},
    chorus_commit: $chorus_rev, model: $model, model_bytes: $model_bytes,
    summary: [
      row("decode (tg128)"; "tok/s"; $c_decode; $l_decode),
      row("prefill 512 (pp512)"; "tok/s"; $c_prefill; $l_prefill),
      row("batched decode, 1 sequence"; "tok/s"; $c_b1; $l_b1),
      row("batched decode, 4 sequences"; "tok/s aggregate"; $c_b4; $l_b4),
      row("batched decode, 8 sequences"; "tok/s aggregate"; $c_b8; $l_b8),
      row("stories260K decode (tg128)"; "tok/s"; $c_small; $l_small),
      row("peak RSS, pp512 + tg128 run"; "MiB"; $c_rss; $l_rss)
    ],
    raw: {llama_bench: $raw_llama_bench[0], llama_batched_bench: $raw_llama_batched,
          llama_bench_stories260K: $raw_llama_small[0], chorus_bench: $raw_chorus_bench[0],
          chorus_bench_batched: $raw_chorus_batched[0], chorus_bench_stories260K: $raw_chorus_small[0]}
  }' >"$out"

echo
echo "$cpu, $(nproc) cores, $T threads; $(basename "$BIG") ($(( $(stat -c %s "$BIG") / 1048576 )) MiB); llama.cpp $llama_rev"
echo
echo "| metric | unit | chorus | llama.cpp | chorus / llama.cpp |"
echo "| --- | --- | ---: | ---: | ---: |"
jq -r '.summary[] | "| \(.metric) | \(.unit) | \(.chorus * 10 | round / 10) | \(.llama_cpp * 10 | round / 10) | \(if .ratio == null then "-" else (.ratio * 100 | round / 100) end) |"' "$out"
echo
echo "results: $out"
