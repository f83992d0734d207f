# info, tokenize, synth and perplexity do what they say on the bundled files.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
V="$SRC/tests/data/vocab"

out=$("$CHORUS" info "$M")
for want in "dim           64" "layers        5" "kv 4" "512 tokens" "kernels       " "(this CPU runs: generic" \
  "kv cache      0.62 KiB per token as f16"; do
  [[ "$out" == *"$want"* ]] && echo "ok: info shows '$want'" || fail "info lacks '$want': $out"
done

# Ids from llama.cpp's conformance vectors for the LLaMA 2 vocabulary.
got=$("$CHORUS" tokenize -m "$V/ggml-vocab-llama-spm.gguf" -p "Hello world" --ids --no-bos)
[[ "$got" == "[15043, 3186]" ]] && echo "ok: tokenize spm" || fail "tokenize spm: $got"
got=$("$CHORUS" tokenize -m "$V/ggml-vocab-llama-bpe.gguf" -p "Hello world" --ids --no-bos)
[[ "$got" == "[9906, 1917]" ]] && echo "ok: tokenize bpe" || fail "tokenize bpe: $got"

"$CHORUS" synth --shape tiny --type q4_0 -o "$TMP/tiny.gguf" 2>/dev/null || fail "synth tiny"
out=$("$CHORUS" info "$TMP/tiny.gguf")
[[ "$out" == *"q4_0"* && "$out" == *"layers        2"* ]] && echo "ok: synth tiny q4_0 loads" || fail "synth info: $out"
"$CHORUS" run -m "$TMP/tiny.gguf" -p "Hello" -n 4 --temp 0 >/dev/null 2>&1 && echo "ok: synth model runs" || fail "synth model does not run"

out=$("$CHORUS" perplexity -m "$M" -f "$SRC/tests/data/stories.txt" -c 128 2>/dev/null)
ppl=$(echo "$out" | sed -n 's/^perplexity: \([0-9.]*\).*/\1/p')
if [[ -n "$ppl" ]] && awk -v p="$ppl" 'BEGIN{exit !(p > 1 && p < 30)}'; then
  echo "ok: perplexity $ppl"
else
  fail "perplexity output: $out"
fi
# quantize writes a standard GGUF that loads and scores close to the original;
# KL divergence of a model from itself is zero (both over an f32 KV cache),
# tiny with the default f16 cache, and from its Q4_0 copy it is not.
"$CHORUS" quantize "$M" "$TMP/q4_0.gguf" --type q4_0 2>/dev/null || fail "quantize q4_0"
out=$("$CHORUS" info "$TMP/q4_0.gguf")
[[ "$out" == *"q4_0"* ]] && echo "ok: quantized file has q4_0 tensors" || fail "quantized info: $out"
kl_of() { sed -n 's/^mean KL divergence from base: \([0-9.e+-]*\)$/\1/p'; }
self=$("$CHORUS" perplexity -m "$M" -f "$SRC/tests/data/stories.txt" -c 64 --chunks 4 --kl-divergence "$M" --kv-type f32 2>/dev/null | kl_of)
f16=$("$CHORUS" perplexity -m "$M" -f "$SRC/tests/data/stories.txt" -c 64 --chunks 4 --kl-divergence "$M" 2>/dev/null | kl_of)
q4=$("$CHORUS" perplexity -m "$TMP/q4_0.gguf" -f "$SRC/tests/data/stories.txt" -c 64 --chunks 4 --kl-divergence "$M" 2>/dev/null | kl_of)
awk -v k="$self" 'BEGIN{exit !(k != "" && k < 1e-6)}' && echo "ok: KL to itself $self" || fail "KL to itself: '$self'"
awk -v k="$f16" 'BEGIN{exit !(k != "" && k < 1e-4)}' && echo "ok: KL of an f16 KV cache $f16" || fail "KL of an f16 KV cache: '$f16'"
awk -v k="$q4" 'BEGIN{exit !(k != "" && k > 1e-4 && k < 1)}' && echo "ok: KL of q4_0 $q4" || fail "KL of q4_0: '$q4'"
finish
