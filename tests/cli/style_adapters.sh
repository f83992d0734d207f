# The bundled style adapters (models/adapters, scripts/train_adapters.sh):
# each one's greedy ids equal PyTorch's (tests/data/style_adapters_greedy_ids.txt);
# the three styles in one pass with DS2D and the per-adapter forecast files give
# each stream's single-stream plain greedy output; the styles differ from each
# other and from the base model; each forecast file serves its adapter.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
A="$SRC/models/adapters"
STYLES=(dog sad bird)
P="Once upon a time"

loras=() forecasts=(--ds2d-forecast "$SRC/models/stories260K.forecast-lora.gguf")
for s in "${STYLES[@]}"; do
  for f in "$A/$s.gguf" "$A/$s.forecast.gguf" "$A/$s.forecast-lora.gguf"; do
    [[ -f "$f" ]] || fail "missing bundled file $f"
  done
  loras+=(--lora "$s=$A/$s.gguf")
  forecasts+=(--ds2d-forecast "$A/$s.forecast.gguf")
done
((failures)) && finish

# tokens FILE: the generated ids of every stream of a --json result, one line each.
tokens() {
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
for s in j.get("streams", [j]):
    print(" ".join(map(str, s["tokens"])))' "$1"
}

# Single stream, plain greedy: the base model, then each adapter against PyTorch.
timeout 60 "$CHORUS" run -m "$M" -p "$P" -n 100 --temp 0 --json >"$TMP/base.json" 2>/dev/null \
  || fail "base run"
tokens "$TMP/base.json" >"$TMP/base.ids"
for s in "${STYLES[@]}"; do
  timeout 60 "$CHORUS" run -m "$M" -p "$P" -n 100 --temp 0 "${loras[@]}" --adapter "$s" --json \
    >"$TMP/$s.json" 2>/dev/null || fail "$s: run"
  tokens "$TMP/$s.json" >"$TMP/$s.ids"
  want=$(sed -n "s/^$s: //p" "$SRC/tests/data/style_adapters_greedy_ids.txt")
  if [[ -n "$want" && "$(cat "$TMP/$s.ids")" == "$want" ]]; then
    echo "ok: $s: 100 greedy ids equal PyTorch's"
  else
    fail "$s: greedy ids differ from tests/data/style_adapters_greedy_ids.txt: $(cat "$TMP/$s.ids")"
  fi
done

# The three styles in one pass, DS2D with the per-adapter forecasts.
timeout 60 "$CHORUS" run -m "$M" -p "$P" -n 100 --temp 0 "${loras[@]}" --styles dog,sad,bird \
  --ds2d "${forecasts[@]}" --ds2d-row-cost 0 --json >"$TMP/styles.json" 2>"$TMP/styles.err" \
  || fail "styles with DS2D: $(cat "$TMP/styles.err")"
tokens "$TMP/styles.json" >"$TMP/styles.ids"
if cmp -s "$TMP/styles.ids" <(cat "$TMP/dog.ids" "$TMP/sad.ids" "$TMP/bird.ids"); then
  echo "ok: three styles in one pass with DS2D = each adapter's single-stream greedy output"
else
  fail "styles with DS2D differ from single-stream greedy runs"
fi
python3 - "$TMP/styles.json" <<'PY' && echo "ok: DS2D drafted and accepted" || fail "no DS2D trees"
import json, sys
d = json.load(open(sys.argv[1]))["ds2d"]
assert d["trees"] > 0 and d["tau"] > 1.2, d
PY

# The styles differ from each other and from the base model, early on.
for a in base dog sad bird; do
  for b in dog sad bird; do
    [[ "$a" < "$b" || "$a" == base ]] || continue
    [[ "$a" == "$b" ]] && continue
    same=$(python3 -c '
import sys
a, b = (open(p).read().split() for p in sys.argv[1:])
n = 0
while n < min(len(a), len(b)) and a[n] == b[n]:
    n += 1
print(n)' "$TMP/$a.ids" "$TMP/$b.ids")
    if ((same < 20)); then echo "ok: $a and $b part after $same tokens"; else fail "$a and $b agree on $same tokens"; fi
  done
done
# Each style names its subject in its greedy story.
for pair in dog:dog sad:sad bird:bird; do
  s=${pair%%:*} word=${pair#*:}
  text=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["text"])' "$TMP/$s.json")
  if [[ "$text" == *"$word"* ]]; then echo "ok: $s story says '$word'"; else fail "$s story lacks '$word': $text"; fi
done

# Each forecast file is tied to its adapter (chorus.forecast.adapter = NAME):
# given alone, it drafts for a stream bound to --lora NAME=... (a file naming
# another adapter would leave the stream without forecast rows).
for s in "${STYLES[@]}"; do
  timeout 60 "$CHORUS" run -m "$M" -p "$P" -n 60 --temp 0 "${loras[@]}" --adapter "$s" --ds2d \
    --ds2d-forecast "$A/$s.forecast.gguf" --ds2d-row-cost 0 --ds2d-no-ngram --json \
    >"$TMP/$s.fc.json" 2>/dev/null || fail "$s: DS2D with its forecast"
  python3 - "$TMP/$s.fc.json" <<'PY' && echo "ok: $s forecast drafts for $s" || fail "$s forecast unused"
import json, sys
d = json.load(open(sys.argv[1]))["ds2d"]
assert d["rows_per_step"] > 8 and d["tau"] > 1.3, d
PY
done
finish
