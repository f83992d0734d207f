// Token sampling from logits, in llama.cpp's order: repetition penalty ->
// top-k -> top-p -> min-p -> temperature -> seeded draw. Temperature 0 is
// greedy (argmax after the penalty).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace chorus {

struct SamplerParams {
  float temperature = 0.8f;     // 0 = greedy
  int top_k = 40;               // 0 = off
  float top_p = 0.95f;          // in (0, 1]; 1 = off
  float min_p = 0.05f;          // in [0, 1]; 0 = off
  float repeat_penalty = 1.0f;  // > 0; 1 = off
  int repeat_last_n = 64;       // tokens of history penalized; 0 = off, -1 = all
  uint64_t seed = 0;            // same seed + same inputs = same tokens
};

// Throws Error naming the option ("temperature", "top_p", ...) when a value
// is out of range.
void validate(const SamplerParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);  // validates

  // Picks the next token from `logits` (n_vocab floats). `history` is the
  // context so far (prompt + generated) for the repetition penalty.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // Restarts the random sequence.
  void reseed(uint64_t seed) { rng_.seed(seed); }
  const SamplerParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  void apply_penalty(std::span<const int32_t> history);
  void softmax_candidates(std::vector<float>& probs) const;
  double uniform();  // in [0, 1), independent of the standard library's distributions

  SamplerParams params_;
  std::mt19937_64 rng_;
  std::vector<Candidate> cand_;  // reused between calls
  std::vector<float> probs_;
  std::vector<int32_t> window_;
};

}  // namespace chorus
