// Sampler stages on crafted logits.
#include "decode/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "util/error.h"

namespace chorus {
namespace {

SamplerParams plain(float temperature, uint64_t seed = 1) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::set<int32_t> drawn(Sampler& s, const std::vector<float>& logits, int n = 2000) {
  std::set<int32_t> seen;
  for (int i = 0; i < n; ++i) seen.insert(s.sample(logits, {}));
  return seen;
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(plain(0.0f));
  const std::vector<float> logits = {0.1f, 2.5f, -1.0f, 2.4f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits, {}), 1);
  // Ties go to the lowest id.
  EXPECT_EQ(s.sample(std::vector<float>{3, 5, 5}, {}), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  const std::vector<float> logits = logits_for({0.1, 0.2, 0.3, 0.25, 0.15});
  Sampler a(plain(1.0f, 42)), b(plain(1.0f, 42)), c(plain(1.0f, 43));
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a.sample(logits, {}));
    sb.push_back(b.sample(logits, {}));
    sc.push_back(c.sample(logits, {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  a.reseed(42);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(a.sample(logits, {}), sa[i]);
}

// Pearson's chi-square of `n` draws against the distribution `probs`, and
// its critical value at p = 0.001 for len(probs) - 1 degrees of freedom
// (Wilson-Hilferty).
struct Fit {
  double x2, crit;
};
Fit fit(Sampler& s, const std::vector<float>& logits, const std::vector<double>& probs, int n) {
  std::vector<int> count(probs.size(), 0);
  for (int i = 0; i < n; ++i) ++count.at(s.sample(logits, {}));
  double x2 = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double want = n * probs[i];
    x2 += (count[i] - want) * (count[i] - want) / want;
  }
  const double k = static_cast<double>(probs.size()) - 1;
  const double z = 3.09;  // one-sided p = 0.001
  return {x2, k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3)};
}

// softmax(logits / temperature).
std::vector<double> tempered(const std::vector<float>& logits, double temperature) {
  std::vector<double> p;
  double sum = 0;
  for (float l : logits) sum += p.emplace_back(std::exp(l / temperature));
  for (double& q : p) q /= sum;
  return p;
}

// The draws follow softmax(logits / T) closely enough that the same check
// fails a sampler whose temperature is 10% off.
TEST(Sampler, DrawFollowsProbabilities) {
  const std::vector<float> logits = logits_for({0.3, 0.22, 0.17, 0.13, 0.1, 0.08});
  constexpr int n = 100000;
  for (float t : {0.7f, 1.0f, 1.5f}) {
    SCOPED_TRACE(t);
    const std::vector<double> want = tempered(logits, t);
    for (uint64_t seed : {7, 8}) {
      Sampler right(plain(t, seed));
      const Fit f = fit(right, logits, want, n);
      EXPECT_LT(f.x2, f.crit) << "seed " << seed;
      for (float wrong : {0.9f * t, 1.1f * t}) {
        Sampler s(plain(wrong, seed));
        const Fit w = fit(s, logits, want, n);
        EXPECT_GT(w.x2, w.crit) << "a sampler at " << wrong << " passes, seed " << seed;
      }
    }
  }
}

TEST(Sampler, TopKOneIsGreedy) {
  SamplerParams p = plain(1.5f, 3);
  p.top_k = 1;
  Sampler s(p);
  const std::vector<float> logits = {0.3f, 0.1f, 0.29f, -2.0f};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(logits, {}), 0);
}

TEST(Sampler, TopKKeepsKBest) {
  SamplerParams p = plain(1.0f);
  p.top_k = 2;
  Sampler s(p);
  EXPECT_EQ(drawn(s, logits_for({0.3, 0.1, 0.35, 0.25})), (std::set<int32_t>{0, 2}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegative) {
  SamplerParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  Sampler s(p);
  // 3.0 / 2 = 1.5 < 2.0: the repeated token loses.
  const std::vector<float> logits = {3.0f, 2.0f, -1.0f};
  const std::vector<int32_t> history = {0, 0};
  EXPECT_EQ(s.sample(logits, {}), 0);
  EXPECT_EQ(s.sample(logits, history), 1);
  // Outside the window of the last 2 tokens: no penalty.
  const std::vector<int32_t> old = {0, 2, 2};
  EXPECT_EQ(s.sample(logits, old), 0);
  // Negative logits are pushed further down: -1 * 2 = -2 < -1.5.
  const std::vector<float> neg = {-1.0f, -1.5f};
  const std::vector<int32_t> h0 = {0};
  EXPECT_EQ(s.sample(neg, h0), 1);

  // repeat_last_n = -1 looks at the whole history.
  p.repeat_last_n = -1;
  Sampler all(p);
  EXPECT_EQ(all.sample(logits, old), 1);
}

TEST(Sampler, TopPCutsTheTail) {
  // Sorted probs 0.5, 0.3, 0.15, 0.05: cumulative 0.5, 0.8, 0.95, 1.0.
  const std::vector<float> logits = logits_for({0.15, 0.5, 0.05, 0.3});
  SamplerParams p = plain(1.0f);
  p.top_p = 0.75f;
  Sampler s(p);
  EXPECT_EQ(drawn(s, logits), (std::set<int32_t>{1, 3}));
  p.top_p = 0.9f;
  Sampler s2(p);
  EXPECT_EQ(drawn(s2, logits), (std::set<int32_t>{0, 1, 3}));
  p.top_p = 0.4f;  // the best token alone already reaches it
  Sampler s3(p);
  EXPECT_EQ(drawn(s3, logits), (std::set<int32_t>{1}));
}

TEST(Sampler, MinPCutsRelativeToBest) {
  // p_max = 0.5: min_p 0.25 keeps p >= 0.125.
  const std::vector<float> logits = logits_for({0.15, 0.5, 0.05, 0.3});
  SamplerParams p = plain(1.0f);
  p.min_p = 0.25f;
  Sampler s(p);
  EXPECT_EQ(drawn(s, logits), (std::set<int32_t>{0, 1, 3}));
  p.min_p = 0.7f;  // keeps p >= 0.35
  Sampler s2(p);
  EXPECT_EQ(drawn(s2, logits), (std::set<int32_t>{1}));
}

TEST(Sampler, LowTemperatureSharpens) {
  const std::vector<float> logits = logits_for({0.4, 0.35, 0.25});
  Sampler s(plain(0.05f, 9));
  std::map<int32_t, int> count;
  for (int i = 0; i < 1000; ++i) ++count[s.sample(logits, {})];
  EXPECT_GT(count[0], 900);
}

TEST(Sampler, BadParamsNameTheOption) {
  auto message = [](SamplerParams p) -> std::string {
    try {
      Sampler s(p);
    } catch (const Error& e) {
      return e.where();
    }
    return "";
  };
  SamplerParams p;
  p.temperature = -0.1f;
  EXPECT_EQ(message(p), "temperature");
  p = {};
  p.temperature = NAN;
  EXPECT_EQ(message(p), "temperature");
  p = {};
  p.top_p = 0.0f;
  EXPECT_EQ(message(p), "top_p");
  p.top_p = 1.1f;
  EXPECT_EQ(message(p), "top_p");
  p = {};
  p.top_k = -1;
  EXPECT_EQ(message(p), "top_k");
  p = {};
  p.min_p = 1.5f;
  EXPECT_EQ(message(p), "min_p");
  p = {};
  p.repeat_penalty = 0.0f;
  EXPECT_EQ(message(p), "repeat_penalty");
  p = {};
  p.repeat_last_n = -2;
  EXPECT_EQ(message(p), "repeat_last_n");
  EXPECT_EQ(message(SamplerParams{}), "");

  Sampler ok(SamplerParams{});
  EXPECT_THROW(ok.sample({}, {}), Error);
}

}  // namespace
}  // namespace chorus
