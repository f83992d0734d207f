# chorus run --ds2d: greedy output identical to plain decoding, for one
# stream and for several styles, with the report line; the forecast files
# beside the model and an adapter found when none is named; bad DS2D
# options are clear errors.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
F="$SRC/models/stories260K.forecast-lora.gguf"

"$CHORUS" run -m "$M" -p "Once upon a time" -n 60 --temp 0 >"$TMP/plain.txt" 2>/dev/null
"$CHORUS" run -m "$M" -p "Once upon a time" -n 60 --temp 0 --ds2d --ds2d-forecast "$F" \
  --ds2d-row-cost 0 >"$TMP/ds2d.txt" 2>"$TMP/ds2d.err"
if cmp -s "$TMP/plain.txt" "$TMP/ds2d.txt"; then echo "ok: one stream identical"; else fail "one stream differs"; fi
if grep -q "ds2d: .* tokens accepted per step" "$TMP/ds2d.err"; then
  echo "ok: report: $(grep ds2d: "$TMP/ds2d.err")"
else
  fail "no ds2d report line: $(cat "$TMP/ds2d.err")"
fi
tau=$(sed -n 's/.*steps, \([0-9.]*\) tokens accepted.*/\1/p' "$TMP/ds2d.err")
if awk -v t="$tau" 'BEGIN { exit !(t > 1.5) }'; then echo "ok: tau $tau > 1.5"; else fail "tau $tau"; fi

# No --ds2d-forecast: the trained file beside the model is found, named in
# the report, and beats the training-free floor (the derived file).
tau_of() { sed -n 's/.*steps, \([0-9.]*\) tokens accepted.*/\1/p' "$1"; }
"$CHORUS" run -m "$M" -p "Once upon a time" -n 60 --temp 0 --ds2d --ds2d-row-cost 0 \
  >"$TMP/found.txt" 2>"$TMP/found.err"
"$CHORUS" run -m "$M" -p "Once upon a time" -n 60 --temp 0 --ds2d --ds2d-row-cost 0 \
  --ds2d-forecast "$SRC/models/stories260K.forecast-derived.gguf" >/dev/null 2>"$TMP/derived.err"
if grep -q "ds2d forecasts (found): $F\$" "$TMP/found.err"; then
  echo "ok: found $(grep 'ds2d forecasts' "$TMP/found.err")"
else
  fail "the forecast file beside the model is not named: $(cat "$TMP/found.err")"
fi
cmp -s "$TMP/plain.txt" "$TMP/found.txt" && echo "ok: found forecasts, output identical" || fail "found forecasts: output differs"
found_tau=$(tau_of "$TMP/found.err") derived_tau=$(tau_of "$TMP/derived.err")
if awk -v a="$found_tau" -v b="$derived_tau" 'BEGIN { exit !(a > b && b > 0) }'; then
  echo "ok: tau $found_tau with the found file > $derived_tau with the derived floor"
else
  fail "found tau '$found_tau' not above the derived floor '$derived_tau'"
fi
# ... and beside an adapter, for its streams, whatever name it is loaded under.
"$CHORUS" run -m "$M" -p "Once upon a time" -n 30 --temp 0 --lora pup="$SRC/models/adapters/dog.gguf" \
  --adapter pup --ds2d --ds2d-row-cost 0 >/dev/null 2>"$TMP/dog.err"
grep -q "ds2d forecasts (found): $SRC/models/adapters/dog.forecast.gguf\$" "$TMP/dog.err" \
  && echo "ok: adapter's forecasts found: $(grep 'ds2d forecasts' "$TMP/dog.err")" \
  || fail "the dog adapter's forecast file is not found: $(cat "$TMP/dog.err")"
# 'none': n-gram drafts only; a model with no files beside it: the same.
"$CHORUS" run -m "$M" -p "Once upon a time" -n 20 --temp 0 --ds2d --ds2d-forecast none >/dev/null 2>"$TMP/none.err"
grep -q "ds2d forecasts: none (n-grams only)" "$TMP/none.err" && echo "ok: --ds2d-forecast none" \
  || fail "--ds2d-forecast none: $(cat "$TMP/none.err")"
cp "$M" "$TMP/alone.gguf"
"$CHORUS" run -m "$TMP/alone.gguf" -p "Once upon a time" -n 20 --temp 0 --ds2d >/dev/null 2>"$TMP/alone.err"
grep -q "ds2d forecasts (found): none (n-grams only)" "$TMP/alone.err" && echo "ok: nothing beside the model: n-grams only" \
  || fail "a model alone: $(cat "$TMP/alone.err")"
