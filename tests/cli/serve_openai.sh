# `chorus serve` as OpenAI clients expect it: stop strings cut right before
# the stop text (streamed too, and as `chorus run --stop`), content: null,
# integral floats, /v1/models/{id}, any model name served by the base model,
# system_fingerprint, the include_usage chunk, 405 with Allow, a 400 naming
# each unsupported field, per-request adapter scales, /tokenize,
# /detokenize, /props, /metrics, the access log, finish_reason "abort" when
# SIGTERM cuts a request short, the API key and CORS.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
M="$SRC/models/stories260K.gguf"
DOG="$SRC/models/adapters/dog.gguf"
P="Once upon a time"
start_server -m "$M" --lora "dog=$DOG" --max-streams 4 -c 512 || finish

# post PATH BODY [CURL ARGS...]: the body in $TMP/resp, headers in $TMP/hdr, the status on stdout.
post() {
  local path="$1" body="$2"; shift 2
  curl -s -m 60 -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' -H 'Content-Type: application/json' "$@" "$U$path" -d "$body"
}
get() { local path="$1"; shift; curl -s -m 60 -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' "$@" "$U$path"; }
py() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); v=($1); print(v)" "$TMP/resp"; }
run_text() {
  "$CHORUS" run -m "$M" --json "$@" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])'
}

