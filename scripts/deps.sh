#!/usr/bin/env bash
# Installs the Debian 12 packages chorus builds with, when any is missing.
set -euo pipefail
pkgs=(g++ cmake ninja-build ccache pkg-config libhwy-dev libfmt-dev libcli11-dev
      nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libicu-dev
      libcpp-httplib-dev curl)
if [[ "${1:-}" == "--fuzz" ]]; then pkgs+=(clang libclang-rt-14-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "chorus: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
