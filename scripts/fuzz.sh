#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
bash scripts/deps.sh --fuzz
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
      -DCHORUS_FUZZ=ON -DCHORUS_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target all
for f in fuzz/*_fuzz.cc; do
  name=$(basename "$f" .cc)
  corpus="fuzz/corpus/${name%_fuzz}"
  work=$(mktemp -d)
  [[ -d "$corpus" ]] && cp -r "$corpus"/. "$work"/
  echo "fuzzing $name for ${secs}s"
  ./build-fuzz/"$name" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" 2>&1 | tail -n 12
  rm -rf "$work"
done
