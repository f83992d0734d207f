# `chorus run --chat`: user turns from stdin, the conversation formatted with
# a chat template (stories260K has none: --chat-template names one, or a copy
# of the model carries one in tokenizer.chat_template), the history kept
# across turns; `chorus info`'s template line; template choice and its errors.
source "$(dirname "$0")/lib.sh"
MODEL="$SRC/models/stories260K.gguf"
RUN=("$CHORUS" run -m "$MODEL" -n 8 --temp 0 -t 1)

info=$("$CHORUS" info "$MODEL")
[[ "$info" == *"chat template none (chat needs --chat-template NAME)"* ]] || fail "info: $info"

# Two turns with ChatML; each answer must be what `chorus run` generates for
# the conversation so far rendered by hand (the vocabulary has no ChatML
# tokens, so parsing special tokens changes nothing here).
printf 'Once upon a time\nThe end\n/quit\nnot read\n' | "${RUN[@]}" --chat --chat-template chatml \
  >"$TMP/chat.out" 2>"$TMP/chat.err"
grep -q "chat template chatml; /reset starts over, /quit ends" "$TMP/chat.err" || fail "banner: $(cat "$TMP/chat.err")"
[[ $(grep -c "prompt tokens, 8 generated, finish length" "$TMP/chat.err") -eq 2 ]] || fail "two turns: $(cat "$TMP/chat.err")"
text_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["text"], end="")'; }
p1=$'<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n'
a1=$("${RUN[@]}" -p "$p1" --json | text_of)
p2="$p1$a1"$'<|im_end|>\n<|im_start|>user\nThe end<|im_end|>\n<|im_start|>assistant\n'
a2=$("${RUN[@]}" -p "$p2" --json | text_of)
printf '%s\n%s\n' "$a1" "$a2" >"$TMP/want.out"
if cmp -s "$TMP/chat.out" "$TMP/want.out"; then
  echo "ok: two chat turns equal run -p on the rendered conversation"
else
  fail "chat answers differ: got [$(cat "$TMP/chat.out")] want [$(cat "$TMP/want.out")]"
fi

# /reset forgets the conversation: the turn after it is the first turn again.
printf 'Once upon a time\n/reset\nOnce upon a time\n' | "${RUN[@]}" --chat --chat-template chatml \
  >"$TMP/reset.out" 2>"$TMP/reset.err"
printf '%s\n%s\n' "$a1" "$a1" | cmp -s - "$TMP/reset.out" || fail "/reset: $(cat "$TMP/reset.out")"
grep -q "conversation cleared" "$TMP/reset.err" || fail "/reset message: $(cat "$TMP/reset.err")"

# A system prompt and a template from a file, recognised like a model's.
printf 'Hi\n' | "${RUN[@]}" --chat --chat-template "$SRC/tests/data/chat_templates/smollm2.jinja" \
  >/dev/null 2>"$TMP/smol.err"
grep -q 'chat template chatml (default system prompt: "You are a helpful AI assistant named SmolLM' \
  "$TMP/smol.err" || fail "template file: $(cat "$TMP/smol.err")"
# The Llama 2 template writes BOS itself: "<s>" is read as the BOS token and
# no second one is added, so the prompt is the one run -p gets without it.
printf 'Hi\n' | "${RUN[@]}" --chat --chat-template llama2 --system "Be kind." >"$TMP/l2.out" 2>"$TMP/l2.err"
"${RUN[@]}" -p $'[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST]' --json >"$TMP/l2.json"
n=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["prompt_tokens"]))' <"$TMP/l2.json")
grep -q "^\[chorus\] $n prompt tokens, 8 generated" "$TMP/l2.err" || fail "llama2 prompt ($n tokens): $(cat "$TMP/l2.err")"
text_of <"$TMP/l2.json" >"$TMP/l2.want"
echo >>"$TMP/l2.want"
cmp -s "$TMP/l2.out" "$TMP/l2.want" || fail "llama2 chat: got [$(cat "$TMP/l2.out")] want [$(cat "$TMP/l2.want")]"
echo "ok: llama2 chat with a system prompt, one BOS ($n prompt tokens)"

# A turn that does not fit is reported and dropped; the chat goes on.
long=$(printf 'and then the cat ran %.0s' {1..40})
printf '%s\nHi\n' "$long" | "${RUN[@]}" -c 64 --chat --chat-template zephyr >"$TMP/long.out" 2>"$TMP/long.err"
grep -q "chorus: error: --chat: the conversation has [0-9]* tokens, the context holds 64 (/reset starts over" \
  "$TMP/long.err" || fail "too long: $(cat "$TMP/long.err")"
