// Log-probabilities of generated tokens under the model's own distribution,
// as OpenAI's `logprobs` reports them: log-softmax of the raw logits row the
// token was chosen from, before the sampler's penalties, top-k/p/min-p cuts
// and temperature (those shape the draw, not the model's distribution).
// Computed from the logits row alone, so a token's values are the same bit
// for bit under plain and DS2D decoding and in any stream (rows are exact).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace chorus {

// The most alternatives a request may ask for (OpenAI's top_logprobs limit).
inline constexpr int kMaxTopLogprobs = 20;

struct TokenLogprobs {
  int32_t id = -1;
  float logprob = 0;
  // The n most likely tokens of the row, most likely first (ties to the
  // lower id), with their log-probabilities.
  std::vector<int32_t> top_ids;
  std::vector<float> top_logprobs;
};

// Fills `out` for token `id` of `logits` (n_vocab raw logits) with the `n`
// most likely alternatives (n >= 0, clamped to the vocabulary size).
void token_logprobs(std::span<const float> logits, int32_t id, int n, TokenLogprobs* out);

}  // namespace chorus
