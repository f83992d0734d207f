# `chorus serve` formats chat messages with a chat template: the model's own
# or `--chat-template NAME`; a chat completion equals `chorus run` on the
# rendered conversation. A model without a template keeps the fixed one and
# says so at start-up; an unknown template name stops the server with the
# list of names.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
M="$SRC/models/stories260K.gguf"

expect_error "unknown template name" "is neither a template name (one of: chatml, llama2" \
  "$CHORUS" serve -m "$M" --port 0 --chat-template no-such-template

start_server -m "$M" -c 512 || finish
grep -q "the model has no chat template; chat uses the fixed one" "$TMP/server.err" &&
  echo "ok: the fixed template is announced" || fail "no fallback notice: $(cat "$TMP/server.err")"
stop_server

start_server -m "$M" -c 512 --chat-template chatml || finish
grep -q "chat template chatml" "$TMP/server.err" && echo "ok: chatml announced" ||
  fail "template not announced: $(cat "$TMP/server.err")"
[[ $(curl -s -m 60 "$U/props" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chat_template"])') == chatml* ]] &&
  echo "ok: /props names chatml" || fail "/props: $(curl -s "$U/props")"
body='{"messages":[{"role":"system","content":"Tell a story."},{"role":"user","content":"Once upon a time"}],"max_tokens":24,"temperature":0,"ignore_eos":true}'
got=$(curl -s -m 60 "$U/v1/chat/completions" -d "$body" |
  python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["choices"][0]["message"]["content"]))')
rendered=$'<|im_start|>system\nTell a story.<|im_end|>\n<|im_start|>user\nOnce upon a time<|im_end|>\n<|im_start|>assistant\n'
want=$("$CHORUS" run -m "$M" --json -p "$rendered" -n 24 --temp 0 --ignore-eos 2>/dev/null |
  python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["text"]))')
[[ -n "$want" && "$got" == "$want" ]] && echo "ok: chat completion equals run on the ChatML rendering" ||
  fail "chat via chatml: got $got, want $want"
stop_server

# A conversation the template refuses is a 400 with the template's own words.
start_server -m "$M" -c 512 --chat-template gemma || finish
status=$(curl -s -m 60 -o "$TMP/resp" -w '%{http_code}' "$U/v1/chat/completions" \
  -d '{"messages":[{"role":"system","content":"x"},{"role":"user","content":"y"}],"max_tokens":2}')
[[ $status == 400 ]] && grep -q "System role not supported" "$TMP/resp" &&
  echo "ok: gemma refuses a system turn with a 400" || fail "gemma system turn: $status $(cat "$TMP/resp")"
stop_server
finish
