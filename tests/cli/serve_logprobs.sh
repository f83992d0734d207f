# `chorus serve` log-probabilities as OpenAI defines them: chat
# `logprobs`/`top_logprobs` (content entries with token, logprob, bytes and
# the alternatives), completions `logprobs` (tokens, token_logprobs,
# top_logprobs, text_offset) and `echo`; streamed chunks carry the same
# values as the whole reply; greedy tokens are the most likely of their
# alternatives; out-of-range values get a 400 naming the field.
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
M="$SRC/models/stories260K.gguf"
P="Once upon a time"
start_server -m "$M" --max-streams 4 -c 512 || finish

post() {
  local path="$1" body="$2"; shift 2
  curl -s -m 60 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' "$@" "$U$path" -d "$body"
}
# check FILE PYTHON [ARGS]: runs PYTHON with j = the JSON in FILE; it prints "ok" or why not.
check() { local f="$1" code="$2"; shift 2; python3 -c "import json,sys,math; j=json.load(open(sys.argv[1])); $code" "$f" "$@"; }
# The logprobs of every chunk of an SSE file, merged: chat content entries,
# or completions' parallel lists.
sse_logprobs() {
  python3 -c '
import json, sys
content, tokens, values, tops, offsets = [], [], [], [], []
for l in open(sys.argv[1]).read().split("\n"):
    if not l.startswith("data: {"): continue
    for c in json.loads(l[6:]).get("choices", []):
        lp = c.get("logprobs")
        if lp is None: continue
        if "content" in lp: content += lp["content"]
        else:
            tokens += lp["tokens"]; values += lp["token_logprobs"]; tops += lp["top_logprobs"]; offsets += lp["text_offset"]
print(json.dumps({"content": content} if content else
                 {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}))' "$1"
}

# --- Chat: content entries; greedy tokens are the most likely alternative. ---
chat='{"messages":[{"role":"user","content":"Once upon a time"}],"max_tokens":12,"temperature":0,"ignore_eos":true,"logprobs":true,"top_logprobs":5'
status=$(post /v1/chat/completions "$chat}")
[[ $status == 200 ]] || fail "chat logprobs: $status $(cat "$TMP/resp")"
cp "$TMP/resp" "$TMP/chat.json"
out=$(check "$TMP/chat.json" '
c = j["choices"][0]; lp = c["logprobs"]["content"]
assert len(lp) == j["usage"]["completion_tokens"] == 12, len(lp)
for e in lp:
    assert set(e) == {"token", "logprob", "bytes", "top_logprobs"}, e
    assert isinstance(e["token"], str) and all(0 <= b < 256 for b in e["bytes"]) and e["bytes"], e
    assert e["logprob"] <= 0 and math.isfinite(e["logprob"]), e
    top = e["top_logprobs"]
    assert len(top) == 5 and all(set(t) == {"token", "logprob", "bytes"} for t in top), top
    assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True), top
    assert e["logprob"] == max(t["logprob"] for t in top) == top[0]["logprob"], e
    assert top[0]["bytes"] == e["bytes"], e
text = bytes(b for e in lp for b in e["bytes"]).decode("utf-8", "replace")
assert text.endswith(c["message"]["content"]) and len(text) - len(c["message"]["content"]) <= 1, (text, c)
print("ok")') || true
[[ $out == ok ]] && echo "ok: chat logprobs: 12 content entries, greedy = the max of 5 sorted alternatives" || fail "chat shape: $out"

