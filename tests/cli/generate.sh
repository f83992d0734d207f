# End to end: greedy generation from the command line reproduces the
# reference ids of stories260K from both file formats, and with INT4 weights
# their own reference ids; seeded sampling repeats.
source "$(dirname "$0")/lib.sh"
REF=$(tr -s '[:space:]' ' ' < "$SRC/tests/data/stories260K_greedy_ids.txt" | cut -d' ' -f1-30)

ids_of() {  # the "tokens" array of `chorus run --json`, space separated
  tr -d ' \n' | grep -o '"tokens":\[[0-9,]*\]' | sed 's/"tokens":\[//; s/\]//; s/,/ /g'
}

for m in stories260K.gguf stories260K.bin; do
  for path in "" --reference; do
    got=$("$CHORUS" run -m "$SRC/models/$m" -p "" -n 30 --temp 0 --ignore-eos --json $path | ids_of)
    [[ "$got" == "$REF" ]] && echo "ok: greedy ids from $m $path" || fail "greedy ids from $m $path: got '$got'"
  done
done

# INT4 weights (quantized at load) tell the same story for 20 tokens, then
# their own: tests/data/stories260K_int4_greedy_ids.txt (over an f32 KV
# cache), with the kernels this CPU picks and with the generic ones every
# CPU has. Over the default f16 cache the first 20 are the same; later a
# near tie may go the other way (token 28 with the x86 tables).
INT4=$(grep -v '^#' "$SRC/tests/data/stories260K_int4_greedy_ids.txt" | tr -s '[:space:]' ' ' | sed 's/ $//')
[[ "$(cut -d' ' -f1-20 <<<"$INT4")" == "$(cut -d' ' -f1-20 <<<"$REF")" ]] || fail "int4 reference file: $INT4"
for isa in "" generic; do
  got=$(CHORUS_ISA=$isa "$CHORUS" run -m "$SRC/models/stories260K.gguf" -p "" -n 30 --temp 0 --ignore-eos --json --weights int4 --kv-type f32 | ids_of)
  [[ "$got" == "$INT4" ]] && echo "ok: int4 greedy ids ${isa:-(best kernels)}" || fail "int4 greedy ids ${isa:-(best kernels)}: got '$got'"
  got=$(CHORUS_ISA=$isa "$CHORUS" run -m "$SRC/models/stories260K.gguf" -p "" -n 30 --temp 0 --ignore-eos --json --weights int4 | ids_of)
  [[ "$(cut -d' ' -f1-20 <<<"$got")" == "$(cut -d' ' -f1-20 <<<"$REF")" ]] && echo "ok: int4 greedy ids, f16 KV ${isa:-(best kernels)}" \
    || fail "int4 greedy ids, f16 KV ${isa:-(best kernels)}: got '$got'"
done

a=$("$CHORUS" run -m "$SRC/models/stories260K.gguf" -p "Once upon a time" -n 40 --temp 0.9 --seed 11 --json | ids_of)
b=$("$CHORUS" run -m "$SRC/models/stories260K.gguf" -p "Once upon a time" -n 40 --temp 0.9 --seed 11 --json | ids_of)
c=$("$CHORUS" run -m "$SRC/models/stories260K.gguf" -p "Once upon a time" -n 40 --temp 0.9 --seed 12 --json | ids_of)
[[ -n "$a" && "$a" == "$b" ]] && echo "ok: same seed, same output" || fail "same seed gave '$a' and '$b'"
[[ "$a" != "$c" ]] && echo "ok: another seed, other output" || fail "seeds 11 and 12 gave the same output"

text=$("$CHORUS" run -m "$SRC/models/stories260K.gguf" -p "Once upon a time" -n 60 --temp 0 2>"$TMP/err")
[[ "$text" == "Once upon a time"* ]] && echo "ok: streamed text starts with the prompt" || fail "text: $text"
grep -q "tok/s" "$TMP/err" && grep -q "peak RSS" "$TMP/err" && echo "ok: timings printed" || fail "no timings: $(cat "$TMP/err")"
finish
