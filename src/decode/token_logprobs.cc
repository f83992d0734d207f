// Log-softmax of one logits row; see token_logprobs.h.
#include "decode/token_logprobs.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace chorus {

void token_logprobs(std::span<const float> logits, int32_t id, int n, TokenLogprobs* out) {
  // log p(i) = x_i - max - log(sum_j exp(x_j - max)), the sum in double in
  // index order so the result depends on the row only.
  float max = -INFINITY;
  for (float v : logits) max = std::max(max, v);
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  const double log_z = static_cast<double>(max) + std::log(sum);
  auto logprob = [&](int32_t i) { return static_cast<float>(logits[i] - log_z); };

  out->id = id;
  out->logprob = logprob(id);
  const size_t k = std::min(static_cast<size_t>(std::max(n, 0)), logits.size());
  out->top_ids.resize(logits.size());
  std::iota(out->top_ids.begin(), out->top_ids.end(), 0);
  auto before = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(out->top_ids.begin(), out->top_ids.begin() + k, out->top_ids.end(), before);
  out->top_ids.resize(k);
  out->top_logprobs.resize(k);
  for (size_t t = 0; t < k; ++t) out->top_logprobs[t] = logprob(out->top_ids[t]);
}

}  // namespace chorus
