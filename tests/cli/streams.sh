# Multi-stream runs from the command line: labelled output, JSON per stream,
# each stream equal to its single-stream run, adapters by name, interactive
# mode, and bad values rejected with one error line before any work.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
P="Once upon a time"

json_field() {  # json_field FILE PYTHON-EXPRESSION-OF-j
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"
}
ids_of() {  # the "tokens" array of a single-stream `chorus run --json`
  tr -d ' \n' | grep -o '"tokens":\[[0-9,]*\]' | sed 's/"tokens":\[//; s/\]//; s/,/ /g'
}

# Labelled blocks, one per stream, and timings per stream.
out=$("$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 --streams 3 2>"$TMP/err")
for i in 0 1 2; do
  [[ "$out" == *"=== stream $i"* ]] && echo "ok: stream $i labelled" || fail "no label for stream $i: $out"
  grep -q "stream $i: 12 tokens" "$TMP/err" && echo "ok: stream $i timings" || fail "no timings for stream $i: $(cat "$TMP/err")"
done
[[ "$out" == "$P"* ]] && echo "ok: the prompt is shown once first" || fail "output: $out"

# --json: one object per stream; greedy stream 0 is the single-stream run,
# stream i starts with the i-th most likely token (all different).
"$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 --streams 3 --json > "$TMP/s.json" || fail "--json run failed"
if [[ "$(json_field "$TMP/s.json" "len(j['streams'])")" == 3 ]]; then
  echo "ok: --json parses, 3 streams"
else
  fail "--json: $(cat "$TMP/s.json")"
fi
single=$("$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 --json | ids_of)
s0=$(json_field "$TMP/s.json" "' '.join(map(str, j['streams'][0]['tokens']))")
[[ -n "$s0" && "$s0" == "$single" ]] && echo "ok: greedy stream 0 = single run" || fail "stream 0 '$s0' vs single '$single'"
firsts=$(json_field "$TMP/s.json" "len(set(s['tokens'][0] for s in j['streams']))")
[[ "$firsts" == 3 ]] && echo "ok: distinct first tokens" || fail "first tokens not distinct: $firsts"
reasons=$(json_field "$TMP/s.json" "' '.join(s['stop_reason'] for s in j['streams'])")
[[ "$reasons" == "length length length" ]] && echo "ok: stop reasons" || fail "stop reasons: $reasons"

# Sampled streams use seed + i: stream 1 of seed 11 is the single run of seed 12.
"$CHORUS" run -m "$M" -p "$P" -n 20 --temp 0.9 -s 11 --streams 2 --json > "$TMP/seeded.json"
s1=$(json_field "$TMP/seeded.json" "' '.join(map(str, j['streams'][1]['tokens']))")
one=$("$CHORUS" run -m "$M" -p "$P" -n 20 --temp 0.9 -s 12 --json | ids_of)
[[ -n "$s1" && "$s1" == "$one" ]] && echo "ok: seeded stream 1 = single run with seed + 1" || fail "'$s1' vs '$one'"

# Per-stream suffixes: a stream equals the single run of prompt + suffix.
"$CHORUS" run -m "$M" -p "$P" -n 10 --temp 0 --suffix " there was a dog" --suffix " a girl" --json > "$TMP/sfx.json"
s1=$(json_field "$TMP/sfx.json" "' '.join(map(str, j['streams'][1]['tokens']))")
one=$("$CHORUS" run -m "$M" -p "$P" -n 10 --temp 0 --suffix " a girl" --json | ids_of)
[[ -n "$s1" && "$s1" == "$one" ]] && echo "ok: suffix stream = single run with the suffix" || fail "'$s1' vs '$one'"

# Adapters: --lora, --styles, --adapter, and greedy identity per adapter.
"$CHORUS" synth --lora "$TMP/a.gguf" -m "$M" --rank 4 --seed 1 2>/dev/null || fail "synth --lora a"
"$CHORUS" synth --lora "$TMP/b.gguf" -m "$M" --rank 4 --seed 2 2>/dev/null || fail "synth --lora b"
L=(--lora "a=$TMP/a.gguf" --lora "b=$TMP/b.gguf:2")
"$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 "${L[@]}" --styles a,b --json > "$TMP/styles.json" || fail "--styles run"
adapters=$(json_field "$TMP/styles.json" "' '.join(s['adapter'] for s in j['streams'])")
[[ "$adapters" == "a b" ]] && echo "ok: --styles a,b" || fail "adapters: $adapters"
prefills=$(json_field "$TMP/styles.json" "j['timings']['prompt_prefills']")
[[ "$prefills" == 2 ]] && echo "ok: one prompt prefill per adapter" || fail "prefills: $prefills"
for i in 0 1; do
  name=$([[ $i == 0 ]] && echo a || echo b)
  si=$(json_field "$TMP/styles.json" "' '.join(map(str, j['streams'][$i]['tokens']))")
  one=$("$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 "${L[@]}" --adapter $name --json | ids_of)
  [[ -n "$si" && "$si" == "$one" ]] && echo "ok: style $name = single run with --adapter $name" || fail "style $name: '$si' vs '$one'"
done
base=$("$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 --json | ids_of)
one=$("$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 "${L[@]}" --adapter b --json | ids_of)
[[ "$one" != "$base" ]] && echo "ok: adapter b changes the output" || fail "adapter b = base model"

# Interactive: prompts line by line, /adapter switches without a reload.
status=0
printf '%s\n/adapter b\n%s\n/adapter none\n%s\n/adapter zzz\n/quit\n%s\n' "$P" "$P" "$P" "$P" |
  "$CHORUS" run -m "$M" -n 8 --temp 0 "${L[@]}" -i > "$TMP/i.out" 2> "$TMP/i.err" || status=$?
runs=$(grep -c "tok/s | generated" "$TMP/i.err" || true)  # none: fails below
[[ $status -eq 0 && $runs -eq 3 ]] && echo "ok: interactive ran 3 prompts" || fail "interactive: status $status, $runs runs: $(cat "$TMP/i.err")"
grep -q "adapter b$" "$TMP/i.err" && echo "ok: /adapter b used" || fail "/adapter b: $(cat "$TMP/i.err")"
grep -q "chorus: error: /adapter: no adapter named 'zzz'" "$TMP/i.err" && echo "ok: unknown /adapter reported" || fail "/adapter zzz: $(cat "$TMP/i.err")"
[[ $(sed -n 1p "$TMP/i.out") == $(sed -n 3p "$TMP/i.out") && $(sed -n 1p "$TMP/i.out") != $(sed -n 2p "$TMP/i.out") ]] &&
  echo "ok: /adapter none is the base model again" || fail "interactive outputs: $(cat "$TMP/i.out")"

# Columns view and the one-pass vs sequential benchmark (tiny sizes: a smoke test, not a measurement).
out=$(COLUMNS=90 "$CHORUS" run -m "$M" -p "$P" -n 12 --temp 0 --streams 3 --side-by-side 2>/dev/null)
[[ "$out" == *"[0]"*"| [1]"*"| [2]"* ]] && echo "ok: --side-by-side columns" || fail "--side-by-side: $out"
"$CHORUS" bench -m "$M" --streams-vs-sequential -p 8 -n 4 --streams 1,3 -r 1 --json > "$TMP/bench.json" || fail "bench --streams-vs-sequential"
ks=$(json_field "$TMP/bench.json" "' '.join(str(r['streams']) for r in j['results'] if r['speedup'] > 0)")
[[ "$ks" == "1 3" ]] && echo "ok: bench --streams-vs-sequential" || fail "bench: $(cat "$TMP/bench.json")"

# Bad values: one error line, exit 1, before any work.
expect_error "zero streams" "--streams" "$CHORUS" run -m "$M" -p "$P" --streams 0
expect_error "too many streams" "--streams" "$CHORUS" run -m "$M" -p "$P" --streams 65
expect_error "style without adapters" "no adapter named 'formal'" "$CHORUS" run -m "$M" -p "$P" --styles formal,polite
expect_error "unknown style" "no adapter named 'c' is loaded (loaded: a, b)" "$CHORUS" run -m "$M" -p "$P" "${L[@]}" --styles a,c
expect_error "unknown --adapter" "--adapter" "$CHORUS" run -m "$M" -p "$P" "${L[@]}" --adapter zzz
expect_error "styles for other stream count" "--styles" "$CHORUS" run -m "$M" -p "$P" "${L[@]}" --styles a,b --streams 3
expect_error "suffixes for other stream count" "--suffix" "$CHORUS" run -m "$M" -p "$P" --streams 3 --suffix x --suffix y
expect_error "streams overflow the context" "-n" "$CHORUS" run -m "$M" -p "$P" --streams 8 -n 100 -c 256
expect_error "bad --lora" "--lora" "$CHORUS" run -m "$M" -p "$P" --lora "$TMP/a.gguf"
expect_error "missing adapter file" "nope.gguf" "$CHORUS" run -m "$M" -p "$P" --lora "x=$TMP/nope.gguf"
expect_error "reference with streams" "--reference" "$CHORUS" run -m "$M" -p "$P" --reference --streams 2
status=0
out=$("$CHORUS" run -m "$M" -p "$P" --streams 0 2>&1 >/dev/null) || status=$?
[[ $status -eq 1 && $(printf '%s\n' "$out" | wc -l) -eq 1 && "$out" == "chorus: error: "* ]] && echo "ok: one error line" \
  || fail "error output: status $status: $out"
finish
