#!/usr/bin/env bash
# Installs what is missing, builds chorus and runs the whole test suite.
#   scripts/test.sh            release build in build/
#   scripts/test.sh --asan     AddressSanitizer + UBSan build in build-asan/
#   scripts/test.sh --tsan     ThreadSanitizer build of the scheduler's tests in build-tsan/
# Besides the build packages (scripts/deps.sh), Debian's python3-torch and
# python3-numpy: tests/cli/train_forecast.sh runs the forecast trainer
# (ctest reports it as not run without them), and python3-jinja2:
# tests/cli/chat_template_vectors.sh re-renders the chat-template vectors.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--tsan" ]]; then
  # Only the scheduler's tests: its thread, the clients' threads and the
  # engine's pool are where threads meet; the rest of the suite is covered
  # by the ASan run.
  bash scripts/deps.sh
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Paths under the checkout are hashed relative to it, so another clone of
  # the same tree (a CI checkout) reuses the compiler cache.
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCHORUS_SANITIZE=thread "${launcher[@]}" >/dev/null
  cmake --build build-tsan -j"$(nproc)" --target chorus_sched_test
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  ctest --test-dir build-tsan -R 'SchedulerTest' --output-on-failure --timeout 600
  exit
fi
source scripts/torch_deps.sh test
if ! /usr/bin/python3 -c "import jinja2" 2>/dev/null; then
  echo "test: installing python3-jinja2" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-jinja2 >/dev/null
fi
dir=build; args=()
if [[ "${1:-}" == "--asan" ]]; then
  dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DCHORUS_SANITIZE=ON)
fi
bash scripts/build.sh "$dir" "${args[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" --timeout 600
