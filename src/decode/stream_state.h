// One decoding stream as the decode loops see it, after its prompt is in the
// KV cache. The multi-stream scheduler (multi_stream.h) prefills and forks
// streams, then hands them to a decode loop: plain (one row per stream and
// step) or DS2D (a token tree per stream and step). Both loops share this
// state and the rules for stopping, so they are interchangeable and their
// greedy outputs must be identical.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "decode/generate.h"
#include "decode/sampler.h"
#include "decode/token_logprobs.h"
#include "model/tokenizer.h"

namespace chorus {

struct StreamState {
  int stream = 0;      // engine stream id
  int adapter = -1;    // engine adapter slot bound to every row of the stream, or -1
  int32_t pos = 0;     // cells of the stream in the cache = position of the next row
  // The token to feed next: sampled from the last logits, already reported
  // through the callback, not yet in the cache.
  int32_t next = -1;
  Sampler* sampler = nullptr;     // the stream's own (own seed)
  std::vector<int32_t> history;   // prompt + generated, for repetition penalties
  int n_generated = 0;            // tokens reported through the callback
  bool done = false;
  StopReason stop_reason = StopReason::kLength;
  // With DecodeLimits::top_logprobs >= 0: the last accepted token's
  // log-probabilities, filled before the token is reported.
  TokenLogprobs logprobs;
};

struct DecodeLimits {
  int n_predict = 128;      // per stream, counting the first token
  bool ignore_eos = false;
  // Its end-of-generation tokens (Tokenizer::is_eog) end a stream unless
  // ignore_eos; null: no token does.
  const Tokenizer* tokenizer = nullptr;
  // >= 0: every accepted token's log-probability and this many most likely
  // alternatives land in StreamState::logprobs (token_logprobs.h); -1: off,
  // and the accept path computes nothing and allocates nothing.
  int top_logprobs = -1;
};

// Called once per accepted token of a stream (index into the span given to
// the loop), in order; returns false to stop that stream (e.g. a stop string
// was completed). The loop marks streams done on length and on
// end-of-generation tokens (never passed on unless ignore_eos).
using OnStreamToken = std::function<bool(int stream_index, int32_t id)>;

}  // namespace chorus