# Streamed: the chunks carry the same entries.
curl -s -N -m 60 "$U/v1/chat/completions" -d "$chat,\"stream\":true}" > "$TMP/chat.sse" || fail "chat stream: curl failed"
sse_logprobs "$TMP/chat.sse" > "$TMP/chat_sse.json" || fail "chat stream: no JSON"
out=$(check "$TMP/chat_sse.json" '
whole = json.load(open(sys.argv[2]))["choices"][0]["logprobs"]
assert j == whole, (j, whole)
print("ok")' "$TMP/chat.json") || true
[[ $out == ok ]] && echo "ok: streamed chat chunks carry the same logprobs" || fail "chat stream logprobs: $out"

# logprobs without alternatives.
status=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":3,"logprobs":true}')
out=$(check "$TMP/resp" 'lp = j["choices"][0]["logprobs"]["content"]; assert len(lp) >= 1 and all(e["top_logprobs"] == [] for e in lp), lp; print("ok")') || true
[[ $status == 200 && $out == ok ]] && echo "ok: logprobs true alone: no alternatives" || fail "no top: $status $out"
status=$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":3}')
out=$(check "$TMP/resp" 'assert j["choices"][0]["logprobs"] is None; print("ok")') || true
[[ $status == 200 && $out == ok ]] && echo "ok: no logprobs asked: null" || fail "off: $status $out"

# --- Completions: parallel lists, text_offset, alternatives as a dict. ---
comp="{\"prompt\":\"$P\",\"max_tokens\":10,\"temperature\":0,\"ignore_eos\":true,\"logprobs\":3"
status=$(post /v1/completions "$comp}")
[[ $status == 200 ]] || fail "completion logprobs: $status $(cat "$TMP/resp")"
cp "$TMP/resp" "$TMP/comp.json"
out=$(check "$TMP/comp.json" '
c = j["choices"][0]; lp = c["logprobs"]
assert set(lp) == {"tokens", "token_logprobs", "top_logprobs", "text_offset"}, lp
n = j["usage"]["completion_tokens"]
assert n == 10 and all(len(lp[k]) == n for k in lp), lp
for t, v, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"]):
    assert isinstance(top, dict) and 1 <= len(top) <= 3, top
    assert v <= 0 and v == max(top.values()) and top.get(t) == v, (t, v, top)
off = lp["text_offset"]
assert off[0] == 0 and all(a <= b for a, b in zip(off, off[1:])), off
print("ok")') || true
[[ $out == ok ]] && echo "ok: completion logprobs: tokens, token_logprobs, top_logprobs, text_offset" || fail "completion shape: $out"
curl -s -N -m 60 "$U/v1/completions" -d "$comp,\"stream\":true}" > "$TMP/comp.sse" || fail "completion stream: curl failed"
sse_logprobs "$TMP/comp.sse" > "$TMP/comp_sse.json" || fail "completion stream: no JSON"
out=$(check "$TMP/comp_sse.json" '
whole = json.load(open(sys.argv[2]))["choices"][0]["logprobs"]
assert j == whole, (j, whole)
print("ok")' "$TMP/comp.json") || true
[[ $out == ok ]] && echo "ok: streamed completion chunks carry the same logprobs" || fail "completion stream logprobs: $out"

# --- echo: the prompt, then the completion. ---
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":6,\"temperature\":0,\"ignore_eos\":true}")
plain=$(check "$TMP/resp" 'print(json.dumps(j["choices"][0]["text"]))')
status=$(post /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":6,\"temperature\":0,\"ignore_eos\":true,\"echo\":true}")
echoed=$(check "$TMP/resp" 'print(json.dumps(j["choices"][0]["text"]))')
[[ $status == 200 && $echoed == $(python3 -c 'import json,sys; print(json.dumps(sys.argv[1] + json.loads(sys.argv[2])))' "$P" "$plain") ]] &&
  echo "ok: echo returns the prompt + completion: $echoed" || fail "echo: $status $echoed vs $plain"
curl -s -N -m 60 "$U/v1/completions" -d "{\"prompt\":\"$P\",\"max_tokens\":6,\"temperature\":0,\"ignore_eos\":true,\"echo\":true,\"stream\":true}" > "$TMP/echo.sse" ||
  fail "echo stream: curl failed"
streamed=$(python3 -c '
import json, sys
out = ""
for l in open(sys.argv[1]).read().split("\n"):
    if l.startswith("data: {"):
        for c in json.loads(l[6:])["choices"]: out += c["text"]
print(json.dumps(out))' "$TMP/echo.sse")
[[ $streamed == "$echoed" ]] && echo "ok: streamed echo" || fail "streamed echo: $streamed vs $echoed"

# --- Out of range: a 400 naming the field. ---
bad() {  # bad PATH BODY PARAM WORDS
  status=$(post "$1" "$2")
  local got
  got=$(check "$TMP/resp" 'print(j["error"]["param"]); print(j["error"]["message"])') || true
  [[ $status == 400 && $(head -1 <<<"$got") == "$3" && $got == *"$4"* ]] &&
    echo "ok: $3 -> 400: $(tail -1 <<<"$got")" || fail "$2: $status $got"
}
msgs='"messages":[{"role":"user","content":"x"}]'
bad /v1/chat/completions "{$msgs,\"logprobs\":true,\"top_logprobs\":21}" top_logprobs "'top_logprobs' must be in [0, 20], got 21"
bad /v1/chat/completions "{$msgs,\"top_logprobs\":2}" top_logprobs "'top_logprobs' needs \"logprobs\": true"
bad /v1/chat/completions "{$msgs,\"logprobs\":3}" logprobs "'logprobs' must be a boolean"
bad /v1/completions '{"prompt":"x","logprobs":6}' logprobs "'logprobs' must be in [0, 5], got 6"
bad /v1/completions '{"prompt":"x","logprobs":-1}' logprobs "'logprobs' must be in [0, 5], got -1"
bad /v1/completions '{"prompt":"x","logprobs":true}' logprobs "'logprobs' must be an integer (0..5 alternatives)"
bad /v1/completions '{"prompt":"x","echo":true,"logprobs":2}' echo "'echo' with 'logprobs' is not supported"
stop_server
finish
