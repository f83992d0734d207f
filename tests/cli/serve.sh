# `chorus serve`, the OpenAI-compatible HTTP server: started on a free port
# (--port 0) with the bundled model and the dog adapter; greedy completions
# equal `chorus run`, n choices are k streams with distinct greedy starts,
# model=ADAPTER equals `chorus run --adapter`, SSE streaming concatenates to
# the non-streamed text, chat completions, every bad input gets its 4xx JSON
# error and the server stays up, SIGTERM stops it cleanly.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
DOG="$SRC/models/adapters/dog.gguf"
P="Once upon a time"
start_server -m "$M" --lora "dog=$DOG" --max-streams 4 -c 512 || finish

# post PATH BODY: the body of the answer in $TMP/resp, the status on stdout.
post() { curl -s -m 60 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' "$U$1" -d "$2"; }
# jq_resp EXPR: a Python expression of the parsed answer j.
jq_resp() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); v=($1); print(v)" "$TMP/resp"; }
# run_text ARGS...: the generated text of a `chorus run --json`.
run_text() {
  "$CHORUS" run -m "$M" --json "$@" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])'
}
# sse_text FILE INDEX FIELD: the pieces of one choice concatenated.
sse_text() {
  python3 - "$@" <<'EOF'
import json, sys
path, index, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [l for l in open(path).read().split("\n") if l]
assert all(l.startswith("data: ") for l in lines), lines
assert lines[-1] == "data: [DONE]", lines[-1]
out = ""
for l in lines[:-1]:
    for c in json.loads(l[6:])["choices"]:
        if c["index"] == index:
            out += c["text"] if kind == "text" else c["delta"].get("content", "")
print(out)
EOF
}

# /v1/models: the base model and the adapter.
[[ $(curl -s -m 10 "$U/v1/models" | python3 -c 'import json,sys; print(" ".join(m["id"] for m in json.load(sys.stdin)["data"]))') == "stories260K dog" ]] &&
  echo "ok: /v1/models lists stories260K and dog" || fail "/v1/models: $(curl -s -m 10 "$U/v1/models")"

# Greedy completion = chorus run --temp 0.
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}")
want=$(run_text -p "$P" -n 24 --temp 0)
got=$(jq_resp "j['choices'][0]['text']")
[[ $status == 200 && -n "$want" && "$got" == "$want" ]] && echo "ok: greedy completion = chorus run" || fail "greedy: status $status, '$got' vs '$want'"
[[ $(jq_resp "j['object'], j['model'], j['choices'][0]['finish_reason'], j['usage']['completion_tokens'], j['usage']['total_tokens'] - j['usage']['prompt_tokens'], j['id'].startswith('cmpl-'), j['created'] > 0") == "('text_completion', 'stories260K', 'length', 24, 24, True, True)" ]] &&
  echo "ok: completion fields and usage" || fail "fields: $(cat "$TMP/resp")"
status=$(post /v1/completions "{\"model\":\"stories260K\",\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}")
[[ $status == 200 && $(jq_resp "j['choices'][0]['text']") == "$want" ]] && echo "ok: model = the base id" || fail "model=stories260K: $status"

# n = 3: three distinct choices in one pass (greedy: distinct first tokens).
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":12,\"temperature\":0,\"n\":3}")
[[ $status == 200 && $(jq_resp "len(j['choices']), len(set(c['text'] for c in j['choices'])), [c['index'] for c in j['choices']]") == "(3, 3, [0, 1, 2])" ]] &&
  echo "ok: n=3 gives 3 distinct choices" || fail "n=3: status $status $(cat "$TMP/resp")"
want12=$(run_text -p "$P" -n 12 --temp 0)
[[ -n "$want12" && $(jq_resp "j['choices'][0]['text']") == "$want12" ]] && echo "ok: choice 0 is the greedy run" || fail "n=3 choice 0"
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":12,\"temperature\":0.9,\"seed\":5,\"n\":2}")
seeded=$(run_text -p "$P" -n 12 --temp 0.9 -s 6)
[[ $status == 200 && -n "$seeded" && $(jq_resp "j['choices'][1]['text']") == "$seeded" ]] &&
  echo "ok: sampled choice i uses seed + i" || fail "seeded n=2: $status $(cat "$TMP/resp")"

# model = an adapter name: that adapter for every choice.
status=$(post /v1/completions "{\"model\":\"dog\",\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}")
dog=$(run_text -p "$P" -n 24 --temp 0 --lora "dog=$DOG" --adapter dog)
[[ $status == 200 && -n "$dog" && $(jq_resp "j['choices'][0]['text']") == "$dog" && "$dog" != "$want" ]] &&
  echo "ok: model=dog = chorus run --adapter dog" || fail "model=dog: status $status, '$(jq_resp "j['choices'][0]['text']")' vs '$dog'"
