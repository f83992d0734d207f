# Cross build for 64-bit ARM Linux (phones, ARM servers) with Debian's cross
# compiler (g++-aarch64-linux-gnu) and multiarch arm64 libraries
# (dpkg --add-architecture arm64; apt-get install libfmt-dev:arm64 ...).
# Test binaries run under qemu user-mode emulation with every optional
# instruction (dotprod, i8mm, fp16) present. scripts/test_arm64.sh sets it all up:
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCHORUS_KERNELS_ONLY=ON
#   cmake -S . -B build-arm64-lib -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCHORUS_LIBRARY_ONLY=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Host programs come from the host; headers, libraries and CMake package
# files only from the target's multiarch directories (find_package looks in
# /usr/lib/aarch64-linux-gnu/cmake through CMAKE_LIBRARY_ARCHITECTURE).
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# How CMake (gtest_discover_tests, ctest) runs target binaries on this host.
find_program(CHORUS_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(CHORUS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CHORUS_QEMU_AARCH64};-cpu;max")
endif()
