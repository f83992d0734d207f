# The committed chat-template vectors (tests/data/chat_templates/expected.json,
# which chorus_chat_test compares with the C++ formatter byte for byte) are
# what Python's jinja2 renders today from the template files beside them.
# Skipped (exit 77, "Not Run" in ctest) when Debian's python3-jinja2 is missing.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! [[ -x $PY ]] || ! "$PY" -c "import jinja2" 2>/dev/null; then
  echo "SKIP: $PY cannot import jinja2 (apt-get install python3-jinja2)"
  exit 77
fi
out=$("$PY" "$SRC/tests/data/chat_templates/render.py" --check)
[[ "$out" == "expected.json is current ("*" cases, jinja2 "* ]] || fail "render.py --check said: $out"
echo "ok: $out"

# The check fails on a stale file: render into a copy with one case changed.
cp -r "$SRC/tests/data/chat_templates" "$TMP/vectors"
sed -i '0,/"expected": "<|im_start|>user\\nHello<|im_end|>/s//"expected": "<|im_start|>user\\nHullo<|im_end|>/' \
  "$TMP/vectors/expected.json"
cmp -s "$TMP/vectors/expected.json" "$SRC/tests/data/chat_templates/expected.json" && fail "the copy was not changed"
status=0
out=$("$PY" "$TMP/vectors/render.py" --check) || status=$?
[[ $status -eq 1 && "$out" == *"expected.json is out of date"* ]] || fail "stale vectors: status $status: $out"
echo "ok: a stale file is found (status $status)"
finish
