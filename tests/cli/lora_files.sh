# LoRA adapter files: synth writes both formats for the bundled model, info
# describes them and checks they fit; broken or mismatched adapters get one
# clear error line and exit 1.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"

# expect_out "description" "fragment"... -- cmd...: exit 0 and stdout has every fragment.
expect_out() {
  local what="$1"; shift
  local frags=()
  while [[ "$1" != "--" ]]; do frags+=("$1"); shift; done
  shift
  local out status=0
  out=$(timeout 60 "$@" 2>&1) || status=$?
  if [[ $status -ne 0 ]]; then fail "$what: exit status $status: $out"; return; fi
  for f in "${frags[@]}"; do
    if [[ "$out" != *"$f"* ]]; then fail "$what: output lacks '$f': $out"; return; fi
  done
  echo "ok: $what"
}

expect_out "synth a PEFT adapter" "wrote" -- \
  "$CHORUS" synth --lora "$TMP/peft" -m "$M" --rank 4 --alpha 8 --seed 3
[[ -f "$TMP/peft/adapter_config.json" && -f "$TMP/peft/adapter_model.safetensors" ]] \
  && echo "ok: PEFT directory has both files" || fail "PEFT directory incomplete: $(ls "$TMP/peft")"
expect_out "synth a GGUF adapter" "wrote" -- \
  "$CHORUS" synth --lora "$TMP/a.gguf" -m "$M" --rank 4 --alpha 8 --seed 3
expect_out "synth GGUF by --format, f32, rsLoRA, some targets" "wrote" -- \
  "$CHORUS" synth --lora "$TMP/b.lora" --format gguf -m "$M" --rank 2 --rslora --f32 --targets q,v,down

expect_out "info on the PEFT directory" "LoRA adapter, peft" "rank          4" "alpha         8" \
  "targets       q k v o gate up down" "layers        5 (35 pairs)" "fits          yes" -- \
  "$CHORUS" info "$TMP/peft" -m "$M"
expect_out "info on the safetensors file" "LoRA adapter, peft" "rank          4" -- \
  "$CHORUS" info "$TMP/peft/adapter_model.safetensors"
expect_out "info on the GGUF adapter" "LoRA adapter, gguf" "rank          4" "fits          yes" -- \
  "$CHORUS" info "$TMP/a.gguf" -m "$M"
expect_out "info on the f32 rsLoRA subset" "targets       q v down" "layers        5 (15 pairs)" -- \
  "$CHORUS" info "$TMP/b.lora"
# Both forms hold the same tensor bytes (f16, same shapes).
peft_bytes=$("$CHORUS" info "$TMP/peft" | sed -n 's/^tensor bytes  \([0-9]*\).*/\1/p')
gguf_bytes=$("$CHORUS" info "$TMP/a.gguf" | sed -n 's/^tensor bytes  \([0-9]*\).*/\1/p')
[[ -n "$peft_bytes" && "$peft_bytes" == "$gguf_bytes" ]] && echo "ok: same tensor bytes ($peft_bytes)" \
  || fail "tensor bytes differ: peft '$peft_bytes', gguf '$gguf_bytes'"
expect_out "model info unchanged" "dim           64" "layers        5" -- "$CHORUS" info "$M"

# Corrupt safetensors: a header length past the end, and JSON that is not.
cp -r "$TMP/peft" "$TMP/badlen"
printf '\xff\xff\xff\x00' | dd of="$TMP/badlen/adapter_model.safetensors" bs=1 seek=0 conv=notrunc status=none
expect_error "safetensors header length past the end" "adapter_model.safetensors: header length" \
  "$CHORUS" info "$TMP/badlen"
cp -r "$TMP/peft" "$TMP/badjson"
printf '[' | dd of="$TMP/badjson/adapter_model.safetensors" bs=1 seek=8 conv=notrunc status=none
expect_error "safetensors header not JSON" "header is not valid JSON" "$CHORUS" info "$TMP/badjson" -m "$M"
cp -r "$TMP/peft" "$TMP/short"
head -c 5000 "$TMP/peft/adapter_model.safetensors" > "$TMP/short/adapter_model.safetensors"
expect_error "safetensors cut in its header" "past the end" "$CHORUS" info "$TMP/short"
size=$(stat -c %s "$TMP/peft/adapter_model.safetensors")
head -c $((size - 10)) "$TMP/peft/adapter_model.safetensors" > "$TMP/short/adapter_model.safetensors"
expect_error "safetensors cut in its data" "file truncated?" "$CHORUS" info "$TMP/short"
head -c 3000 "$TMP/a.gguf" > "$TMP/short.gguf"
expect_error "truncated GGUF adapter" "short.gguf" "$CHORUS" info "$TMP/short.gguf"
mkdir -p "$TMP/noconfig"
expect_error "directory without adapter_config.json" "no adapter_config.json" "$CHORUS" info "$TMP/noconfig"
cp -r "$TMP/peft" "$TMP/pattern"
sed -i 's/"rank_pattern": {}/"rank_pattern": {"q_proj": 8}/' "$TMP/pattern/adapter_config.json"
expect_error "rank_pattern refused" "rank_pattern" "$CHORUS" info "$TMP/pattern"

# An adapter for another model: same names, other widths.
"$CHORUS" synth --shape tiny -o "$TMP/tiny.gguf" 2>/dev/null || fail "synth tiny model"
"$CHORUS" synth --lora "$TMP/tiny_peft" -m "$TMP/tiny.gguf" --rank 4 2>/dev/null || fail "synth tiny adapter"
"$CHORUS" synth --lora "$TMP/tiny.lora.gguf" -m "$TMP/tiny.gguf" --rank 4 2>/dev/null || fail "synth tiny gguf adapter"
expect_error "PEFT adapter for another model" "adapter for another model" \
  "$CHORUS" info "$TMP/tiny_peft" -m "$M"
expect_error "GGUF adapter for another model" "tiny.lora.gguf: tensor 'blk.0.attn_q.weight.lora_a'" \
  "$CHORUS" info "$TMP/tiny.lora.gguf" -m "$M"
expect_error "-m on a model" "-m" "$CHORUS" info "$M" -m "$M"

# Bad synth options.
expect_error "synth adapter without -m" "-m" "$CHORUS" synth --lora "$TMP/x"
expect_error "synth adapter with an unknown target" "--targets" "$CHORUS" synth --lora "$TMP/x" -m "$M" --targets q,lm_head
expect_error "synth adapter with rank 0" "--rank" "$CHORUS" synth --lora "$TMP/x" -m "$M" --rank 0
expect_error "synth adapter in an unknown format" "--format" "$CHORUS" synth --lora "$TMP/x" -m "$M" --format bin
expect_error "synth adapter into a missing directory" "$TMP/no/such" "$CHORUS" synth --lora "$TMP/no/such/x.gguf" -m "$M"
expect_usage_error "--lora with --shape" "--shape excludes --lora" "$CHORUS" synth --lora "$TMP/x" --shape tiny
expect_usage_error "--rank without --lora" "--rank requires --lora" "$CHORUS" synth --shape tiny -o "$TMP/x.gguf" --rank 4
finish
