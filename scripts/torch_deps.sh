# Sourced by the training scripts (scripts/train_forecast.sh,
# scripts/train_adapters.sh) and by scripts/test.sh (for the trainer's
# test): sets PY to Debian's Python (python3-torch installs for it, not for
# pyenv's) and installs python3-torch and python3-numpy when it lacks them,
# and an optimized BLAS when only the reference one is present (PyTorch from
# Debian calls the system BLAS; the reference one makes training ~10x
# slower). $1 names the caller in messages.
PY=/usr/bin/python3
torch_pkgs=()
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then torch_pkgs+=(python3-torch python3-numpy); fi
if ! dpkg-query -W -f='${Status}\n' 'libopenblas0*' 2>/dev/null | grep -q "install ok installed"; then
  torch_pkgs+=(libopenblas0-serial)
fi
if ((${#torch_pkgs[@]})); then
  echo "${1:-chorus}: installing ${torch_pkgs[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${torch_pkgs[@]}" >/dev/null
fi
