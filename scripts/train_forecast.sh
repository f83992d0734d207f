#!/usr/bin/env bash
# Trains DS2D forecast embeddings with PyTorch from Debian (train/README.md).
#   scripts/train_forecast.sh                 the shipped stories260K files
#   scripts/train_forecast.sh ARGS...         train/forecast_train.py ARGS...
# Installs python3-torch and python3-numpy when /usr/bin/python3 lacks them,
# and an optimized BLAS when only the reference one is present (PyTorch from
# Debian calls the system BLAS; the reference one makes training ~10x slower).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/torch_deps.sh train_forecast  # sets PY

if (($#)); then exec "$PY" train/forecast_train.py "$@"; fi

# The shipped files: embeddings only (the fixed format), and embeddings with
# a rank-8 LoRA for the forecast rows (the format's optional extension).
# About 6 minutes each on one core of a quiet machine.
common=(-m models/stories260K.gguf --count 6 --steps 800 --train-seqs 320 --seed 1 --threads 1
        --eval-prompts tests/data/ds2d_prompts.txt)
"$PY" train/forecast_train.py "${common[@]}" -o models/stories260K.forecast.gguf
"$PY" train/forecast_train.py "${common[@]}" --lora-rank 8 -o models/stories260K.forecast-lora.gguf \
  --lora-output models/stories260K.forecast-lora.adapter.gguf
