# The forecast-embedding trainer (train/forecast_train.py): a few steps on
# stories260K write a forecast GGUF whose header and tensor the C++ side
# reads; the same seed gives the same file; bad input fails in one line.
# Skipped when Debian's Python has no PyTorch: exit 77, which ctest reports
# as "Not Run" (SKIP_RETURN_CODE in CMakeLists.txt), never as a pass.
# scripts/test.sh installs python3-torch and python3-numpy.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! [[ -x $PY ]] || ! "$PY" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIP: $PY cannot import torch and numpy (apt-get install python3-torch python3-numpy," \
       "or run scripts/test.sh, which installs them)"
  exit 77
fi
TRAIN="$SRC/train/forecast_train.py"
MODEL="$SRC/models/stories260K.gguf"
small=(--count 3 --steps 3 --train-seqs 4 --eval-seqs 2 --seq-len 48 --eval-every 2 --quiet)

# Reads a forecast GGUF independently of train/gguf_io.py and prints
# "key=value" lines for the metadata and "tensor=NAME dims=D0,D1 type=T
# aligned=0|1 size_ok=0|1 finite=0|1".
check_py='
import struct, sys, math
buf = open(sys.argv[1], "rb").read()
assert buf[:4] == b"GGUF", "magic"
ver, nt, nkv = struct.unpack_from("<IQQ", buf, 4); pos = 24
print("version=%d" % ver)
def s():
    global pos
    n, = struct.unpack_from("<Q", buf, pos); pos += 8
    v = buf[pos:pos + n].decode(); pos += n; return v
fmt = {4: "<I", 5: "<i", 6: "<f", 10: "<Q"}
align = 32
for _ in range(nkv):
    k = s(); t, = struct.unpack_from("<I", buf, pos); pos += 4
    if t == 8: v = s()
    else: v, = struct.unpack_from(fmt[t], buf, pos); pos += struct.calcsize(fmt[t])
    if k == "general.alignment": align = v
    print("%s=%s:%s" % (k, {8: "str", 4: "u32"}.get(t, t), v))
infos = []
for _ in range(nt):
    name = s(); nd, = struct.unpack_from("<I", buf, pos); pos += 4
    dims = struct.unpack_from("<%dQ" % nd, buf, pos); pos += 8 * nd
    t, off = struct.unpack_from("<IQ", buf, pos); pos += 12
    infos.append((name, dims, t, off))
data = (pos + align - 1) // align * align
for name, dims, t, off in infos:
    n = dims[0] * dims[1]
    vals = struct.unpack_from("<%df" % n, buf, data + off)
    print("tensor=%s dims=%s type=%d aligned=%d size_ok=%d finite=%d" % (
        name, ",".join(map(str, dims)), t, (data + off) % 32 == 0,
        len(buf) >= data + off + 4 * n and len(buf) - (data + off + 4 * n) < 32,
        all(math.isfinite(x) for x in vals)))
'

status=0
out=$(timeout 300 "$PY" "$TRAIN" -m "$MODEL" -o "$TMP/a.gguf" "${small[@]}" --seed 5 2>&1) || status=$?
if [[ $status -eq 0 && -s "$TMP/a.gguf" ]]; then echo "ok: trained a few steps"; else fail "training: status $status: $out"; fi
[[ "$out" == *"expected tau"* ]] && echo "ok: acceptance table printed" || fail "no acceptance table: $out"
hdr=$("$PY" -c "$check_py" "$TMP/a.gguf" 2>&1)
for want in "version=3" "general.architecture=str:chorus-forecast" "general.type=str:forecast" \
            "chorus.forecast.count=u32:3" "chorus.forecast.dim=u32:64" \
            "chorus.forecast.base.n_layers=u32:5" "chorus.forecast.base.n_vocab=u32:512" \
            "chorus.forecast.base.fingerprint=str:411bf9c8787bfab5" "chorus.forecast.adapter=str:" \
            "chorus.forecast.method=str:trained" \
            "tensor=forecast.embd dims=64,3 type=0 aligned=1 size_ok=1 finite=1"; do
  grep -qxF -- "$want" <<<"$hdr" && echo "ok: $want" || fail "header lacks '$want': $hdr"