# --- Stop strings: the text ends right before the stop text. ---
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":40,\"temperature\":0,\"ignore_eos\":true}")
full=$(py "j['choices'][0]['text']")
[[ $status == 200 && ${#full} -gt 40 ]] || fail "greedy text: $status $(cat "$TMP/resp")"
# The stop string: 4 characters from the middle whose first occurrence is there.
IFS=$'\t' read -r stop want < <(python3 -c '
import json, sys
t = sys.argv[1]
for k in range(12, len(t) - 4):
    s = t[k:k + 4]
    if t.find(s) == k and s.strip() == s and " " in s:
        print(json.dumps(s) + "\t" + json.dumps(t[:k])); break' "$full")
[[ -n "$stop" ]] || fail "no stop string found in: $full"
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":40,\"temperature\":0,\"ignore_eos\":true,\"stop\":[$stop]}")
[[ $status == 200 && $(py "json.dumps(j['choices'][0]['text']), j['choices'][0]['finish_reason']") == "($(python3 -c 'import sys;print(repr(sys.argv[1]))' "$want"), 'stop')" ]] &&
  echo "ok: stop $stop cuts right before it" || fail "stop $stop: want $want, got $(cat "$TMP/resp")"
curl -s -N -m 60 "$U/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":40,\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"stop\":[$stop]}" > "$TMP/sse"
streamed=$(python3 -c '
import json, sys
out = ""
for l in open(sys.argv[1]).read().split("\n"):
    if l.startswith("data: {"):
        for c in json.loads(l[6:])["choices"]: out += c["text"]
print(json.dumps(out))' "$TMP/sse")
[[ "$streamed" == "$want" ]] && echo "ok: streamed pieces never include the stop text" || fail "streamed stop: $streamed vs $want"
ran=$(run_text -p "$P" -n 40 --temp 0 --ignore-eos --stop "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]))' "$stop")")
[[ "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$ran")" == "$want" ]] &&
  echo "ok: chorus run --stop cuts the same text" || fail "run --stop: '$ran' vs $want"

# --- Accepted as OpenAI accepts them. ---
status=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":null},{"role":"user","content":"Once"}],"max_tokens":4}')
[[ $status == 200 ]] && echo "ok: assistant content null" || fail "content null: $status $(cat "$TMP/resp")"
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":8.0,\"n\":1.0,\"temperature\":0,\"ignore_eos\":true}")
[[ $status == 200 && $(py "j['usage']['completion_tokens']") == 8 ]] && echo "ok: max_tokens 8.0" || fail "8.0: $status $(cat "$TMP/resp")"
base=$(py "j['choices'][0]['text']")
[[ $(py "j['system_fingerprint'].startswith('chorus-') and j['system_fingerprint'].count('-') >= 2") == True ]] &&
  echo "ok: system_fingerprint $(py "j['system_fingerprint']")" || fail "fingerprint: $(cat "$TMP/resp")"
status=$(post /v1/completions "{\"model\":\"gpt-3.5-turbo\",\"prompt\":\"$P\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true}")
[[ $status == 200 && $(py "j['choices'][0]['text']") == "$base" && $(py "j['model']") == gpt-3.5-turbo ]] &&
  echo "ok: any model name is served by the base model" || fail "gpt-3.5-turbo: $status $(cat "$TMP/resp")"
status=$(get /v1/models/dog)
[[ $status == 200 && $(py "j['id'], j['object'], j['parent']") == "('dog', 'model', 'stories260K')" ]] && echo "ok: GET /v1/models/dog" || fail "models/dog: $status $(cat "$TMP/resp")"
status=$(get /v1/models/stories260K)
[[ $status == 200 && $(py "j['id']") == stories260K ]] && echo "ok: GET /v1/models/stories260K" || fail "models/base: $status"
status=$(get /v1/models/nope)
[[ $status == 404 && $(py "'nope' in j['error']['message']") == True ]] && echo "ok: GET /v1/models/nope -> 404" || fail "models/nope: $status"

# --- include_usage: a last chunk with empty choices and the usage. ---
curl -s -N -m 60 "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"Once"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}' > "$TMP/usage.sse"
[[ $(python3 -c '
import json, sys
ev = [l[6:] for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert ev[-1] == "[DONE]", ev[-1]
last, fin = json.loads(ev[-2]), json.loads(ev[-3])
print(last["choices"] == [], last["usage"]["completion_tokens"], fin["choices"][0]["finish_reason"], "usage" in fin)' "$TMP/usage.sse") == "True 5 length False" ]] &&
  echo "ok: include_usage chunk" || fail "include_usage: $(tail -c 700 "$TMP/usage.sse")"

# --- 405 with Allow. ---
status=$(get /v1/completions)
[[ $status == 405 ]] && grep -qi '^Allow: POST' "$TMP/hdr" && [[ $(py "j['error']['type']") == invalid_request_error ]] &&
  echo "ok: GET /v1/completions -> 405, Allow: POST" || fail "GET completions: $status $(cat "$TMP/hdr")"
status=$(post /health '{}')
[[ $status == 405 ]] && grep -qi '^Allow: GET' "$TMP/hdr" && echo "ok: POST /health -> 405, Allow: GET" || fail "POST health: $status"

# --- Fields that would change the answer: a 400 naming them. ---
for f in '"tools":[{"type":"function","function":{"name":"f"}}]' '"tool_choice":"required"' '"functions":[{"name":"f"}]' \
         '"response_format":{"type":"json_object"}' '"logit_bias":{"5":10}' \
         '"suffix":"x"' '"best_of":2' '"presence_penalty":0.5' '"frequency_penalty":0.5'; do
  name=$(sed 's/^"\([a-z_]*\)".*/\1/' <<<"$f")
  status=$(post /v1/completions "{\"prompt\":\"x\",$f}")
  [[ $status == 400 && $(py "j['error']['param'], ('\\'$name\\' is not supported' in j['error']['message'])") == "('$name', True)" ]] &&
    echo "ok: $name -> 400: $(py "j['error']['message']")" || fail "$name: $status $(cat "$TMP/resp")"
done
status=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"logprobs":false,"tools":[],"presence_penalty":0,"max_tokens":2}')
[[ $status == 200 ]] && echo "ok: neutral values of those fields pass" || fail "neutral: $status $(cat "$TMP/resp")"

# --- Per-request adapter scale: 0 is the base model, 1 the loaded adapter. ---
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true,\"adapters\":[{\"name\":\"dog\",\"scale\":0},\"dog\",{\"name\":\"dog\",\"scale\":1}]}")
[[ $status == 400 && $(py "'one scale per adapter' in j['error']['message']") == True ]] && echo "ok: two scales of one adapter -> 400" || fail "two scales: $status $(cat "$TMP/resp")"
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true,\"adapters\":[{\"name\":\"dog\",\"scale\":0}]}")
[[ $status == 200 && $(py "j['choices'][0]['text']") == "$base" ]] && echo "ok: dog at scale 0 = the base model" || fail "scale 0: $status $(cat "$TMP/resp")"
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true,\"model\":\"dog\"}")
dog=$(py "j['choices'][0]['text']")
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true,\"adapters\":[{\"name\":\"dog\",\"scale\":1}]}")
[[ $status == 200 && $(py "j['choices'][0]['text']") == "$dog" && "$dog" != "$base" ]] && echo "ok: dog at scale 1 = model dog" || fail "scale 1: $status $(cat "$TMP/resp")"

# --- /tokenize, /detokenize, /props, /metrics. ---
status=$(post /tokenize "{\"content\":\"$P\"}")
ids=$(py "j['tokens']")
[[ $status == 200 && $(py "j['tokens'][0]") == 1 ]] && echo "ok: /tokenize $ids" || fail "tokenize: $status $(cat "$TMP/resp")"
status=$(post /detokenize "{\"tokens\":$ids}")
[[ $status == 200 && $(py "j['content'].strip()") == "$P" ]] && echo "ok: /detokenize" || fail "detokenize: $status $(cat "$TMP/resp")"
status=$(post /detokenize '{"tokens":[1, 99999]}')
[[ $status == 400 && $(py "'token ids must be integers in [0, 512)' in j['error']['message']") == True ]] && echo "ok: /detokenize of a bad id -> 400" || fail "bad detokenize: $status $(cat "$TMP/resp")"
status=$(post /tokenize '{"text":"x"}')
[[ $status == 400 && $(py "j['error']['param']") == content ]] && echo "ok: /tokenize without content -> 400" || fail "bad tokenize: $status"
status=$(get /props)
[[ $status == 200 && $(py "j['n_ctx'], j['max_streams'], j['adapters'], j['system_fingerprint'].startswith('chorus-')") == "(512, 4, ['dog'], True)" ]] &&
  echo "ok: /props" || fail "props: $status $(cat "$TMP/resp")"
status=$(get /metrics)
grep -q '^chorus_http_requests_total{path="/v1/completions",status="200"} [1-9]' "$TMP/resp" &&
  grep -q '^chorus_http_requests_total{path="/v1/completions",status="400"} [1-9]' "$TMP/resp" &&
  grep -q '^chorus_generated_tokens_total [1-9]' "$TMP/resp" && grep -q '^chorus_prompt_tokens_total [1-9]' "$TMP/resp" &&
  grep -q '^chorus_choices_total{adapter="dog"} [1-9]' "$TMP/resp" && grep -q '^# TYPE chorus_requests_waiting gauge' "$TMP/resp" &&
  [[ $status == 200 ]] && echo "ok: /metrics in Prometheus text" || fail "metrics: $status $(cat "$TMP/resp")"
grep -q '"POST /v1/completions" 200 ' "$TMP/server.err" && grep -q '"GET /v1/completions" 405 ' "$TMP/server.err" &&
  echo "ok: access log lines on stderr" || fail "access log: $(tail -5 "$TMP/server.err")"

stop_server

# --- SIGTERM mid-request: the choice ends with finish_reason "abort". ---
# A model in SmolLM2-135M's shape (random weights, made here) generates
# slowly enough that 600 tokens are far from done when the signal lands
# right after the first piece arrives.
"$CHORUS" synth --shape smollm2-135m --type q4_0 -o "$TMP/smol.gguf" >/dev/null 2>&1
start_server -m "$TMP/smol.gguf" -c 1024 || finish
out=$(timeout 120 python3 - "${U##*:}" "$SERVER_PID" <<'EOF' 2>&1
import json, os, signal, socket, sys
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=60)
body = json.dumps({"prompt": "Once upon a time", "max_tokens": 600, "stream": True,
                   "ignore_eos": True, "temperature": 0}).encode()
s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
data = b""
signalled = False
while b"data: [DONE]" not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
    if not signalled and b'"text":"' in data:
        os.kill(pid, signal.SIGTERM)  # generation has begun
        signalled = True
events = [l for l in data.decode(errors="replace").split("\n") if l.startswith("data: {")]
last = json.loads(events[-1][6:])
print("finish:", [c["finish_reason"] for c in last["choices"]], "tokens:",
      last["usage"]["completion_tokens"] < 600)
EOF
) || true
[[ "$out" == "finish: ['abort'] tokens: True" ]] && echo "ok: SIGTERM mid-request -> finish_reason abort" || fail "SIGTERM mid-request: $out"
for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
status=0; wait "$SERVER_PID" || status=$?
[[ $status == 0 ]] && echo "ok: the server then exits with status 0" || fail "exit after SIGTERM: $status $(tail -3 "$TMP/server.err")"
SERVER_PID=""

# --- API key (from a file) and CORS. ---
echo "  s3cret-key  " > "$TMP/key"
start_server -m "$M" --api-key-file "$TMP/key" --cors "http://app.example,http://other.example" || finish
status=$(get /health)
[[ $status == 200 ]] && echo "ok: /health needs no key" || fail "health with key: $status"
status=$(get /v1/models)
[[ $status == 401 && $(py "j['error']['type'], 'API key' in j['error']['message']") == "('invalid_request_error', True)" ]] &&
  echo "ok: no key -> 401: $(py "j['error']['message']")" || fail "no key: $status $(cat "$TMP/resp")"
status=$(get /v1/models -H "Authorization: Bearer wrong")
[[ $status == 401 ]] && echo "ok: wrong key -> 401" || fail "wrong key: $status"
status=$(post /v1/completions '{"prompt":"x","max_tokens":2}' -H "Authorization: Bearer s3cret-key")
[[ $status == 200 ]] && echo "ok: right key -> 200" || fail "right key: $status $(cat "$TMP/resp")"
status=$(curl -s -m 10 -o "$TMP/resp" -D "$TMP/hdr" -w '%{http_code}' -X OPTIONS -H "Origin: http://app.example" \
         -H "Access-Control-Request-Method: POST" "$U/v1/completions")
[[ $status == 204 ]] && grep -qi '^Access-Control-Allow-Origin: http://app.example' "$TMP/hdr" &&
  grep -qi '^Access-Control-Allow-Headers: .*Authorization' "$TMP/hdr" && echo "ok: CORS preflight" || fail "preflight: $status $(cat "$TMP/hdr")"
status=$(get /v1/models -H "Origin: http://other.example" -H "Authorization: Bearer s3cret-key")
[[ $status == 200 ]] && grep -qi '^Access-Control-Allow-Origin: http://other.example' "$TMP/hdr" && echo "ok: CORS header for an allowed origin" || fail "cors: $(cat "$TMP/hdr")"
status=$(get /v1/models -H "Origin: http://evil.example" -H "Authorization: Bearer s3cret-key")
[[ $status == 200 ]] && ! grep -qi '^Access-Control-Allow-Origin' "$TMP/hdr" && echo "ok: no CORS header for another origin" || fail "cors other: $(cat "$TMP/hdr")"
stop_server

expect_error "missing --api-key-file" "cannot read the API key file" "$CHORUS" serve -m "$M" --api-key-file "$TMP/nope" --port 0
expect_error "both key flags" "not both" "$CHORUS" serve -m "$M" --api-key k --api-key-file "$TMP/key" --port 0
finish