[[ $(jq_resp "j['model']") == dog ]] && echo "ok: model echoed" || fail "model echo: $(cat "$TMP/resp")"
# adapters (extension): choice i runs adapters[i].
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0,\"adapters\":[\"stories260K\",\"dog\"]}")
[[ $status == 200 && $(jq_resp "j['choices'][0]['text']") == "$want" && $(jq_resp "j['choices'][1]['text']") == "$dog" ]] &&
  echo "ok: adapters [base, dog] per choice" || fail "adapters: status $status $(cat "$TMP/resp")"

# Stop strings end a choice with finish_reason stop (tests/cli/serve_openai.sh: where).
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0,\"stop\":[\"Lily\"]}")
[[ $status == 200 && $(jq_resp "j['choices'][0]['finish_reason']") == stop && $(jq_resp "'Lily' in j['choices'][0]['text']") == False ]] &&
  echo "ok: stop string" || fail "stop: status $status $(cat "$TMP/resp")"

# Streaming: SSE chunks, then [DONE]; their concatenation is the non-streamed text.
curl -s -N -m 60 "$U/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0,\"stream\":true}" > "$TMP/sse" 2>/dev/null
got=$(sse_text "$TMP/sse" 0 text 2>&1)
chunks=$(grep -c '^data: {' "$TMP/sse")
[[ "$got" == "$want" && $chunks -gt 10 ]] && echo "ok: streamed ($chunks chunks) = non-streamed" || fail "stream: '$got' vs '$want': $(head -c 600 "$TMP/sse")"
grep -q '"finish_reason":"length"' "$TMP/sse" && grep -q '"usage"' "$TMP/sse" && echo "ok: last chunk has finish_reason and usage" || fail "stream end: $(tail -c 600 "$TMP/sse")"
curl -s -N -m 60 "$U/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":12,\"temperature\":0,\"stream\":true,\"n\":3}" > "$TMP/sse3" 2>/dev/null
post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":12,\"temperature\":0,\"n\":3}" >/dev/null
ok=1
for i in 0 1 2; do [[ "$(sse_text "$TMP/sse3" $i text 2>&1)" == "$(jq_resp "j['choices'][$i]['text']")" ]] || ok=0; done
((ok)) && echo "ok: streamed n=3 = non-streamed per choice" || fail "stream n=3: $(head -c 600 "$TMP/sse3")"

# Chat: the fixed template (message contents joined by newlines) = the completion of that text.
status=$(post /v1/chat/completions "{\"messages\":[{\"role\":\"user\",\"content\":\"$P\"}],\"max_tokens\":24,\"temperature\":0}")
[[ $status == 200 && $(jq_resp "j['object'], j['choices'][0]['message']['role'], j['choices'][0]['finish_reason'], j['id'].startswith('chatcmpl-')") == "('chat.completion', 'assistant', 'length', True)" ]] &&
  echo "ok: chat completion fields" || fail "chat: status $status $(cat "$TMP/resp")"
[[ $(jq_resp "j['choices'][0]['message']['content']") == "$want" ]] && echo "ok: chat = completion of the rendered prompt" || fail "chat text: $(cat "$TMP/resp")"
curl -s -N -m 60 "$U/v1/chat/completions" -d "{\"messages\":[{\"role\":\"user\",\"content\":\"$P\"}],\"max_tokens\":24,\"temperature\":0,\"stream\":true}" > "$TMP/chat.sse" 2>/dev/null
[[ "$(sse_text "$TMP/chat.sse" 0 delta 2>&1)" == "$want" ]] && grep -q '"object":"chat.completion.chunk"' "$TMP/chat.sse" && grep -q '"role":"assistant"' "$TMP/chat.sse" &&
  echo "ok: streamed chat deltas" || fail "chat stream: $(head -c 600 "$TMP/chat.sse")"
status=$(post /v1/chat/completions "{\"model\":\"dog\",\"messages\":[{\"role\":\"system\",\"content\":\"Once\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"upon a time\"}]}],\"max_tokens\":8,\"n\":2,\"temperature\":0}")
[[ $status == 200 && $(jq_resp "len(j['choices'])") == 2 ]] && echo "ok: chat with system message, content parts, n=2, adapter" || fail "chat 2: $status $(cat "$TMP/resp")"

