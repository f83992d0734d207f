// The plain multi-stream decode loop: every step feeds one row per live
// stream (its `next` token), so k streams advance together in one forward
// pass and the weights are read once per step for all of them.
#pragma once

#include <span>

#include "decode/stream_state.h"
#include "engine/engine.h"

namespace chorus {

// Decodes until every stream is done (length, end of generation, or
// on_token returned false). Streams already done are left alone; a stream
// that finishes drops out of the next step without touching the others.
// Steps hold at most engine.options().max_rows rows, so more live streams
// than that take several steps per token. Throws what Engine::step throws.
void decode_plain(Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
                  const OnStreamToken& on_token);

}  // namespace chorus
