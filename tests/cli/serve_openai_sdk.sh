# `chorus serve` driven by the official OpenAI Node SDK (the `openai` npm
# package, major version 7): completions, chat, streaming, n > 1, an adapter
# as a model, stop strings, models.list/retrieve and errors, each answer
# checked against what `chorus run` gives for the same greedy request
# (tests/cli/openai_sdk.mjs); then the same SDK with and without the right
# API key. The SDK is installed once into a cache folder outside the
# repository, ${XDG_CACHE_HOME:-~/.cache}/chorus-openai-sdk; without node,
# npm or the registry the test is skipped (exit 77), never passed.
source "$(dirname "$0")/lib.sh"
SDK_MAJOR=7
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/chorus-openai-sdk"
SDK="$CACHE/node_modules/openai"

# sdk_major: the major version of the SDK in the cache, or nothing.
sdk_major() { [[ -f "$SDK/package.json" ]] && node -p 'require(process.argv[1]).version.split(".")[0]' "$SDK/package.json" || true; }
if [[ "$(sdk_major)" != "$SDK_MAJOR" ]]; then
  command -v npm >/dev/null || { echo "SKIP: npm is not installed (needed once to fetch openai@$SDK_MAJOR)"; exit 77; }
  # Installed beside the cache and moved into place whole, so an interrupted
  # or concurrent install never leaves a half-filled cache behind.
  mkdir -p "$(dirname "$CACHE")"
  NEW=$(mktemp -d "$CACHE.new.XXXXXX")
  status=0
  (cd "$NEW" && timeout 300 npm install --no-audit --no-fund --loglevel=error \
     --fetch-retries=1 --fetch-timeout=60000 "openai@$SDK_MAJOR") >"$TMP/npm.log" 2>&1 || status=$?
  if [[ $status -ne 0 ]]; then
    rm -rf "$NEW"
    # No network, no registry: a skip. Any other npm failure is a failure.
    if [[ $status == 124 ]] || grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT|network' "$TMP/npm.log"; then
      echo "SKIP: npm cannot reach the registry to install openai@$SDK_MAJOR: $(grep -m1 -E 'ENOTFOUND|EAI_AGAIN|ECONN|ETIMEDOUT|UNREACH|SOCKET|network' "$TMP/npm.log" || echo "timed out")"
      exit 77
    fi
    fail "npm install openai@$SDK_MAJOR: exit status $status: $(cat "$TMP/npm.log")"
    finish
  fi
  rm -rf "$CACHE"
  mv -T "$NEW" "$CACHE" 2>/dev/null || rm -rf "$NEW"  # another run may have moved its copy in first
fi
version=$(node -p 'require(process.argv[1]).version' "$SDK/package.json")
[[ ${version%%.*} == "$SDK_MAJOR" ]] && echo "ok: OpenAI Node SDK $version in $CACHE" ||
  { fail "the SDK in $CACHE is $version, want $SDK_MAJOR.x"; finish; }

M="$SRC/models/stories260K.gguf"
DOG="$SRC/models/adapters/dog.gguf"
P="Once upon a time"
N=24

# run_json ARGS...: `chorus run --json` for the greedy request, on stdout.
run_json() { "$CHORUS" run -m "$M" --json -n "$N" --temp 0 --ignore-eos "$@" 2>"$TMP/run.err"; }
# field EXPR < JSON: a value of the JSON on stdin (as j), printed by node.
field() { node -e 'const j = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(eval(process.argv[1]))' "$1"; }

# --- The expected texts: `chorus run` on the same greedy requests. ---
base=$(run_json -p "$P" | field 'JSON.stringify(j.text)')
streams2=$(run_json -p "$P" --streams 2 | field 'JSON.stringify(j.streams.map((s) => s.text))')
dog=$(run_json -p "$P" --lora "dog=$DOG" --adapter dog | field 'JSON.stringify(j.text)')
# The server has no chat template, so chat joins the message contents with newlines.
chat_messages='[{"role":"system","content":"Tell a story."},{"role":"user","content":"Once upon a time"}]'
chat=$(run_json -p $'Tell a story.\nOnce upon a time' | field 'JSON.stringify(j.text)')
# The stop string: 4 characters with a space, from the middle of the text,
# where they first occur (so the cut is there).
stop=$(field 'JSON.stringify((() => { const t = j; for (let k = 12; k + 4 < t.length; k++) {
  const s = t.slice(k, k + 4); if (t.indexOf(s) === k && s.trim() === s && s.includes(" ")) return s; } })())' <<<"$base")
[[ "$stop" == \"*\" ]] || fail "no stop string found in $base"
stopped=$(run_json -p "$P" --stop "$(field j <<<"$stop")" | field 'JSON.stringify(j.text)')
for v in base streams2 dog chat stopped; do [[ -n "${!v}" ]] || fail "chorus run gave no $v: $(cat "$TMP/run.err")"; done
cat >"$TMP/expected.json" <<EOF
{"prompt": "$P", "max_tokens": $N, "base": $base, "streams2": $streams2, "dog": $dog,
 "chat_messages": $chat_messages, "chat": $chat, "stop": $stop, "stopped": $stopped}
EOF
echo "ok: expected texts from chorus run (base $base, stop $stop -> $stopped)"

# sdk MODE [KEY]: the SDK checks against the server at $U.
sdk() {
  local status=0
  timeout 300 node "$SRC/tests/cli/openai_sdk.mjs" "$SDK/index.mjs" "$U" "$TMP/expected.json" "$@" || status=$?
  [[ $status == 0 ]] || fail "OpenAI SDK checks ($1): exit status $status"
}

start_server -m "$M" --lora "dog=$DOG" -c 512 || finish
sdk all
stop_server

start_server -m "$M" -c 512 --api-key k || finish
sdk key k
stop_server
finish
