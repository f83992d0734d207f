// The multi-stream scheduler: k variants of one prompt decoded together.
//
// A request is a shared prompt plus k streams, each with its own adapter
// slot, prompt suffix (e.g. a style instruction), sampler seed and
// first-token rule. The scheduler
//   1. prefills the shared prompt ONCE per distinct adapter (an adapter
//      changes K/V, so streams only share prompt cells with streams of the
//      same adapter), all groups batched into the same steps;
//   2. forks each group's prompt cells to the group's other streams
//      (KvCache::fork_stream: mask bits, no copy);
//   3. prefills every stream's suffix, again batched across streams;
//   4. picks each stream's first token and hands the streams to a decode
//      loop (decode_plain, or DS2D), which advances all live streams in
//      one step each.
// Every check runs before the first step, so bad input changes nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "decode/decode_plain.h"
#include "decode/stream_state.h"
#include "engine/engine.h"

namespace chorus {

struct StreamSpec {
  int adapter = -1;             // loaded engine adapter slot, or -1 for the base model
  std::vector<int32_t> suffix;  // tokens after the shared prompt (may be empty)
  SamplerParams sampler;        // its own seed, temperature, ...
  // >= 0: the first token is the first_token_rank-th most likely one
  // (0 = argmax; ties go to the lower id), the smart-reply way to make k
  // distinct replies; the sampler picks every later token. -1: sampled too.
  int first_token_rank = -1;
};

struct MultiStreamRequest {
  std::vector<int32_t> prompt;  // the shared prefix, at least one token (usually BOS first)
  std::vector<StreamSpec> streams;
  // n_predict and ignore_eos apply to every stream; `tokenizer` supplies
  // the end-of-generation tokens. Stop strings are text, not tokens: the
  // public API applies them (src/api/stop_matcher.h) through on_token.
  DecodeLimits limits;
  // With limits.top_logprobs >= 0: each reported token's log-probabilities,
  // right before on_token sees the token (run_streams).
  std::function<void(int stream_index, const TokenLogprobs&)> on_logprobs;
};

struct StreamOutcome {
  std::vector<int32_t> tokens;  // reported tokens (no end-of-generation token)
  StopReason stop_reason = StopReason::kLength;
  int n_prompt = 0;  // shared prompt + own suffix
  // Seconds since the request started until the stream's first and last
  // reported token (0 when it reported none).
  double first_token_seconds = 0;
  double last_token_seconds = 0;
};

struct MultiStreamStats {
  int n_streams = 0;
  int n_prompt = 0;       // shared prompt tokens
  int prompt_groups = 0;  // distinct adapters: how often the prompt was prefilled
  int prefill_rows = 0;   // prompt rows of all groups + suffix rows of all streams
  int prefill_steps = 0;
  int n_generated = 0;        // over all streams
  double prompt_seconds = 0;  // prefill of the shared prompt (all groups)
  double suffix_seconds = 0;  // forks + suffixes + first tokens
  double decode_seconds = 0;  // the decode loop
  double total_seconds = 0;
  int kv_cells_used = 0;  // the cache's own count when decoding ended
  size_t kv_bytes_used = 0;
};

struct MultiStreamResult {
  std::vector<StreamOutcome> streams;  // in request order
  MultiStreamStats stats;
};

// The decode loop run after the prompts: decode_plain, or one with the
// same contract (stream_state.h), e.g. DS2D.
using DecodeLoop =
    std::function<void(Engine&, std::span<StreamState>, const DecodeLimits&, const OnStreamToken&)>;

// Throws Error, naming the field, when the request cannot run on `engine`:
// no streams or more than engine.options().max_streams, an empty prompt,
// token ids outside the vocabulary, an adapter slot not loaded, a bad
// sampler or rank, or positions / cells
// the context cannot hold (prompt + suffix + n_predict per stream; cells
// for the prompt per adapter group + every suffix + k x n_predict).
void validate_request(const Engine& engine, const MultiStreamRequest& request);
// The same checks except the room left in the cache: what a request needs
// of any engine built with these options and adapters. Reads no KV state,
// so it may run beside a step on another thread.
void validate_request_shape(const Engine& engine, const MultiStreamRequest& request);

// Runs the request on engine streams 0..k-1 (stream i = request stream i),
// whose cells are released first; other streams are left alone and keep
// their cells. The streams' cells stay in the cache afterwards (the stats
// count them) until the next request or clear_stream. on_token gets each
// reported token with the stream's index; returning false stops that
// stream. Throws Error from validate_request before any work.
MultiStreamResult run_streams(Engine& engine, const MultiStreamRequest& request,
                              const OnStreamToken& on_token, const DecodeLoop& loop = decode_plain);

}  // namespace chorus
