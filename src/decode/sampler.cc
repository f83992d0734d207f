// Sampler implementation; see sampler.h for the order of the stages.
#include "decode/sampler.h"

#include <algorithm>
#include <cmath>

#include "util/error.h"

namespace chorus {

void validate(const SamplerParams& p) {
  check(std::isfinite(p.temperature) && p.temperature >= 0, "temperature",
        "must be >= 0 (0 = greedy), got {}", p.temperature);
  check(p.top_k >= 0, "top_k", "must be >= 0 (0 = off), got {}", p.top_k);
  check(p.top_p > 0 && p.top_p <= 1, "top_p", "must be in (0, 1], got {}", p.top_p);
  check(p.min_p >= 0 && p.min_p <= 1, "min_p", "must be in [0, 1], got {}", p.min_p);
  check(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0, "repeat_penalty",
        "must be > 0 (1 = off), got {}", p.repeat_penalty);
  check(p.repeat_last_n >= -1, "repeat_last_n", "must be >= -1 (-1 = all, 0 = off), got {}",
        p.repeat_last_n);
}

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  validate(params_);
  // The penalty's window fills up over the first tokens: sized once here
  // (up to a bound; a longer one grows by doubling in apply_penalty), so
  // sampling allocates nothing once the first call has sized the rest.
  constexpr int kWindowReserve = 4096;
  if (params_.repeat_last_n > 0) {
    window_.reserve(static_cast<size_t>(std::min(params_.repeat_last_n, kWindowReserve)));
  }
}

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

void Sampler::apply_penalty(std::span<const int32_t> history) {
  const SamplerParams& p = params_;
  if (p.repeat_penalty == 1.0f || p.repeat_last_n == 0 || history.empty()) return;
  const size_t n = p.repeat_last_n < 0
                       ? history.size()
                       : std::min(history.size(), static_cast<size_t>(p.repeat_last_n));
  // cand_ is still indexed by token id here. Each distinct token is
  // penalized once, however often it repeats (llama.cpp's rule).
  std::vector<int32_t>& window = window_;
  // With the whole history (repeat_last_n = -1) the window keeps growing:
  // by doubling, not by the one token assign() would reallocate for.
  if (window.capacity() < n) window.reserve(std::max(n, 2 * window.capacity()));
  window.assign(history.end() - n, history.end());
  std::sort(window.begin(), window.end());
  window.erase(std::unique(window.begin(), window.end()), window.end());
  for (int32_t id : window) {
    if (id < 0 || id >= static_cast<int32_t>(cand_.size())) continue;
    float& logit = cand_[id].logit;
    logit = logit <= 0 ? logit * p.repeat_penalty : logit / p.repeat_penalty;
  }
}

void Sampler::softmax_candidates(std::vector<float>& probs) const {
  // cand_ is sorted by logit, highest first.
  probs.resize(cand_.size());
  const float max_logit = cand_[0].logit;
  double sum = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    probs[i] = std::exp(cand_[i].logit - max_logit);
    sum += probs[i];
  }
  for (float& q : probs) q = static_cast<float>(q / sum);
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  check(!logits.empty(), "sampler", "no logits to sample from");
  const SamplerParams& p = params_;
  cand_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    cand_[i] = {static_cast<int32_t>(i), logits[i]};
  }
  apply_penalty(history);

  if (p.temperature == 0.0f) {  // greedy: the first of the highest logits
    size_t best = 0;
    for (size_t i = 1; i < cand_.size(); ++i) {
      if (cand_[i].logit > cand_[best].logit) best = i;
    }
    return cand_[best].id;
  }

  // Highest logit first; equal logits by id, so ties never depend on the sort.
  auto higher = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < cand_.size()) {
    std::partial_sort(cand_.begin(), cand_.begin() + p.top_k, cand_.end(), higher);
    cand_.resize(p.top_k);
  } else {
    std::sort(cand_.begin(), cand_.end(), higher);
  }

  if (p.top_p < 1.0f) {  // smallest prefix whose probability reaches top_p
    softmax_candidates(probs_);
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += probs_[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
  }

  if (p.min_p > 0.0f) {  // p >= min_p * p_max, compared as logits
    const float cutoff = cand_[0].logit + std::log(p.min_p);
    size_t keep = 1;
    while (keep < cand_.size() && cand_[keep].logit >= cutoff) ++keep;
    cand_.resize(keep);
  }

  for (Candidate& c : cand_) c.logit /= p.temperature;
  softmax_candidates(probs_);
  const double r = uniform();
  double cum = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    cum += probs_[i];
    if (r < cum) return cand_[i].id;
  }
  return cand_.back().id;  // r landed in the rounding slack above the last sum
}

}  // namespace chorus
