# chorus bench: a tiny run on stories260K prints the table and the JSON with
# every test and positive speeds, the step-cost-by-rows table and the
# read-bandwidth probe (their presence and form: timings are not checked);
# bad options are reported errors.
source "$(dirname "$0")/lib.sh"
M="$SRC/models/stories260K.gguf"
ARGS=(-m "$M" -p 32 -n 16 -r 1 --streams 2 --bandwidth-mib 32)

status=0
out=$(timeout 60 "$CHORUS" bench "${ARGS[@]}" 2>&1) || status=$?
[[ $status -eq 0 ]] || fail "bench table run: exit status $status: $out"
[[ "$out" == *"| model | size | params | backend | threads | test | t/s |"* ]] && echo "ok: table header" \
  || fail "table header missing: $out"
for t in "pp32" "tg16" "tg16 x2 streams"; do
  line=$(grep -F "| $t |" <<<"$out" || true)  # a missing row fails below
  tps=$(echo "$line" | awk -F'|' '{print $8}' | awk '{print $1}')
  if [[ -n "$tps" ]] && awk -v v="$tps" 'BEGIN{exit !(v > 0)}'; then
    echo "ok: table $t $tps t/s"
  else
    fail "table row '$t' lacks a positive t/s: $line"
  fi
done
[[ "$out" == *"peak RSS"* && "$out" == *"packed weights"* && "$out" == *"f16 KV"* ]] && echo "ok: summary line" \
  || fail "summary line missing: $out"
grep -qF "| rows per step | 1 | 2 | 4 | 8 | 16 | 32 |" <<<"$out" && echo "ok: step cost header" \
  || fail "step cost header missing: $out"
grep -qE '^\| ms per step \|( [0-9]+\.[0-9]{3} \|){6}$' <<<"$out" && echo "ok: step cost ms row" \
  || fail "step cost ms row missing: $out"
grep -qE '^\| step cost / 1-row step \| 1\.00 \|( [0-9]+\.[0-9]{2} \|){5}$' <<<"$out" && echo "ok: step cost ratio row" \
  || fail "step cost ratio row missing: $out"
grep -qE '^read bandwidth [0-9.]+ GB/s \(32 MiB, 2 threads\) \| decode \(tg16\) reads [0-9.]+ MiB per token, [0-9.]+ GB/s = [0-9]+% of it$' \
  <<<"$out" && echo "ok: bandwidth line" || fail "bandwidth line missing: $out"

status=0
json=$(timeout 60 "$CHORUS" bench "${ARGS[@]}" --json -o "$TMP/bench.json" 2>"$TMP/err") || status=$?
[[ $status -eq 0 ]] || fail "bench --json: exit status $status: $(tail -5 "$TMP/err")"
cmp -s <(echo "$json") "$TMP/bench.json" && echo "ok: -o writes the printed JSON" || fail "-o file differs from --json output"
# No JSON parser is assumed: check each test object for its name and a
# positive tokens_per_s with plain text tools.
flat=$(echo "$json" | tr -d '\n ')
for t in "pp32" "tg16" "tg16x2streams"; do
  obj=$(grep -o '{[^{}]*"test":"'"$t"'"[^{}]*}' <<<"$flat" || true)  # a missing test fails below
  tps=$(echo "$obj" | sed -n 's/.*"tokens_per_s":\([0-9.eE+-]*\).*/\1/p')
  if [[ -n "$tps" ]] && awk -v v="$tps" 'BEGIN{exit !(v > 0)}'; then
    echo "ok: json $t $tps t/s"
  else
    fail "json test '$t' lacks a positive tokens_per_s: $obj"
  fi
done
for key in '"peak_rss_bytes":' '"kv_bytes":' '"kv_type":"f16"' '"packed_weight_bytes":' '"load_s":' \
  '"step_cost":{' '"rows":32' '"read_bandwidth":{' '"decode_share":'; do
  [[ "$flat" == *"$key"* ]] && echo "ok: json has $key" || fail "json lacks $key"
done

expect_error "bench -t 0" "thread count" "$CHORUS" bench -m "$M" -t 0
expect_error "bench -p 0" "prompt length" "$CHORUS" bench -m "$M" -p 0
expect_error "bench -p beyond context" "exceeds the model's context" "$CHORUS" bench -m "$M" -p 100000
expect_error "bench -r 0" "repetitions" "$CHORUS" bench -m "$M" -r 0
expect_error "bench --streams 65" "stream counts" "$CHORUS" bench -m "$M" --streams 65
expect_error "bench --weights bad" "--weights" "$CHORUS" bench -m "$M" --weights q3
expect_error "bench --kv-type bad" "--kv-type: unknown KV cache type" "$CHORUS" bench -m "$M" --kv-type q8
expect_error "bench --bandwidth-mib -1" "--bandwidth-mib: must be 0..65536" "$CHORUS" bench -m "$M" --bandwidth-mib -1

status=0
out=$(timeout 60 "$CHORUS" bench -m "$M" -p 16 -n 8 -r 1 --streams 0 --bandwidth-mib 0 --kv-type f32 2>&1) || status=$?
[[ $status -eq 0 ]] || fail "bench --kv-type f32: exit status $status: $out"
[[ "$out" == *"f32 KV"* && "$out" != *"read bandwidth"* ]] && echo "ok: --kv-type f32, --bandwidth-mib 0 skips the probe" \
  || fail "bench --kv-type f32 --bandwidth-mib 0: $out"
expect_error "bench missing model" "stories-missing.gguf" "$CHORUS" bench -m "$TMP/stories-missing.gguf"
expect_usage_error "bench without -m" "--model is required" "$CHORUS" bench
finish
