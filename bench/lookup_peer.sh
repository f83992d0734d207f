#!/usr/bin/env bash
# DS2D against llama.cpp's prompt-lookup (n-gram) speculation on the same
# prompts: tokens per target pass (tau), acceptance, decode speed and the
# speed-up of each method over its OWN plain greedy decoding, in one run.
#
#   bench/lookup_peer.sh
#
# Both sides decode every line of the prompt file greedily for N_PREDICT new
# tokens with THREADS threads:
#   chorus     `chorus forecast eval` (plain, DS2D n-gram only, DS2D forecast
#              rows, both), once with the measured row cost (what `chorus run
#              --ds2d` does), once with an n-gram chain of 1 + DRAFT_MAX rows
#              (llama-lookup's draft shape) and once filling the 32-row budget
#              (row cost 0: the acceptance ceiling, whatever it costs);
#   llama.cpp  llama-lookup with --spec-draft-n-max 0 (plain decoding through
#              the same program: the baseline) and DRAFT_MAX (its n-gram cache
#              drafts), and llama-lookahead (Jacobi n-grams, W=15 N=5 G=15 as
#              compiled in).
# Timings exclude prompt processing and process start-up on both sides; the
# fastest of REPS repetitions (summed over the prompts) counts. Every
# speculative output is checked against plain greedy output, and llama.cpp's
# plain text against chorus' plain text (`chorus run --temp 0`).
#
# Environment:
#   CHORUS_PEER_DIR  cache shared with bench/peer.sh: node-llama-cpp and the
#                    llama.cpp clone and build (default ~/.cache/chorus-peer)
#   CHORUS_BIN       the chorus binary (default build/chorus; built with
#                    scripts/build.sh when missing)
#   THREADS          threads for both (default 1)
#   REPS             repetitions (default 5)
#   N_PREDICT        new tokens per prompt (default 64)
#   DRAFT_MAX        llama-lookup's draft length (default 3, its own default)
#   PROMPTS          prompt file, one per line (default tests/data/ds2d_prompts.txt)
#   MODEL, FORECAST  default models/stories260K.gguf and
#                    models/stories260K.forecast-lora.gguf
#   JOBS             parallel jobs for a llama.cpp build (default nproc)
#   OUT              results file (default bench/results/lookup-<host>-<date>.json)
#
# Not used by the tests.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEER_DIR=${CHORUS_PEER_DIR:-$HOME/.cache/chorus-peer}
CHORUS_BIN=${CHORUS_BIN:-$ROOT/build/chorus}
THREADS=${THREADS:-1}
REPS=${REPS:-5}
N_PREDICT=${N_PREDICT:-64}
DRAFT_MAX=${DRAFT_MAX:-3}
PROMPTS=${PROMPTS:-$ROOT/tests/data/ds2d_prompts.txt}
MODEL=${MODEL:-$ROOT/models/stories260K.gguf}
FORECAST=${FORECAST:-$ROOT/models/stories260K.forecast-lora.gguf}
JOBS=${JOBS:-$(nproc)}
LLAMA_TARGETS=(llama-lookup llama-lookahead)

log() { echo "[lookup-peer] $*" >&2; }
die() { log "error: $*"; exit 1; }

for f in "$PROMPTS" "$MODEL" "$FORECAST"; do
  [[ -f $f ]] || die "missing $f (set PROMPTS / MODEL / FORECAST)"
done
[[ $N_PREDICT -ge 4 ]] || die "N_PREDICT must be >= 4"
[[ $REPS -ge 1 ]] || die "REPS must be >= 1"

# --- tools -----------------------------------------------------------------

source "$ROOT/bench/llama_cpp.sh"  # LLAMA_SRC, LLAMA_BIN, apt_install, build_llama

command -v jq >/dev/null || apt_install jq

# --- llama.cpp: the clone and build bench/peer.sh keeps in $PEER_DIR ------------

for t in "${LLAMA_TARGETS[@]}"; do
  if [[ ! -x $LLAMA_BIN/$t ]]; then build_llama build-lookup.log "${LLAMA_TARGETS[@]}"; break; fi
done
[[ -f $LLAMA_SRC/examples/lookup/lookup.cpp ]] ||
  die "$LLAMA_SRC has no examples/lookup: not the llama.cpp this script was written for"
