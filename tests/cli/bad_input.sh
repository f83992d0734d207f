# Bad files and absurd parameters get one clear error line and exit 1.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"

head -c 1000 "$M" > "$TMP/truncated.gguf"
head -c 500000 "$M" > "$TMP/truncated-data.gguf"
printf 'this is not a model at all, just text\n' > "$TMP/text.gguf"
head -c 3000 "$SRC/models/stories260K.bin" > "$TMP/truncated.bin"
cp "$SRC/models/tok512.bin" "$TMP/tok512.bin"
printf 'GGUF\x01\x00\x00\x00' > "$TMP/v1.gguf"

expect_error "missing model file" "$TMP/nope.gguf" "$CHORUS" run -m "$TMP/nope.gguf" -p hi
expect_error "truncated GGUF header" "truncated.gguf" "$CHORUS" run -m "$TMP/truncated.gguf" -p hi
expect_error "GGUF with tensor data cut off" "truncated-data.gguf" "$CHORUS" info "$TMP/truncated-data.gguf"
expect_error "text file as model" "text.gguf" "$CHORUS" info "$TMP/text.gguf"
expect_error "GGUF version 1" "v1.gguf" "$CHORUS" info "$TMP/v1.gguf"
expect_error "truncated llama2.c checkpoint" "truncated.bin" "$CHORUS" run -m "$TMP/truncated.bin" --tokenizer "$TMP/tok512.bin" -p hi
expect_error "directory as model" "$TMP" "$CHORUS" info "$TMP"
expect_error "absurd -n" "-n" "$CHORUS" run -m "$M" -p hi -n 100000000
expect_error "negative -n" "-n" "$CHORUS" run -m "$M" -p hi -n -5
expect_error "zero threads" "-t" "$CHORUS" run -m "$M" -p hi -t 0
expect_error "too many threads" "-t" "$CHORUS" run -m "$M" -p hi -t 1000
expect_error "context above the model's" "-c" "$CHORUS" run -m "$M" -p hi -c 100000
expect_error "prompt longer than the context" "context" "$CHORUS" run -m "$M" -p "$(printf 'once upon a time %.0s' {1..40})" -c 16
expect_error "negative temperature" "temp" "$CHORUS" run -m "$M" -p hi --temp -1
expect_error "top-p above 1" "top" "$CHORUS" run -m "$M" -p hi --top-p 1.5
expect_error "unknown weight format" "--weights" "$CHORUS" run -m "$M" -p hi --weights int3
expect_error "unknown KV cache type" "--kv-type: unknown KV cache type 'q8' (expected f16 or f32)" \
  "$CHORUS" run -m "$M" -p hi --kv-type q8
expect_error "unknown synth shape" "unknown shape" "$CHORUS" synth --shape gpt-9 -o "$TMP/x.gguf"
expect_error "synth into a missing directory" "$TMP/no/such/dir" "$CHORUS" synth --shape tiny -o "$TMP/no/such/dir/x.gguf"
expect_error "synth with an unknown type" "q3_Z" "$CHORUS" synth --shape tiny --type q3_Z -o "$TMP/x.gguf"
expect_error "perplexity on a missing text" "nope.txt" "$CHORUS" perplexity -m "$M" -f "$TMP/nope.txt"
"$CHORUS" quantize "$M" "$TMP/q8.gguf" --type q8_0 2>/dev/null
expect_error "requantizing a quantized model" "already quantized" "$CHORUS" quantize "$TMP/q8.gguf" "$TMP/q4.gguf" --type q4_0
expect_error "quantize to an unwritable path" "$TMP/missing/x.gguf" "$CHORUS" quantize "$M" "$TMP/missing/x.gguf"
expect_error "quantize to a type chorus cannot write" "q6_K" "$CHORUS" quantize "$M" "$TMP/x.gguf" --type q6_K
"$CHORUS" synth --shape tiny -o "$TMP/tiny.gguf" 2>/dev/null
expect_error "KL base with another vocabulary" "vocabulary" "$CHORUS" perplexity -m "$M" -f "$SRC/tests/data/stories.txt" --kl-divergence "$TMP/tiny.gguf"
expect_usage_error "unknown subcommand" "A subcommand is required" "$CHORUS" frobnicate
expect_usage_error "non-numeric -n" "Could not convert: --n-predict = lots" "$CHORUS" run -m "$M" -p hi -n lots
finish
