// The accept path; see accept_token.h.
#include "decode/accept_token.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace chorus {

bool accept_token(StreamState& s, int index, int32_t id, std::span<const float> logits,
                  const DecodeLimits& limits, const OnStreamToken& on_token) {
  if (!limits.ignore_eos && limits.tokenizer != nullptr && limits.tokenizer->is_eog(id)) {
    s.done = true;
    s.stop_reason = StopReason::kEndOfGeneration;
    return false;
  }
  if (limits.top_logprobs >= 0) token_logprobs(logits, id, limits.top_logprobs, &s.logprobs);
  s.history.push_back(id);
  s.next = id;
  ++s.n_generated;
  if (!on_token(index, id)) {
    s.done = true;
    s.stop_reason = StopReason::kCallback;
    return false;
  }
  if (s.n_generated >= limits.n_predict) {
    s.done = true;
    s.stop_reason = StopReason::kLength;
    return false;
  }
  return true;
}

int32_t ranked_token(std::span<const float> logits, int rank) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto before = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::nth_element(ids.begin(), ids.begin() + rank, ids.end(), before);
  return ids[rank];
}

bool accept_first_token(StreamState& s, int index, std::span<const float> logits, int rank,
                        const DecodeLimits& limits, const OnStreamToken& on_token) {
  if (limits.n_predict == 0) {
    s.done = true;
    s.stop_reason = StopReason::kLength;
    return false;
  }
  const int32_t id = rank >= 0 ? ranked_token(logits, rank) : s.sampler->sample(logits, s.history);
  return accept_token(s, index, id, logits, limits, on_token);
}

}  // namespace chorus
