# `chorus forecast`: derive writes a forecast file the eval accepts; eval
# checks DS2D output against plain decoding (exit 1 on any difference);
# forecasts for another model and bad DS2D options are clear errors.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
F="$SRC/models/stories260K.forecast-derived.gguf"

if "$CHORUS" forecast derive -m "$M" -o "$TMP/f.gguf" --method weighted-mean --count 3 \
    --sequences 2 --length 48 -t 1 > "$TMP/derive.txt" 2>&1; then
  grep -q "3 forecasts of dim 64, method derived-weighted-mean" "$TMP/derive.txt" \
    && echo "ok: derive" || fail "derive output: $(cat "$TMP/derive.txt")"
else
  fail "derive failed: $(cat "$TMP/derive.txt")"
fi

head -2 "$SRC/tests/data/ds2d_prompts.txt" > "$TMP/prompts.txt"
if "$CHORUS" forecast eval -m "$M" --forecast "$F" --forecast "$TMP/f.gguf" --prompts "$TMP/prompts.txt" \
    -n 24 -r 1 -t 1 --streams 2 --row-cost 0 --json-file "$TMP/eval.json" > "$TMP/eval.txt" 2>&1; then
  python3 - "$TMP/eval.json" <<'PY' && echo "ok: eval" || fail "eval json: $(cat "$TMP/eval.txt")"
import json, sys
j = json.load(open(sys.argv[1]))
names = [c["name"] for c in j["configs"]]
assert names[0] == "plain" and names[1] == "ngram" and len(names) == 6, names
assert all(c["identical"] for c in j["configs"])
ds2d = [c for c in j["configs"] if c["name"] != "plain"]
assert all(c["tau"] >= 1.0 and "acceptance_per_depth" in c for c in ds2d)
assert max(c["tau"] for c in ds2d) > 1.0
PY
else
  fail "eval failed: $(cat "$TMP/eval.txt")"
fi
"$CHORUS" forecast eval -m "$M" --cost-only --budget 8 -t 1 > "$TMP/cost.txt" 2>&1 \
  && grep -q "projected speedup" "$TMP/cost.txt" && echo "ok: cost-only" || fail "cost-only: $(cat "$TMP/cost.txt")"

# With a task adapter bound (--lora): its own forecast file is accepted and
# DS2D still equals plain decoding with that adapter.
D="$SRC/models/adapters"
if "$CHORUS" forecast eval -m "$M" --lora "dog=$D/dog.gguf" --forecast "$D/dog.forecast.gguf" \
    --prompts "$TMP/prompts.txt" -n 24 -r 1 -t 1 --row-cost 0 --json-file "$TMP/lora.json" > "$TMP/lora.txt" 2>&1; then
  python3 - "$TMP/lora.json" <<'PY' && echo "ok: eval with an adapter" || fail "eval --lora json: $(cat "$TMP/lora.txt")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["lora"].startswith("dog="), j["lora"]
assert all(c["identical"] for c in j["configs"])
assert max(c["tau"] for c in j["configs"]) > 1.0
PY
else
  fail "eval --lora failed: $(cat "$TMP/lora.txt")"
fi
expect_error "an adapter's forecasts without it" "uses the base model" "$CHORUS" forecast eval -m "$M" --forecast "$D/dog.forecast.gguf" -n 4 -r 1
expect_error "--lora without a path" "expected NAME=PATH" "$CHORUS" forecast eval -m "$M" --lora dog -n 4

"$CHORUS" synth --shape tiny -o "$TMP/tiny.gguf" 2>/dev/null
expect_error "forecasts for another model" "does not match" "$CHORUS" forecast eval -m "$TMP/tiny.gguf" --forecast "$F" -n 4
expect_error "a model as forecasts" "not a forecast embedding file" "$CHORUS" forecast eval -m "$M" --forecast "$M" -n 4
head -c 300 "$F" > "$TMP/cut.gguf"
expect_error "truncated forecasts" "cut.gguf" "$CHORUS" forecast eval -m "$M" --forecast "$TMP/cut.gguf" -n 4
# m = 4 forecasts in a budget of 3 rows: chains use the first two; exact.
"$CHORUS" forecast eval -m "$M" --forecast "$F" --budget 3 -n 16 -r 1 -t 1 --row-cost 0 --json >"$TMP/small.json" 2>/dev/null \
  && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert all(c["identical"] for c in j["configs"]), j
assert all(c.get("rows_per_step", 0) <= 3 for c in j["configs"]), j' "$TMP/small.json" \
  && echo "ok: a budget below m + 1" || fail "budget 3 with m = 4: $(cat "$TMP/small.json")"
# --record-trace on stories260K, --replay of it on another model (random
# weights): the replay decodes as many tokens as plain decoding, with the
# trace's tau where its trees are deep enough.
L="$SRC/models/stories260K.forecast-lora.gguf"
"$CHORUS" forecast eval -m "$M" --forecast "$L" --prompts "$TMP/prompts.txt" -n 24 -r 1 -t 1 --row-cost 0 \
  --record-trace "$TMP/trace.txt" >/dev/null 2>&1
if head -1 "$TMP/trace.txt" | grep -q "^chorus-ds2d-trace 1$" && grep -q "^forecasts 6$" "$TMP/trace.txt"; then
  echo "ok: trace recorded: $(grep -c '^accepted' "$TMP/trace.txt") line(s) of lengths"
else
  fail "trace: $(cat "$TMP/trace.txt")"
fi
"$CHORUS" synth --shape tiny -o "$TMP/rand.gguf" >/dev/null 2>&1
"$CHORUS" forecast eval -m "$TMP/rand.gguf" --replay "$TMP/trace.txt" --prompts "$TMP/prompts.txt" -n 24 -r 1 -t 1 \
  --row-cost 0 --json-file "$TMP/replay.json" >"$TMP/replay.txt" 2>&1
python3 - "$TMP/replay.json" <<'PY' && echo "ok: replay" || fail "replay: $(cat "$TMP/replay.txt")"
import json, sys
j = json.load(open(sys.argv[1]))
plain, rep = j["configs"]
assert rep["replayed"] and not plain["replayed"], j
assert rep["tokens"] == plain["tokens"] == 2 * 24, j
assert rep["tau"] > 1.2 and j["trees_meeting_the_trace"] > j["trees_replayed"] / 2, j
assert j["kernels"], j
PY
expect_error "replay with forecasts" "--replay: takes no --forecast" \
  "$CHORUS" forecast eval -m "$M" --replay "$TMP/trace.txt" --forecast "$F" -n 4
expect_error "replay of a missing trace" "no-trace.txt: cannot read the trace file" \
  "$CHORUS" forecast eval -m "$M" --replay "$TMP/no-trace.txt" -n 4
expect_error "budget above the step" "ds2d budget" "$CHORUS" forecast eval -m "$M" --forecast "$F" --budget 100000 -n 4
expect_error "unknown derive method" "forecast method" "$CHORUS" forecast derive -m "$M" -o "$TMP/x.gguf" --method magic
expect_error "derive to a missing directory" "$TMP/no/x.gguf" "$CHORUS" forecast derive -m "$M" -o "$TMP/no/x.gguf" --method mean --sequences 1 --length 32
expect_usage_error "forecast without a subcommand" "A subcommand is required" "$CHORUS" forecast
finish