[[ $(grep -c "prompt tokens, 8 generated" "$TMP/long.err") -eq 1 ]] || fail "turn after the error: $(cat "$TMP/long.err")"

# A model carrying a chat template: stories260K with tokenizer.chat_template
# added (and a padding key, so the data section keeps its 32-byte alignment).
with_template() {  # with_template TEMPLATE_FILE OUT.gguf
  python3 - "$MODEL" "$2" "$1" <<'PY'
import struct, sys
src, dst, template = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
b = open(src, "rb").read()
version, n_tensors, n_kv = struct.unpack_from("<IQQ", b, 4)
def kv(key, value):
    k = key.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<IQ", 8, len(value)) + value
new = kv("tokenizer.chat_template", template)
new += kv("test.padding", b" " * (-(len(new) + len(kv("test.padding", b""))) % 32))
open(dst, "wb").write(b[:4] + struct.pack("<IQQ", version, n_tensors, n_kv + 2) + new + b[24:])
PY
}
with_template "$SRC/tests/data/chat_templates/smollm2.jinja" "$TMP/smol.gguf"
info=$("$CHORUS" info "$TMP/smol.gguf")
[[ "$info" == *'chat template chatml (default system prompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")'* ]] \
  || fail "info of a model with a template: $info"
SMOL=("$CHORUS" run -m "$TMP/smol.gguf" -n 8 --temp 0 -t 1)
printf 'Hi\n' | "${SMOL[@]}" --chat >"$TMP/smol.out" 2>"$TMP/smol.err"
grep -q "chat template chatml (default system prompt" "$TMP/smol.err" || fail "model's template: $(cat "$TMP/smol.err")"
"${SMOL[@]}" -p $'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' \
  --json | text_of >"$TMP/smol.want"
echo >>"$TMP/smol.want"
cmp -s "$TMP/smol.out" "$TMP/smol.want" || fail "model's template: got [$(cat "$TMP/smol.out")] want [$(cat "$TMP/smol.want")]"
echo "ok: the model's own template, with its default system prompt"
printf 'Hi\n' | "${SMOL[@]}" --chat --chat-template zephyr >/dev/null 2>"$TMP/override.err"
grep -q "chat template zephyr;" "$TMP/override.err" || fail "override: $(cat "$TMP/override.err")"
printf 'Hello {{ name }}' >"$TMP/odd.jinja"
with_template "$TMP/odd.jinja" "$TMP/odd.gguf"
info=$("$CHORUS" info "$TMP/odd.gguf")
[[ "$info" == *"chat template not recognised (16 bytes; chat needs --chat-template NAME, one of: chatml, "* ]] \
  || fail "info of an unrecognised template: $info"

names="chatml, llama2, llama3, zephyr, mistral-v0.1, mistral-v0.2, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, gemma, phi3"
expect_error "no template" \
  "chorus: error: --chat-template: the model has no chat template (tokenizer.chat_template); pass --chat-template NAME (one of: $names)" \
  "${RUN[@]}" --chat
expect_error "unknown name" "--chat-template: 'vicuna' is neither a template name (one of: $names) nor a readable file" \
  "${RUN[@]}" --chat --chat-template vicuna
expect_error "unrecognised model template" \
  "chorus: error: tokenizer.chat_template: not a chat template chorus recognises; pass --chat-template NAME (one of: $names)" \
  "$CHORUS" run -m "$TMP/odd.gguf" --chat
expect_error "unrecognised file" "$TMP/odd.jinja: not a chat template chorus recognises; pass --chat-template NAME (one of: $names)" \
  "${RUN[@]}" --chat --chat-template "$TMP/odd.jinja"
expect_error "gemma has no system role" "chorus: error: chat template gemma: System role not supported" \
  "${RUN[@]}" --chat --chat-template gemma --system "Be kind."
expect_error "chat with -p" "--chat: reads the user's turns from stdin; give a system prompt with --system" \
  "${RUN[@]}" --chat --chat-template chatml -p "Hi"
expect_error "chat with streams" "--chat: is one conversation on one stream" \
  "${RUN[@]}" --chat --chat-template chatml --streams 2
expect_error "template without chat" "--chat-template: needs --chat" "${RUN[@]}" -p Hi --chat-template chatml
expect_error "system without chat" "--system: needs --chat" "${RUN[@]}" -p Hi --system "Be kind."
finish