# Bad input: the right 4xx with an OpenAI error body, and the server stays up.
# expect_status WHAT STATUS PATH BODY
expect_status() {
  local what="$1" want="$2" path="$3" body="$4" status
  status=$(post "$path" "$body")
  if [[ "$status" != "$want" ]]; then fail "$what: status $status, want $want: $(head -c 300 "$TMP/resp")"; return; fi
  if [[ $(jq_resp "j['error']['type'], bool(j['error']['message'])" 2>&1) != "('invalid_request_error', True)" ]]; then
    fail "$what: error body: $(head -c 300 "$TMP/resp")"; return
  fi
  echo "ok: $what -> $status $(jq_resp "j['error']['message']")"
}
C=/v1/completions
expect_status "malformed JSON" 400 $C '{"prompt": "x",'
expect_status "not an object" 400 $C '["x"]'
expect_status "missing prompt" 400 $C '{"max_tokens": 4}'
expect_status "prompt of a wrong type" 400 $C '{"prompt": 42}'
expect_status "max_tokens of a wrong type" 400 $C '{"prompt": "x", "max_tokens": "4"}'
expect_status "n of a wrong type" 400 $C '{"prompt": "x", "n": 1.5}'
expect_status "stream of a wrong type" 400 $C '{"prompt": "x", "stream": "yes"}'
expect_status "stop of a wrong type" 400 $C '{"prompt": "x", "stop": 3}'
expect_status "n = 0" 400 $C '{"prompt": "x", "n": 0}'
expect_status "n above --max-streams" 400 $C '{"prompt": "x", "n": 5}'
expect_status "max_tokens = 0" 400 $C '{"prompt": "x", "max_tokens": 0}'
expect_status "absurd max_tokens" 400 $C '{"prompt": "x", "max_tokens": 100000000000000000000}'
expect_status "max_tokens over the context" 400 $C '{"prompt": "x", "max_tokens": 100000}'
expect_status "n x max_tokens over the context" 400 $C '{"prompt": "x", "max_tokens": 200, "n": 4}'
expect_status "temperature < 0" 400 $C '{"prompt": "x", "temperature": -0.5}'
expect_status "top_p > 1" 400 $C '{"prompt": "x", "top_p": 2}'
expect_status "unknown adapter" 404 $C '{"prompt": "x", "adapters": ["dog", "cat"]}'
expect_status "adapters for another n" 400 $C '{"prompt": "x", "adapters": ["dog", "dog"], "n": 3}'
expect_status "streamed bad request" 400 $C '{"prompt": "x", "n": 0, "stream": true}'
expect_status "chat without messages" 400 /v1/chat/completions '{"prompt": "x"}'
expect_status "chat messages not an array" 400 /v1/chat/completions '{"messages": "hi"}'
expect_status "chat empty messages" 400 /v1/chat/completions '{"messages": []}'
expect_status "chat message without content" 400 /v1/chat/completions '{"messages": [{"role": "user"}]}'
expect_status "chat unknown role" 400 /v1/chat/completions '{"messages": [{"role": "wizard", "content": "x"}]}'
head -c 2000000 /dev/zero | tr '\0' 'a' > "$TMP/big"
status=$(curl -s -m 30 -o "$TMP/resp" -w '%{http_code}' "$U$C" --data-binary @"$TMP/big")
[[ $status == 413 && $(jq_resp "j['error']['type']") == invalid_request_error ]] && echo "ok: body too large -> 413" || fail "big body: $status $(head -c 300 "$TMP/resp")"
status=$(curl -s -m 10 -o "$TMP/resp" -w '%{http_code}' "$U/v1/nope")
[[ $status == 404 && $(jq_resp "j['error']['type']") == invalid_request_error ]] && echo "ok: unknown path -> 404" || fail "unknown path: $status $(cat "$TMP/resp")"
status=$(curl -s -m 10 -o "$TMP/resp" -w '%{http_code}' "$U$C")
[[ $status == 405 ]] && echo "ok: GET $C -> $status" || fail "GET $C: $status"
curl -s -m 10 "$U/health" | grep -q '"ok"' && echo "ok: still up after the bad requests" || fail "server down: $(cat "$TMP/server.err")"
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}")
[[ $status == 200 && $(jq_resp "j['choices'][0]['text']") == "$want" ]] && echo "ok: still generates the same text" || fail "after bad requests: $status"

# A client that hangs up mid-stream does not wedge the server (curl's own
# status is its time-out, the point here).
curl -s -N -m 1 "$U/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":120,\"n\":4,\"stream\":true,\"ignore_eos\":true}" >/dev/null 2>&1 || true
curl -s -m 30 "$U/health" | grep -q '"ok"' && echo "ok: up after a dropped stream" || fail "after dropped stream"

# SIGTERM: a clean exit, status 0, within a few seconds.
stop_server

# Command-line errors.
expect_error "bad --lora" "--lora" "$CHORUS" serve -m "$M" --lora nothing --port 0
expect_error "bad --max-streams" "--max-streams" "$CHORUS" serve -m "$M" --max-streams 0 --port 0
expect_error "bad --port" "--port" "$CHORUS" serve -m "$M" --port 70000
finish