done
[[ $(grep -c '^tensor=' <<<"$hdr") -eq 1 ]] && echo "ok: one tensor" || fail "tensors: $hdr"

# The engine's own reader accepts it (and checks the fingerprint).
echo "Tom had a red kite." >"$TMP/prompt.txt"
out=$(timeout 120 "$CHORUS" forecast eval -m "$MODEL" --forecast "$TMP/a.gguf" -n 8 -r 1 \
      --prompts "$TMP/prompt.txt" 2>&1) \
  && echo "ok: chorus forecast eval reads the file" || fail "chorus forecast eval: $out"

timeout 300 "$PY" "$TRAIN" -m "$MODEL" -o "$TMP/b.gguf" "${small[@]}" --seed 5 >/dev/null 2>&1
cmp -s "$TMP/a.gguf" "$TMP/b.gguf" && echo "ok: same seed, same file" || fail "same seed gave different files"

# A forecast LoRA is a GGUF LoRA the engine loads.
out=$(timeout 300 "$PY" "$TRAIN" -m "$MODEL" -o "$TMP/l.gguf" "${small[@]}" --lora-rank 2 2>&1) \
  && [[ -s "$TMP/l.lora.gguf" ]] && echo "ok: forecast LoRA written" || fail "--lora-rank: $out"
hdr=$("$PY" -c "$check_py" "$TMP/l.gguf" 2>&1)  # (no pipe into grep -q: pipefail + SIGPIPE)
grep -qxF "chorus.forecast.lora=str:l.lora.gguf" <<<"$hdr" && grep -qxF "chorus.forecast.method=str:trained-lora" <<<"$hdr" \
  && echo "ok: forecast file names its LoRA" || fail "no chorus.forecast.lora key: $hdr"
out=$("$CHORUS" run -m "$MODEL" --lora f="$TMP/l.lora.gguf" --adapter f -p "" -n 4 --temp 0 2>&1 >/dev/null) \
  && echo "ok: chorus loads the forecast LoRA" || fail "chorus cannot load $TMP/l.lora.gguf: $out"

# Bad input: one line on stderr, exit 1 (bad file) or 2 (bad option).
expect_fail() {  # expect_fail STATUS "what" "fragment" args...
  local want="$1" what="$2" fragment="$3"; shift 3
  local err status=0
  err=$(timeout 120 "$PY" "$TRAIN" "$@" 2>&1 >/dev/null) || status=$?
  if [[ $status -ne $want ]]; then fail "$what: status $status, want $want ($err)"; return; fi
  if [[ "$err" != *"$fragment"* || $(wc -l <<<"$err") -ne 1 ]]; then fail "$what: stderr '$err'"; return; fi
  echo "ok: $what -> $err"
}
expect_fail 1 "missing model" "no such model file" -m "$TMP/none.gguf" -o "$TMP/x.gguf"
expect_fail 1 "not a GGUF" "not a GGUF file" -m "$SRC/tests/data/stories.txt" -o "$TMP/x.gguf"
expect_fail 1 "foreign GGUF" "general.architecture" -m "$TMP/a.gguf" -o "$TMP/x.gguf"
expect_fail 1 "missing adapter" "no such adapter" -m "$MODEL" -o "$TMP/x.gguf" --adapter "$TMP/none"
expect_fail 1 "model as adapter" "not a GGUF LoRA adapter" -m "$MODEL" -o "$TMP/x.gguf" --adapter "$MODEL"
expect_fail 2 "zero count" "--count" -m "$MODEL" -o "$TMP/x.gguf" --count 0
expect_fail 2 "bad number" "--steps" -m "$MODEL" -o "$TMP/x.gguf" --steps many
expect_fail 2 "unknown option" "unrecognized" -m "$MODEL" -o "$TMP/x.gguf" --frobnicate
expect_fail 2 "no output" "-o/--output" -m "$MODEL"
[[ ! -e "$TMP/x.gguf" ]] && echo "ok: no output after errors" || fail "an error left $TMP/x.gguf"
finish
