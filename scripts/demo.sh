#!/usr/bin/env bash
# Installs what is missing, builds chorus and runs its main job on the
# bundled stories260K model: several styles (LoRA adapters) decoded in one
# pass over a shared prompt, with DS2D speculative decoding on.
#   scripts/demo.sh                      builds in build/
#   BUILD_DIR=DIR scripts/demo.sh        builds in DIR instead
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
bash scripts/build.sh "$build"
chorus=./$build/chorus
model=models/stories260K.gguf

# The style adapters bundled in models/adapters (dog, sad, bird: made by
# scripts/train_adapters.sh from the model's own stories, models/adapters/README.md).
# DS2D gets the base model's forecast file and, per adapter, NAME.forecast.gguf
# when present (tied to the adapter named NAME; it brings its own forecast LoRA,
# NAME.forecast-lora.gguf).
loras=() styles=() forecasts=(--ds2d-forecast models/stories260K.forecast-lora.gguf)
for f in models/adapters/*.gguf; do
  [[ -e "$f" ]] || continue
  case "$f" in *.forecast*.gguf) continue ;; esac
  name=$(basename "$f" .gguf)
  loras+=(--lora "$name=$f")
  styles+=("$name")
  [[ -e "models/adapters/$name.forecast.gguf" ]] && forecasts+=(--ds2d-forecast "models/adapters/$name.forecast.gguf")
done
if [[ ${#styles[@]} -eq 0 ]]; then
  # No bundled adapters: random ones, so the mechanics still show.
  mkdir -p "$build/demo-adapters"
  for name in alpha beta gamma; do
    "$chorus" synth --lora "$build/demo-adapters/$name.gguf" -m "$model" --rank 8 --alpha 16 \
      --seed "${#styles[@]}" >/dev/null
    loras+=(--lora "$name=$build/demo-adapters/$name.gguf")
    styles+=("$name")
  done
fi
style_list=$(IFS=,; echo "${styles[*]}")

set -x
"$chorus" info "$model"
# Every style from one shared prompt, all streams in the same forward passes,
# DS2D drafting and verifying token trees (output identical to plain decoding).
# On a model this small a step's cost grows with every row, so DS2D's own
# cost model would draft nothing; --ds2d-row-cost 0 makes it draft anyway, to
# show the trees and their acceptance.
"$chorus" run -m "$model" -p "Once upon a time" -n 80 --temp 0 \
  "${loras[@]}" --styles "$style_list" --ds2d "${forecasts[@]}" --ds2d-row-cost 0
# Smart replies: the three most likely first tokens, decoded together.
"$chorus" run -m "$model" -p "Lily and Ben went to the park" -n 40 --temp 0 --streams 3 --ds2d \
  --ds2d-forecast models/stories260K.forecast-lora.gguf --ds2d-row-cost 0
