# Sourced by the peer benchmarks (bench/peer.sh, bench/lookup_peer.sh): the
# llama.cpp they compare against, from the npm package node-llama-cpp (which
# carries the matching llama.cpp source as a git bundle), cloned and built in
# the cache folder $PEER_DIR, never copied into this repository. The caller
# defines PEER_DIR and log().

NODE_LLAMA_CPP_VERSION=3.22.1
LLAMA_SRC=$PEER_DIR/llama.cpp
LLAMA_BIN=$LLAMA_SRC/build/bin

apt_install() {
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  command -v apt-get >/dev/null || { log "need $* (no apt-get here: install them by hand)"; exit 1; }
  log "installing with apt-get: $*"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

# build_llama LOG TARGET...: npm install and clone when missing, configure
# once (every caller uses this configuration, so they share one build
# folder), then build the targets, logging to $PEER_DIR/LOG.
build_llama() {
  local build_log=$PEER_DIR/$1
  shift
  mkdir -p "$PEER_DIR"
  local bundle=$PEER_DIR/node_modules/node-llama-cpp/llama/gitRelease.bundle
  if [[ ! -d $LLAMA_SRC/.git && ! -f $bundle ]]; then
    local need=()
    command -v npm >/dev/null || need+=(npm)
    command -v git >/dev/null || need+=(git)
    [[ ${#need[@]} -eq 0 ]] || apt_install "${need[@]}"
    log "npm install --ignore-scripts node-llama-cpp@$NODE_LLAMA_CPP_VERSION in $PEER_DIR"
    (cd "$PEER_DIR" && npm install --ignore-scripts --no-audit --no-fund \
      "node-llama-cpp@$NODE_LLAMA_CPP_VERSION" >"$PEER_DIR/npm.log" 2>&1) ||
      { log "npm install failed, see $PEER_DIR/npm.log"; exit 1; }
  fi
  if [[ ! -d $LLAMA_SRC/.git ]]; then
    rm -rf "$LLAMA_SRC"
    log "cloning llama.cpp from the package's git bundle"
    git clone -q "$bundle" "$LLAMA_SRC" || { log "git clone of $bundle failed"; exit 1; }
  fi
  if [[ ! -f $LLAMA_SRC/build/CMakeCache.txt ]]; then
    local need=()
    command -v cmake >/dev/null || need+=(cmake)
    command -v c++ >/dev/null || need+=(build-essential)
    [[ ${#need[@]} -eq 0 ]] || apt_install "${need[@]}"
    cmake -S "$LLAMA_SRC" -B "$LLAMA_SRC/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
      -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF >"$PEER_DIR/cmake.log" 2>&1 ||
      { log "cmake configure failed, see $PEER_DIR/cmake.log"; exit 1; }
  fi
  log "building $* (10+ minutes from scratch on 2 cores; log in $build_log)"
  cmake --build "$LLAMA_SRC/build" --config Release -j"${JOBS:-$(nproc)}" --target "$@" >"$build_log" 2>&1 ||
    { log "llama.cpp build failed, see $build_log"; exit 1; }
}
