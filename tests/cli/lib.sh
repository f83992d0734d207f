# Helpers shared by the command-line tests. Each test script is run by ctest
# as: bash tests/cli/NAME.sh CHORUS_BINARY SOURCE_DIR
#
# Every command's exit status counts: a command that fails outside a
# condition (if, while, &&, ||, !) is a failed check, reported with its line,
# so a crash or a sanitizer's exit (LeakSanitizer exits 23 after the output
# is written) is never missed, pipelines included (pipefail). The script goes
# on, and finish reports the count. -E carries the ERR trap into functions
# and subshells; a failure in a subshell (a command substitution, a part of a
# pipeline) ends it with that status, which the command around it reports.
# A command that is meant to fail is run as `status=0; cmd || status=$?`.
set -Euo pipefail
CHORUS="$1"
SRC="$2"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

on_error() {  # on_error STATUS WHERE COMMAND
  if ((BASH_SUBSHELL > 0)); then exit "$1"; fi
  fail "$2: exit status $1: $3"
}
trap 'on_error $? "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND"' ERR

# expect_error "description" "message fragment" cmd...: the command must exit
# with status 1 (a reported error, not a crash) and say the fragment on stderr.
expect_error() {
  local what="$1" fragment="$2"; shift 2
  local out status=0
  out=$(timeout 60 "$@" 2>&1 >/dev/null) || status=$?
  if [[ $status -ne 1 ]]; then fail "$what: exit status $status, want 1 (stderr: $out)"; return; fi
  if [[ "$out" != *"$fragment"* ]]; then fail "$what: stderr lacks '$fragment': $out"; return; fi
  echo "ok: $what -> $out"
}

# expect_usage_error "description" "message fragment" cmd...: a malformed
# command line exits 2 or more (CLI11's codes), never by a signal, and says
# the fragment on stderr.
expect_usage_error() {
  local what="$1" fragment="$2"; shift 2
  local out status=0
  out=$(timeout 60 "$@" 2>&1 >/dev/null) || status=$?
  if [[ $status -lt 2 || $status -ge 124 ]]; then
    fail "$what: exit status $status, want 2..123 (stderr: $out)"; return
  fi
  if [[ "$out" != *"$fragment"* ]]; then fail "$what: stderr lacks '$fragment': $out"; return; fi
  echo "ok: $what -> status $status: $out"
}

# start_server ARGS...: `chorus serve ARGS --port 0` in the background,
# stderr in $TMP/server.err; waits up to 30 s for /health, then sets
# SERVER_PID and U (its base URL) and returns 0, or records a failure and
# returns 1. The EXIT trap kills a server left running.
SERVER_PID=""
trap '[[ -n "$SERVER_PID" ]] && kill -9 "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
start_server() {
  command -v curl >/dev/null || { fail "curl is not installed (scripts/deps.sh)"; return 1; }
  "$CHORUS" serve "$@" --port 0 2>"$TMP/server.err" &
  SERVER_PID=$!
  local port=""
  for _ in $(seq 1 300); do  # the model loads, then the port is printed
    port=$(grep -o 'on http://127.0.0.1:[0-9]*' "$TMP/server.err" 2>/dev/null | sed 's/.*://' || true)  # not yet
    [[ -n "$port" ]] && curl -s -m 2 "http://127.0.0.1:$port/health" 2>/dev/null | grep -q '"ok"' && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  U="http://127.0.0.1:$port"
  if ! curl -s -m 2 "$U/health" 2>/dev/null | grep -q '{"status":"ok"}'; then
    fail "server did not come up: $(cat "$TMP/server.err")"
    return 1
  fi
  echo "ok: listening on port $port, /health ok"
}

# stop_server: SIGTERM must end the server within 10 s with status 0.
stop_server() {
  kill -TERM "$SERVER_PID"
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "server still running 10 s after SIGTERM"
    return
  fi
  local status=0
  wait "$SERVER_PID" || status=$?
  SERVER_PID=""
  [[ $status == 0 ]] && echo "ok: SIGTERM stops the server (status 0)" ||
    fail "exit status $status after SIGTERM: $(cat "$TMP/server.err")"
}

finish() {
  if [[ $failures -ne 0 ]]; then echo "$failures check(s) failed" >&2; exit 1; fi
  echo "all checks passed"
}
