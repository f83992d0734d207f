#!/usr/bin/env bash
# Trains the bundled style adapters models/adapters/{dog,sad,bird}.gguf and
# their DS2D forecast files with PyTorch from Debian (train/README.md, "Style
# adapters"; models/adapters/README.md).
#   scripts/train_adapters.sh              the bundled files
#   scripts/train_adapters.sh ARGS...      train/lora_train.py ARGS...
# Fixed seeds and one torch thread: the same machine writes the same files.
# On the shared 2-core machine: about 2 minutes for the pool of base-model
# stories, 6-8 minutes per style (training and its evaluation), then about 9
# minutes per forecast file (FORECAST=0 skips those); 50 minutes in all.
# Installs python3-torch and python3-numpy when /usr/bin/python3 lacks them,
# and an optimized BLAS when only the reference one is present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch_deps.sh train_adapters  # sets PY

if (($#)); then exec "$PY" train/lora_train.py "$@"; fi

STYLES=(dog sad bird)
MODEL=models/stories260K.gguf
OUT=models/adapters
tmp=$(mktemp -d "${TMPDIR:-/tmp}/chorus-adapters.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
common=(-m "$MODEL" --out-dir "$OUT" --seed 1 --threads 1 --pool-cache "$tmp/pool.npz")

# The pool of base-model stories (seed 1), written once to a cache and shared
# by every style; --survey prints how often each style's keywords occur in it.
# Then one run per style: rank 8, 3 filter-and-train rounds, f16 GGUF.
"$PY" train/lora_train.py "${common[@]}" --survey
for s in "${STYLES[@]}"; do
  "$PY" train/lora_train.py "${common[@]}" --styles "$s" --quiet
done

# Per-adapter DS2D forecasts: the settings of the base model's
# models/stories260K.forecast-lora.gguf (scripts/train_forecast.sh) with the
# style adapter active while the model writes and is distilled. NAME.forecast.gguf
# names the adapter "NAME" (chorus gives it to streams bound to --lora NAME=...)
# and its companion NAME.forecast-lora.gguf holds the style adapter and a rank-8
# forecast LoRA side by side (rank 16, f16), used by forecast rows only.
if [[ ${FORECAST:-1} != 0 ]]; then
  for s in "${STYLES[@]}"; do
    "$PY" train/forecast_train.py -m "$MODEL" --adapter "$OUT/$s.gguf" -o "$OUT/$s.forecast.gguf" \
      --lora-output "$OUT/$s.forecast-lora.gguf" --lora-rank 8 --lora-type f16 \
      --count 6 --steps 800 --train-seqs 320 --seed 1 --threads 1 --eval-prompts tests/data/ds2d_prompts.txt --quiet
  done
fi
