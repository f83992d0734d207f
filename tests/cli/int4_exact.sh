# Exactness on a 4-bit file, through the command line and the server: on
# stories260K rewritten by `chorus quantize --type q4_0`, greedy, 200 tokens,
# 1 and 2 threads:
#  - `--ds2d` (trained forecasts with their LoRA, full budget) equals plain decoding;
#  - stream 0 of `--streams 4` equals the prompt run alone;
#  - each stream of `--styles dog,sad,bird` equals `--adapter NAME` alone;
#  - the server's greedy completions (one choice, n = 3, an adapter) equal
#    `chorus run`'s texts.
# Every command's exit status is checked.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
A="$SRC/models/adapters"
Q="$TMP/stories260K-q4_0.gguf"
FORECAST=(--ds2d --ds2d-forecast "$SRC/models/stories260K.forecast-lora.gguf" --ds2d-row-cost 0)
STYLES=(--lora "dog=$A/dog.gguf" --lora "sad=$A/sad.gguf" --lora "bird=$A/bird.gguf")
PROMPTS=("Ben found a shiny stone" "Mia saw a big dog" "Once upon a time" "Tom had a red kite")

if ! "$CHORUS" quantize "$M" "$Q" --type q4_0 2>"$TMP/quantize.err"; then
  fail "chorus quantize: $(cat "$TMP/quantize.err")"
  finish
fi

# run_json OUT ARGS...: `chorus run --json` on the Q4_0 file, greedy, 200
# tokens; fails the check (and returns 1) when it exits non-zero.
run_json() {
  local out="$1" status=0; shift
  "$CHORUS" run -m "$Q" -n 200 --temp 0 --ignore-eos --json "$@" >"$out" 2>"$TMP/run.err" || status=$?
  if ((status != 0)); then
    fail "chorus run $*: exit status $status ($(tail -n 3 "$TMP/run.err"))"
    return 1
  fi
}
# field FILE EXPR: a Python expression of the parsed JSON j, e.g. the ids of stream 1.
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
IDS='j["tokens"] if "tokens" in j else None'
STREAM='j["streams"][int(sys.argv[2])]["tokens"]'
stream_ids() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($STREAM)" "$1" "$2"; }

for t in 1 2; do
  for p in "${PROMPTS[@]}"; do
    what="'$p', $t thread(s)"
    run_json "$TMP/plain.json" -t "$t" -p "$p" || continue
    plain=$(field "$TMP/plain.json" "$IDS")
    [[ $(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['tokens']))" "$TMP/plain.json") == 200 ]] ||
      fail "$what: plain decoding did not give 200 tokens"
    if run_json "$TMP/ds2d.json" -t "$t" -p "$p" "${FORECAST[@]}"; then
      [[ $(field "$TMP/ds2d.json" "$IDS") == "$plain" ]] && echo "ok: $what: --ds2d equals plain decoding" ||
        fail "$what: --ds2d differs from plain decoding"
    fi
    if run_json "$TMP/streams.json" -t "$t" -p "$p" --streams 4; then
      [[ $(stream_ids "$TMP/streams.json" 0) == "$plain" ]] && echo "ok: $what: stream 0 of --streams 4 equals the run alone" ||
        fail "$what: stream 0 of --streams 4 differs from the run alone"
    fi
  done
  for p in "${PROMPTS[@]:0:2}"; do
    what="'$p', $t thread(s)"
    run_json "$TMP/styles.json" -t "$t" -p "$p" "${STYLES[@]}" --styles dog,sad,bird || continue
    i=0
    for s in dog sad bird; do
      if run_json "$TMP/alone.json" -t "$t" -p "$p" "${STYLES[@]}" --adapter "$s"; then
        [[ $(stream_ids "$TMP/styles.json" $i) == "$(field "$TMP/alone.json" "$IDS")" ]] &&
          echo "ok: $what: --styles stream $s equals --adapter $s alone" ||
          fail "$what: --styles stream $s differs from --adapter $s alone"
      fi
      i=$((i + 1))
    done
  done
done

# The server on the same file: greedy answers equal `chorus run`'s text.
start_server -m "$Q" --lora "dog=$A/dog.gguf" --max-streams 4 || finish
# completion BODY: the texts of the answer's choices, one per line (JSON strings).
completion() {
  local status
  status=$(curl -s -m 120 -o "$TMP/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
    "$U/v1/completions" -d "$1" || true)  # a failed connection shows as status 000
  [[ $status == 200 ]] || { fail "POST /v1/completions $1: HTTP $status $(cat "$TMP/resp")"; return 1; }
  python3 -c 'import json,sys; [print(json.dumps(c["text"])) for c in sorted(json.load(open(sys.argv[1]))["choices"], key=lambda c: c["index"])]' "$TMP/resp"
}
# text_of FILE: the text of a `chorus run --json` as a JSON string.
text_of() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["text"]))' "$1"; }
for p in "${PROMPTS[@]:0:2}"; do
  body="{\"prompt\": \"$p\", \"max_tokens\": 200, \"temperature\": 0, \"ignore_eos\": true"
  run_json "$TMP/text.json" -p "$p" || continue
  want=$(text_of "$TMP/text.json")
  [[ $(completion "$body}") == "$want" ]] && echo "ok: server '$p' equals chorus run" ||
    fail "server '$p' differs from chorus run"
  choices=$(completion "$body, \"n\": 3}") || { fail "server '$p', n = 3"; continue; }
  [[ $(wc -l <<<"$choices") == 3 && "${choices%%$'\n'*}" == "$want" ]] && echo "ok: server '$p', n = 3: choice 0 equals chorus run" ||
    fail "server '$p', n = 3: choice 0 differs from chorus run"
  run_json "$TMP/text.json" -p "$p" --lora "dog=$A/dog.gguf" --adapter dog || continue
  want=$(text_of "$TMP/text.json")
  [[ $(completion "$body, \"model\": \"dog\"}") == "$want" ]] && echo "ok: server '$p', model dog equals chorus run --adapter dog" ||
    fail "server '$p', model dog differs from chorus run --adapter dog"
done
stop_server
finish
