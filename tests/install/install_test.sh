# The installed package, as an app sees it: `cmake --install` into a
# temporary prefix puts the tool, headers, libchorus.so (SONAME, only the
# public API exported) and libchorus.a, chorus.pc and the CMake package;
# examples/generate.c builds against it with pkg-config (shared and static)
# and with CMake (find_package(chorus)), and each build prints what
# `chorus run` prints for the same greedy request.
#   bash tests/install/install_test.sh BUILD_DIR SOURCE_DIR [EXTRA_CFLAGS]
# EXTRA_CFLAGS: what a program needs to link the library of a sanitizer build.
BUILD="$1"; SRC_DIR="$2"; EXTRA="${3:-}"
set -- "$BUILD/chorus" "$SRC_DIR"
source "$SRC_DIR/tests/cli/lib.sh"
read -r -a extra <<<"$EXTRA"
for tool in cc pkg-config readelf nm c++filt; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

P="$TMP/prefix"
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log"
lib=$(find "$P" -name libchorus.so -printf '%h\n' | head -n 1)
for f in bin/chorus include/chorus/chorus.h include/chorus/chorus_c.h include/chorus/error.h \
         share/chorus/python/chorus/__init__.py; do
  [[ -e "$P/$f" ]] && echo "ok: installed $f" || fail "not installed: $f"
done
for f in libchorus.so libchorus.so.0 libchorus.a pkgconfig/chorus.pc cmake/chorus/chorusConfig.cmake; do
  [[ -n "$lib" && -e "$lib/$f" ]] && echo "ok: installed $f" || fail "not installed: $f (in '$lib')"
done
[[ -n "$lib" ]] || { finish; exit 1; }

soname=$(readelf -d "$lib/libchorus.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$soname" == libchorus.so.0 ]] && echo "ok: SONAME $soname" || fail "SONAME '$soname'"
# Every exported symbol is the public API: chorus_* (C) or in namespace
# chorus (C++: Runtime, to_string, Error).
nm -D --defined-only "$lib/libchorus.so" | awk '$2 ~ /[TDBRVWiu]/ { print $3 }' >"$TMP/exports"
grep -v '^chorus_' "$TMP/exports" | c++filt | grep -v -E '^(typeinfo for |typeinfo name for |vtable for )?chorus::' |
  grep -v -E '^(_init|_fini|CHORUS_[0-9.]*)$' >"$TMP/stray" || true
[[ ! -s "$TMP/stray" ]] && echo "ok: $(wc -l <"$TMP/exports") exported symbols, all public API" ||
  fail "exported beyond the public API: $(head -n 20 "$TMP/stray" | xargs)"
for sym in chorus_generate chorus_cancel chorus_tokenize chorus_runtime_get_info; do
  grep -qx "$sym" "$TMP/exports" && echo "ok: exports $sym" || fail "does not export $sym"
done
c++filt <"$TMP/exports" >"$TMP/exports.cc"
grep -q '^chorus::Runtime::generate(' "$TMP/exports.cc" && echo "ok: exports chorus::Runtime" ||
  fail "does not export chorus::Runtime::generate"

# A C++ program on the public headers alone catches chorus::Error.
cat >"$TMP/error.cc" <<'CC'
#include <chorus/chorus.h>
#include <cstdio>
int main() {
  try {
    chorus::Runtime rt("/nonexistent/model.gguf");
  } catch (const chorus::Error& e) {
    std::printf("caught chorus::Error: %s\n", e.what());
    return 0;
  }
  return 1;
}
CC
export PKG_CONFIG_PATH="$lib/pkgconfig"
c++ -std=c++20 "${extra[@]}" "$TMP/error.cc" -o "$TMP/error" $(pkg-config --cflags --libs chorus) -Wl,-rpath,"$lib"
out=$("$TMP/error") && [[ "$out" == *"/nonexistent/model.gguf"* ]] && echo "ok: $out" || fail "C++ error: $out"

M="$SRC/models/stories260K.gguf"
want=$("$P/bin/chorus" run -m "$M" -p "Once upon a time" -n 40 --temp 0 -c 512 2>/dev/null)
[[ "$want" == "Once upon a time"* ]] || fail "installed chorus run: $want"

check_example() {  # check_example NAME BINARY
  local out
  out=$("$2" "$M" "Once upon a time" 40 2>"$TMP/$1.err")
  [[ "$out" == "$want" ]] && echo "ok: $1 prints what chorus run prints" || fail "$1: '$out', want '$want'"
  grep -q "kernels " "$TMP/$1.err" && echo "ok: $1: $(head -n 1 "$TMP/$1.err")" || fail "$1: $(cat "$TMP/$1.err")"
}

cc "${extra[@]}" "$SRC/examples/generate.c" -o "$TMP/generate-shared" \
  $(pkg-config --cflags --libs chorus) -Wl,-rpath,"$lib"
readelf -d "$TMP/generate-shared" | grep -q 'NEEDED.*libchorus.so.0' && echo "ok: linked to libchorus.so.0" ||
  fail "generate-shared does not need libchorus.so.0"
check_example generate-shared "$TMP/generate-shared"

# libchorus.a: -lchorus would pick the .so, so name the archive.
static_libs=$(pkg-config --static --libs chorus | sed 's/-lchorus\b/-l:libchorus.a/')
cc "${extra[@]}" "$SRC/examples/generate.c" -o "$TMP/generate-static" $(pkg-config --cflags chorus) $static_libs
! readelf -d "$TMP/generate-static" | grep -q 'libchorus' && echo "ok: linked statically" ||
  fail "generate-static needs libchorus.so"
check_example generate-static "$TMP/generate-static"

cmake -S "$SRC/examples" -B "$TMP/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$P" \
  -DCMAKE_C_FLAGS="$EXTRA" -DCMAKE_EXE_LINKER_FLAGS="$EXTRA" >"$TMP/cmake.log"
cmake --build "$TMP/cmake-build" >>"$TMP/cmake.log"
check_example generate-cmake "$TMP/cmake-build/generate"

# Bad input from the example: a clear error and exit status 1.
expect_error "example with a missing model" "/nonexistent/model.gguf" "$TMP/generate-shared" /nonexistent/model.gguf "x"
finish