for t in "${LLAMA_TARGETS[@]}"; do
  [[ -x $LLAMA_BIN/$t ]] || die "$LLAMA_BIN/$t missing after the build"
done

# --- chorus ------------------------------------------------------------------

if [[ ! -x $CHORUS_BIN ]]; then
  log "building chorus (scripts/build.sh)"
  bash "$ROOT/scripts/build.sh"
  CHORUS_BIN=$ROOT/build/chorus
fi
"$CHORUS_BIN" forecast eval --help >/dev/null 2>&1 ||
  die "$CHORUS_BIN has no 'forecast eval' (stale build? rebuild it or set CHORUS_BIN)"

# --- runs --------------------------------------------------------------------

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
T=$THREADS
N=$N_PREDICT
mapfile -t prompts < <(sed -e 's/\r$//' "$PROMPTS" | grep -v '^[[:space:]]*$')
[[ ${#prompts[@]} -gt 0 ]] || die "$PROMPTS holds no prompts"

# chorus: three `forecast eval` runs, each with its own plain baseline.
chorus_eval() {
  local name=$1; shift
  log "chorus $name: forecast eval $*"
  local rc=0
  "$CHORUS_BIN" forecast eval -m "$MODEL" --prompts "$PROMPTS" -n "$N" -t "$T" -r "$REPS" \
    --json-file "$TMP/chorus_$name.json" "$@" >"$TMP/chorus_$name.out" 2>"$TMP/chorus_$name.err" || rc=$?
  # rc 1: some output differed from plain decoding (reported in the table).
  if [[ $rc -gt 1 || ! -s $TMP/chorus_$name.json ]]; then
    log "chorus $name failed:"; tail -20 "$TMP/chorus_$name.err" >&2; exit 1
  fi
}
chorus_eval auto --forecast "$FORECAST"
chorus_eval chain --budget $((DRAFT_MAX + 1)) --row-cost 0
chorus_eval fill --forecast "$FORECAST" --row-cost 0

# Greedy on both sides: temperature 0 and top-k 1.
LLAMA_COMMON=(-m "$MODEL" -t "$T" -tb "$T" --temp 0 --top-k 1 --seed 1)

# run_llama NAME PROMPT_INDEX REP cmd...: stdout/stderr to $TMP/NAME.p.r.{out,err}.
# llama.cpp logs through a background thread, and about one run in a hundred
# exits before the last lines (the statistics) are written: run those again.
run_llama() {
  local name=$1 p=$2 r=$3 try; shift 3
  for try in 1 2 3; do
    "$@" >"$TMP/$name.$p.$r.out" 2>"$TMP/$name.$p.$r.err" ||
      { log "$name failed on prompt $p:"; tail -20 "$TMP/$name.$p.$r.err" >&2; exit 1; }
    grep -q 'decoded .* t/s' "$TMP/$name.$p.$r.err" && grep -q 'n_accept *=' "$TMP/$name.$p.$r.err" &&
      return 0
    log "$name on prompt $p: no statistics in the log (attempt $try), running it again"
  done
  die "$name on prompt $p printed no statistics in 3 attempts, see the log above"
}
# The generated text: the program's stdout without colours, <s> and outer blanks.
text_of() { sed -e 's/\x1b\[[0-9;]*m//g' -e 's/<s>//g' "$1" | tr -d '\r' | sed -e ':a;N;$!ba' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'; }
# "decoded N tokens in S seconds, speed: V t/s": N and the time as N / V (the
# seconds are printed in ms resolution, the speed in full).
decoded() { sed -n 's/.*decoded *\([0-9]*\) tokens in *[0-9.]* seconds, speed: *\([0-9.]*\) t\/s.*/\1 \2/p' "$1" | tail -1; }
stat_of() { sed -n "s/.*$2 *= *\([0-9]*\).*/\1/p" "$1" | tail -1; }

records=$TMP/llama.jsonl
: >"$records"
log "llama.cpp: ${#prompts[@]} prompts x $REPS repetitions x (plain, lookup, lookahead)"
for p in "${!prompts[@]}"; do
  prompt=${prompts[$p]}
  # The reference text of chorus (plain greedy), and llama-lookup's drafts
  # token by token from its debug log (untimed: the log costs time).
  "$CHORUS_BIN" run -m "$MODEL" -p "$prompt" -n "$N" --temp 0 -t "$T" \
    >"$TMP/chorus_text.$p.out" 2>"$TMP/chorus_text.$p.err" ||
    { log "chorus run failed on prompt $p:"; tail -20 "$TMP/chorus_text.$p.err" >&2; exit 1; }
  run_llama lookup_dbg "$p" 0 "$LLAMA_BIN/llama-lookup" "${LLAMA_COMMON[@]}" -p "$prompt" \
    -n $((N - 1)) --spec-draft-n-max "$DRAFT_MAX" -v --no-log-timestamps
  # Per round: drafted tokens k and accepted a -> depth d reached (with a
  # candidate) when k >= d and a >= d - 1, accepted when a >= d.
  depth=$(awk -v D="$DRAFT_MAX" '
    function flush() { if (inround) { for (d = 1; d <= k; ++d) { if (a >= d - 1) reached[d]++; if (a >= d) acc[d]++ } } }
    / drafted \[/ { flush(); inround = 1; a = 0; s = $0; k = gsub(/:[0-9]+(,| \])/, "", s) }
    /the sampled target token matches the/ { a++ }
    END { flush(); printf "["; for (d = 1; d <= D; ++d) printf "%s{\"reached\":%d,\"accepted\":%d}", (d > 1 ? "," : ""), reached[d] + 0, acc[d] + 0; printf "]" }
  ' "$TMP/lookup_dbg.$p.0.err")
  chorus_text=$(text_of "$TMP/chorus_text.$p.out")
  for ((r = 0; r < REPS; ++r)); do
    # plain: the same program with drafting off; exactly N tokens.
    run_llama plain "$p" "$r" "$LLAMA_BIN/llama-lookup" "${LLAMA_COMMON[@]}" -p "$prompt" \
      -n $((N - 1)) --spec-draft-n-max 0
    # lookup: stops once it has more than N - 1 tokens (up to DRAFT_MAX over N).
    run_llama lookup "$p" "$r" "$LLAMA_BIN/llama-lookup" "${LLAMA_COMMON[@]}" -p "$prompt" \
      -n $((N - 1)) --spec-draft-n-max "$DRAFT_MAX"
    # lookahead: its n_predict leaves out the first token (sampled from the prompt pass).
    run_llama lookahead "$p" "$r" "$LLAMA_BIN/llama-lookahead" "${LLAMA_COMMON[@]}" -p "$prompt" \
      -n $((N - 2))
    plain_text=$(text_of "$TMP/plain.$p.$r.out")
    for m in plain lookup lookahead; do
      e=$TMP/$m.$p.$r.err
      n_dec='' speed=''
      read -r n_dec speed < <(decoded "$e") || true
      [[ -n ${n_dec:-} && -n ${speed:-} ]] || die "no 'decoded ... t/s' line in $e"
      n_predict=$(stat_of "$e" n_predict)
      n_accept=$(stat_of "$e" n_accept)
      n_drafted=$(stat_of "$e" n_drafted)
      [[ -n $n_predict && -n $n_accept ]] || die "no n_predict / n_accept in $e"
      txt=$(text_of "$TMP/$m.$p.$r.out")
      # Speculative runs may go a few tokens past N: plain's text must be a prefix.
      same=false; [[ $txt == "$plain_text"* ]] && same=true
      jq -cn --arg method "$m" --argjson prompt "$p" --argjson rep "$r" \
        --argjson n_predict "${n_predict:-0}" --argjson n_accept "${n_accept:-0}" \
        --argjson n_drafted "${n_drafted:-0}" --argjson n_decoded "$n_dec" --argjson speed "$speed" \
        --argjson same "$same" --argjson same_as_chorus "$([[ $m == plain && $txt == "$chorus_text" ]] && echo true || echo false)" \
        --argjson depth "$(if [[ $m == lookup && $r == 0 ]]; then echo "$depth"; else echo null; fi)" \
        --arg text "$(if [[ $r == 0 ]]; then echo "$txt"; fi)" '
        # Target passes after the prompt pass, and the tokens they gave (the
        # first token comes from the prompt pass: left out, as chorus does).
        (if $method == "lookahead" then {tokens: $n_predict, passes: ($n_predict - $n_accept)}
         else {tokens: ($n_predict - 1), passes: ($n_predict - 1 - $n_accept)} end) as $tp
        | {method: $method, prompt: $prompt, rep: $rep, n_predict: $n_predict, n_accept: $n_accept,
           n_drafted: $n_drafted, generated: (if $method == "lookahead" then $n_predict + 1 else $n_predict end),
           seconds: ($n_decoded / $speed), loop_tokens: $tp.tokens, passes: $tp.passes,
           same_as_plain: $same}
          + (if $method == "plain" then {same_as_chorus: $same_as_chorus} else {} end)
          + (if $depth != null then {per_depth: $depth} else {} end)
          + (if $text != "" then {text: $text} else {} end)' >>"$records"
    done
  done
done

# --- results -----------------------------------------------------------------

host=$(hostname -s 2>/dev/null || hostname)
date=$(date -u +%Y-%m-%d)
cpu=$(awk -F: '/model name/ {sub(/^ +/, "", $2); print $2; exit}' /proc/cpuinfo)
llama_rev=$(git -C "$LLAMA_SRC" describe --tags --always 2>/dev/null || echo unknown)
chorus_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo true || echo false)
mkdir -p "$ROOT/bench/results"
out=${OUT:-$ROOT/bench/results/lookup-$host-$date.json}

jq -n \
  --arg host "$host" --arg date "$date" --arg cpu "$cpu" --argjson cores "$(nproc)" \
  --argjson threads "$T" --argjson reps "$REPS" --argjson n_predict "$N" --argjson draft_max "$DRAFT_MAX" \
  --arg node_llama_cpp "$NODE_LLAMA_CPP_VERSION" --arg llama_rev "$llama_rev" \
  --arg chorus_rev "$chorus_rev" --argjson chorus_dirty "$dirty" \
  --arg model "${MODEL#"$ROOT"/}" --arg forecast "${FORECAST#"$ROOT"/}" --arg prompts "${PROMPTS#"$ROOT"/}" \
  --slurpfile c_auto "$TMP/chorus_auto.json" --slurpfile c_chain "$TMP/chorus_chain.json" \
  --slurpfile c_fill "$TMP/chorus_fill.json" --slurpfile llama "$records" '
  def r2: . * 100 | round / 100;
  # llama.cpp: per method, the fastest repetition (summed over prompts).
  def llama($m):
    [$llama[] | select(.method == $m)] as $runs
    | [$runs[] | .rep] | unique | map(. as $r | [$runs[] | select(.rep == $r)]) as $byrep
    | ($byrep | map({seconds: (map(.seconds) | add), tokens: (map(.generated) | add)})
       | min_by(.seconds)) as $best
    | [$runs[] | select(.rep == 0)] as $r0
    | {tokens: $best.tokens, seconds: $best.seconds, tokens_per_s: ($best.tokens / $best.seconds),
       tau: (($r0 | map(.loop_tokens) | add) / ($r0 | map(.passes) | add)),
       n_accept: ($r0 | map(.n_accept) | add), n_drafted: ($r0 | map(.n_drafted) | add),
       identical: ($runs | all(.same_as_plain)),
       same_as_chorus: (if $m == "plain" then ($runs | all(.same_as_chorus)) else null end),
       per_depth: (if $m == "lookup" then
         [range(0; $draft_max) as $d | [$r0[] | .per_depth[$d]]
          | {reached: (map(.reached) | add), accepted: (map(.accepted) | add)}
          | . + {acceptance: (if .reached > 0 then .accepted / .reached else null end)}]
         else null end)};
  (llama("plain")) as $lp | (llama("lookup")) as $ll | (llama("lookahead")) as $la
  | def crow($run; $title; $cfg):
      ($run.configs | map(select(.name == "plain"))[0]) as $p
      | ($run.configs | map(select(.name == $cfg))[0]) as $c
      | {method: $title, tau: $c.tau,
         accepted_per_drafted: (if ($c.draft_nodes_per_tree // 0) > 0 then ($c.tau - 1) / $c.draft_nodes_per_tree else null end),
         depth1: ($c.acceptance_per_depth // [] | .[0]), rows_per_step: ($c.rows_per_step // 1),
         tokens_per_s: $c.tokens_per_s, speedup: ($c.tokens_per_s / $p.tokens_per_s), identical: $c.identical};
    ($c_auto[0].configs | map(select(.forecast != "" and .ngram == false))[0].name) as $fname
  | {
    host: $host, date: $date, cpu: $cpu, cores: $cores, threads: $threads, repetitions: $reps,
    n_predict: $n_predict, llama_lookup_draft_max: $draft_max, model: $model, forecast: $forecast,
    prompts: $prompts, peer: {node_llama_cpp: $node_llama_cpp, llama_cpp: $llama_rev},
    chorus_commit: $chorus_rev, chorus_worktree_dirty: $chorus_dirty,
    table: [
      {method: "llama.cpp plain (llama-lookup, draft 0)", tau: 1, accepted_per_drafted: null, depth1: null,
       rows_per_step: 1, tokens_per_s: $lp.tokens_per_s, speedup: 1, identical: $lp.identical},
      {method: "llama.cpp llama-lookup (n-gram cache, draft <= \($draft_max))", tau: $ll.tau,
       accepted_per_drafted: (if $ll.n_drafted > 0 then $ll.n_accept / $ll.n_drafted else null end),
       depth1: $ll.per_depth[0].acceptance, rows_per_step: (1 + $ll.n_drafted / ($llama | map(select(.method == "lookup" and .rep == 0) | .passes) | add)),
       tokens_per_s: $ll.tokens_per_s, speedup: ($ll.tokens_per_s / $lp.tokens_per_s), identical: $ll.identical},
      {method: "llama.cpp llama-lookahead (W 15, N 5, G 15)", tau: $la.tau, accepted_per_drafted: null,
       depth1: null, rows_per_step: null,
       tokens_per_s: $la.tokens_per_s, speedup: ($la.tokens_per_s / $lp.tokens_per_s), identical: $la.identical},
      (crow($c_auto[0]; "chorus plain"; "plain") | .tau = 1 | .speedup = 1),
      crow($c_auto[0]; "chorus DS2D n-gram only, measured row cost"; "ngram"),
      crow($c_auto[0]; "chorus DS2D forecast, measured row cost"; $fname),
      crow($c_auto[0]; "chorus DS2D forecast + n-gram, measured row cost"; "\($fname) +ngram"),
      crow($c_chain[0]; "chorus DS2D n-gram only, \($draft_max + 1)-row budget, row cost 0"; "ngram"),
      crow($c_fill[0]; "chorus DS2D n-gram only, 32-row budget, row cost 0"; "ngram"),
      crow($c_fill[0]; "chorus DS2D forecast, 32-row budget, row cost 0"; $fname),
      crow($c_fill[0]; "chorus DS2D forecast + n-gram, 32-row budget, row cost 0"; "\($fname) +ngram")
    ],
    llama_cpp: {plain: $lp, lookup: $ll, lookahead: $la},
    raw: {chorus_eval_measured_row_cost: $c_auto[0], chorus_eval_chain: $c_chain[0],
          chorus_eval_fill: $c_fill[0], llama_runs: $llama}
  }' >"$out"

echo
echo "$cpu, $(nproc) cores, $T thread(s); $(basename "$MODEL"), ${#prompts[@]} prompts x $N new tokens, greedy, best of $REPS; llama.cpp $llama_rev (node-llama-cpp $NODE_LLAMA_CPP_VERSION), chorus $chorus_rev$([[ $dirty == true ]] && echo ' (dirty tree)')"
echo
echo "| method | tokens per pass (tau) | acceptance: accepted / drafted (depth 1) | rows per pass | tok/s | speed-up vs its own plain | output = plain greedy |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | :---: |"
jq -r '
  def f2: if . == null then "-" else (. * 100 | round) as $i
    | "\($i / 100 | floor).\($i % 100 | tostring | if length < 2 then "0" + . else . end)" end;
  def pct: if . == null then "-" else ((. * 100 | round | tostring) + "%") end;
  .table[] | "| \(.method) | \(.tau | f2) | \(if .accepted_per_drafted == null and .depth1 == null then "-" else "\(.accepted_per_drafted | pct) (\(.depth1 | pct))" end) | \(.rows_per_step | if . == null then "60-120" else ((. * 10 | round) as $i | "\($i / 10 | floor).\($i % 10)") end) | \(.tokens_per_s | round) | \(.speedup | f2)x | \(if .identical then "yes" else "NO" end) |"' "$out"
echo
echo "llama.cpp plain text = chorus plain text on every prompt: $(jq -r '.llama_cpp.plain.same_as_chorus' "$out")"
echo "results: $out"
