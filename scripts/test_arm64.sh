#!/usr/bin/env bash
# Builds the kernels layer and its tests for 64-bit ARM (aarch64) with
# Debian's cross compiler and runs them under qemu user-mode emulation:
# on an emulated CPU with every extension (`-cpu max`: NEON dotprod, i8mm,
# fp16), so all three kernel tables (generic, neon_dotprod, neon_i8mm) are
# tested, then again with CHORUS_ISA set to each table. CPUs with fewer
# extensions must offer fewer tables: cortex-a76 (dotprod, no i8mm)
# generic and neon_dotprod, cortex-a57 (neither) only generic.
# Then builds libchorus.so for ARM64 (without the tool and the server:
# -DCHORUS_LIBRARY_ONLY=ON), checks its SONAME, and runs the C API test
# (tests/c_api/c_api_test.c, linked against the library: the 100 reference
# ids, adapters, streams, DS2D, cancellation, error messages) under qemu on
# `-cpu max`, where the library picks the neon_i8mm table.
#   scripts/test_arm64.sh            build in build-arm64/ (kernels) and
#                                    build-arm64-lib/ (library), and test
# Installs what is missing from Debian 12 (as root or with sudo): the cross
# compiler, qemu-user, nlohmann-json, and the arm64 builds of GoogleTest,
# fmt, Highway and ICU (multiarch: dpkg --add-architecture arm64).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-arm64
start=$SECONDS
step() { echo "== arm64: $* ($((SECONDS - start)) s)" >&2; }

SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

step "checking packages"
host_pkgs=(cmake ninja-build g++-aarch64-linux-gnu qemu-user nlohmann-json3-dev)
arm_pkgs=(libgtest-dev:arm64 libgmock-dev:arm64 libfmt-dev:arm64 libhwy-dev:arm64 libicu-dev:arm64)
missing=()
for p in "${host_pkgs[@]}"; do
  if [[ $p == qemu-user ]] && { command -v qemu-aarch64 || command -v qemu-aarch64-static; } >/dev/null; then continue; fi
  installed "$p" || missing+=("$p")
done
for p in "${arm_pkgs[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]})); then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    step "adding the arm64 architecture to dpkg"
    $SUDO dpkg --add-architecture arm64
  fi
  step "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)

step "configuring $dir (cmake/aarch64-linux-gnu.cmake, CHORUS_KERNELS_ONLY=ON)"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
# Paths under the checkout are hashed relative to it, so another clone of
# the same tree (a CI checkout) reuses the compiler cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DCHORUS_KERNELS_ONLY=ON \
  "${launcher[@]}" >/dev/null

step "building chorus_kernels_test"
jobs=$(nproc); ((jobs > 2)) && jobs=2
cmake --build "$dir" --target chorus_kernels_test -j"$jobs"

test_bin="$dir/chorus_kernels_test"
if command -v file >/dev/null && ! file -b "$test_bin" | grep -q aarch64; then
  echo "not an aarch64 binary: $test_bin" >&2; exit 1
fi
# The parameterized tests are named after the tables the CPU offers.
tables() { "$qemu" -cpu "$1" "$test_bin" --gtest_list_tests | sed -n 's|^  QuantizeActivations/\([a-z_0-9]*\).*|\1|p' | xargs; }
for cpu_tables in "max:generic neon_dotprod neon_i8mm" "cortex-a76:generic neon_dotprod" "cortex-a57:generic"; do
  cpu=${cpu_tables%%:*} want=${cpu_tables#*:}
  got=$(tables "$cpu")
  step "kernel tables on qemu -cpu $cpu: $got"
  if [[ "$got" != "$want" ]]; then
    echo "arm64: expected the tables '$want' on -cpu $cpu, got '$got'" >&2; exit 1
  fi
done

step "running chorus_kernels_test under qemu-aarch64 -cpu max (tables generic, neon_dotprod and neon_i8mm)"
"$qemu" -cpu max "$test_bin" --gtest_brief=1

for isa in neon_i8mm neon_dotprod generic; do
  step "running chorus_kernels_test under qemu-aarch64 -cpu max with CHORUS_ISA=$isa"
  CHORUS_ISA=$isa "$qemu" -cpu max "$test_bin" --gtest_brief=1
done

# The shared library: every layer but the tool and the server, in its own
# build folder so the kernel build above stays free of ICU and JSON.
lib_dir=build-arm64-lib
step "configuring $lib_dir (cmake/aarch64-linux-gnu.cmake, CHORUS_LIBRARY_ONLY=ON)"
cmake -S . -B "$lib_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" -DCHORUS_LIBRARY_ONLY=ON \
  "${launcher[@]}" >/dev/null

step "building chorus_shared (libchorus.so) and chorus_c_api_test"
cmake --build "$lib_dir" --target chorus_shared chorus_c_api_test -j"$jobs"

lib="$lib_dir/libchorus.so"
machine=$(readelf -h "$lib" | sed -n 's/^ *Machine: *//p')
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
step "libchorus.so: machine '$machine', SONAME '$soname'"
if [[ $machine != AArch64 || $soname != libchorus.so.0 ]]; then
  echo "arm64: expected an AArch64 libchorus.so with SONAME libchorus.so.0, got '$machine' and '$soname'" >&2; exit 1
fi

# The test finds libchorus.so through the build folder's RUNPATH and the
# arm64 libraries (ICU, fmt, Highway) in their multiarch directories.
step "running chorus_c_api_test under qemu-aarch64 -cpu max"
c_api_log="$lib_dir/c_api_test.log"
status=0
"$qemu" -cpu max "$lib_dir/chorus_c_api_test" "$PWD" >"$c_api_log" 2>&1 || status=$?
cat "$c_api_log"
if ((status != 0)); then
  echo "arm64: chorus_c_api_test failed (exit status $status)" >&2; exit 1
fi
# The library must have run the widest table, not fallen back to generic.
if ! grep -qx "c_api: kernels neon_i8mm" "$c_api_log"; then
  echo "arm64: chorus_c_api_test did not run the neon_i8mm table on -cpu max" >&2; exit 1
fi

step "done"
