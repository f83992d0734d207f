// KV room: what a request of k streams needs from the engine's cache, in
// positions and in cells, written once for every caller (the multi-stream
// run, the scheduler's admission, the Runtime's "fill the context" and the
// tools' early checks).
//
// A request is a shared prompt plus k streams, each with an optional suffix
// and up to n_predict new tokens. The prompt is stored once per distinct
// adapter (an adapter changes K/V; streams of one adapter share the
// prompt's cells), every suffix and every stream's tokens have their own
// cells. Positions count along one stream: prompt + its suffix + its tokens
// must stay below the context.
#pragma once

#include <cstdint>

namespace chorus {

struct MultiStreamRequest;

struct KvDemand {
  int64_t prompt = 0;          // shared prompt tokens
  int64_t prompt_copies = 1;   // distinct adapters among the streams
  int64_t streams = 1;         // k
  int64_t suffix_total = 0;    // tokens of all suffixes
  int64_t longest_suffix = 0;  // the longest one
};

// The demand of a multi-stream request (decode/multi_stream.h).
KvDemand kv_demand(const MultiStreamRequest& request);

// Cells for the prompt copies, every suffix and n_predict tokens per stream.
int64_t kv_cells_needed(const KvDemand& d, int64_t n_predict);
// The last position a stream reaches, plus one: prompt + longest suffix +
// n_predict. At most the engine's context.
int64_t kv_positions_needed(const KvDemand& d, int64_t n_predict);
// The most new tokens per stream that fit both `context` positions and
// `cells` free cells; 0 when not even the prompts fit.
int64_t kv_max_new_tokens(const KvDemand& d, int64_t context, int64_t cells);

}  // namespace chorus