# A broken file under a forecast name is an error naming it (auto: plain decoding).
echo "not a gguf" >"$TMP/alone.forecast.gguf"
expect_error "a broken forecast file beside the model" "alone.forecast.gguf" \
  "$CHORUS" run -m "$TMP/alone.gguf" -p "x" -n 4 --ds2d

"$CHORUS" synth --lora "$TMP/a.gguf" -m "$M" --rank 4 --seed 1 >/dev/null
"$CHORUS" synth --lora "$TMP/b.gguf" -m "$M" --rank 8 --seed 2 >/dev/null
styles=(--lora a="$TMP/a.gguf" --lora b="$TMP/b.gguf" --styles a,b)
"$CHORUS" run -m "$M" -p "Once upon a time" -n 40 --temp 0 "${styles[@]}" --json >"$TMP/plain.json" 2>/dev/null
"$CHORUS" run -m "$M" -p "Once upon a time" -n 40 --temp 0 "${styles[@]}" --json --ds2d \
  --ds2d-forecast "$F" --ds2d-row-cost 0 >"$TMP/ds2d.json" 2>/dev/null
python3 - "$TMP/plain.json" "$TMP/ds2d.json" <<'PY' && echo "ok: styles identical" || fail "styles differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert [s["tokens"] for s in a["streams"]] == [s["tokens"] for s in b["streams"]]
assert b["ds2d"]["trees"] > 0
PY

"$CHORUS" synth --shape tiny -o "$TMP/tiny.gguf" >/dev/null
expect_error "forecast for another model" "stories260K.forecast-lora.gguf" \
  "$CHORUS" run -m "$TMP/tiny.gguf" -p "x" -n 4 --ds2d --ds2d-forecast "$F"
expect_error "absurd budget" "--ds2d-budget: must be 1..256" \
  "$CHORUS" run -m "$M" -p "x" -n 4 --ds2d --ds2d-budget 100000
expect_error "forecast without --ds2d" "needs --ds2d" \
  "$CHORUS" run -m "$M" -p "x" -n 4 --ds2d-forecast "$F"
expect_error "unknown --ds2d mode" "must be on or auto" "$CHORUS" run -m "$M" -p "x" -n 4 --ds2d=maybe
expect_error "compare without --ds2d" "--ds2d-compare: needs --ds2d" "$CHORUS" run -m "$M" -p "x" -n 4 --ds2d-compare

# --ds2d-compare: plain decoding first, then DS2D; both speeds, and identity.
"$CHORUS" run -m "$M" -p "Once upon a time" -n 24 --temp 0 --streams 2 --ds2d --ds2d-forecast "$F" \
  --ds2d-row-cost 0 --ds2d-compare --json >"$TMP/compare.json" 2>/dev/null \
  && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["ds2d"]
assert d["identical_to_plain"] is True and d["plain_tokens_per_s"] > 0 and d["speedup"] > 0, d
assert d["trees"] > 0' "$TMP/compare.json" && echo "ok: --ds2d-compare" || fail "--ds2d-compare: $(cat "$TMP/compare.json")"

# --ds2d=auto: a forecast file for another model (or an absurd budget) means
# plain decoding with a warning, not an error; the text is the plain one.
"$CHORUS" run -m "$TMP/tiny.gguf" -p "x" -n 6 --temp 0 >"$TMP/tiny_plain.txt" 2>/dev/null
if "$CHORUS" run -m "$TMP/tiny.gguf" -p "x" -n 6 --temp 0 --ds2d=auto --ds2d-forecast "$F" \
    >"$TMP/tiny_auto.txt" 2>"$TMP/tiny_auto.err"; then
  grep -q "ds2d=auto: plain decoding" "$TMP/tiny_auto.err" && cmp -s "$TMP/tiny_plain.txt" "$TMP/tiny_auto.txt" \
    && echo "ok: auto falls back to plain decoding" || fail "auto fallback: $(cat "$TMP/tiny_auto.err")"
else
  fail "--ds2d=auto with a mismatched forecast failed: $(cat "$TMP/tiny_auto.err")"
fi
"$CHORUS" run -m "$M" -p "x" -n 4 --temp 0 --ds2d=auto --ds2d-budget 100000 --json 2>/dev/null >"$TMP/auto.json" \
  && python3 -c 'import json,sys; assert "1..256" in json.load(open(sys.argv[1]))["ds2d"]["fallback"]' "$TMP/auto.json" \
  && echo "ok: auto reports why in --json" || fail "auto with an absurd budget: $(cat "$TMP/auto.json")"
finish
