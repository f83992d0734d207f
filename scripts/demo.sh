#!/usr/bin/env bash
# Installs what is missing, builds chorus and runs it on the bundled
# stories260K model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
set -x
./build/chorus info models/stories260K.gguf
./build/chorus run -m models/stories260K.gguf -p "Once upon a time" -n 120 --temp 0
./build/chorus run -m models/stories260K.bin -p "Lily and Ben went to the park" -n 120 --temp 0.8 --seed 7
