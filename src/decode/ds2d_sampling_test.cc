// The sampling path of DS2D keeps the model's distribution: verification
// samples from each node's exact logits with the stream's own sampler and
// only follows a child equal to the sample. Checked statistically on
// stories260K at temperature 1: the distribution of the token at a fixed
// position over many seeds must match plain sampling's (two-sample
// chi-square), a test shown to have the power to see a small change of
// temperature.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "decode/ds2d_testing.h"

namespace chorus {
namespace {

using namespace ds2d_testing;

constexpr int kStreams = 4;     // seeds per request, decoded together
constexpr int kRequests = 300;  // 1200 samples per distribution
constexpr int kTokens = 6;      // the token at index 5 is compared

SamplerParams sampling(float temperature, uint64_t seed) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.02f;  // the far tail would only thin out the counts
  p.seed = seed;
  return p;
}

struct Samples {
  std::vector<std::vector<int32_t>> runs;  // every stream's tokens
  Ds2dStats stats;
};

Samples sample(Engine& engine, const Model& model, const DecodeLoop& loop, float temperature,
               uint64_t seed0, const std::vector<int32_t>& prompt) {
  Samples out;
  for (int r = 0; r < kRequests; ++r) {
    MultiStreamRequest req;
    req.prompt = prompt;
    req.limits.n_predict = kTokens;
    req.limits.ignore_eos = true;
    req.limits.tokenizer = model.tokenizer.get();
    for (int s = 0; s < kStreams; ++s) {
      StreamSpec spec;
      spec.sampler = sampling(temperature, seed0 + static_cast<uint64_t>(r * kStreams + s));
      req.streams.push_back(spec);
    }
    const Outcome o = run(engine, req, loop);
    out.runs.insert(out.runs.end(), o.tokens.begin(), o.tokens.end());
  }
  return out;
}

// Two-sample chi-square statistic of the token at `index` (equal sample
// sizes), categories with fewer than 10 samples in both together pooled;
// and the critical value at p = 0.001 for its degrees of freedom
// (Wilson-Hilferty).
std::pair<double, double> chi_square(const Samples& a, const Samples& b, size_t index) {
  std::map<int32_t, std::pair<int, int>> counts;
  for (const auto& r : a.runs) ++counts[r.at(index)].first;
  for (const auto& r : b.runs) ++counts[r.at(index)].second;
  std::vector<std::pair<int, int>> cells;
  std::pair<int, int> pooled{0, 0};
  for (const auto& [token, c] : counts) {
    if (c.first + c.second >= 10) {
      cells.push_back(c);
    } else {
      pooled.first += c.first;
      pooled.second += c.second;
    }
  }
  if (pooled.first + pooled.second > 0) cells.push_back(pooled);
  double x2 = 0;
  for (const auto& [x, y] : cells) x2 += (x - y) * static_cast<double>(x - y) / (x + y);
  const double k = static_cast<double>(cells.size()) - 1;
  const double z = 3.09;  // one-sided p = 0.001
  const double crit = k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
  return {x2, crit};
}

TEST(Ds2dSampling, KeepsTheModelsDistribution) {
  const auto model = load_stories();
  const ForecastEmbeddings forecast = stories_forecasts(*model);
  const std::vector<int32_t> prompt = story_prompts(*model)[0];
  Engine plain(*model, engine_options(64, kStreams, 512));
  Engine tree(*model, engine_options(64, kStreams, 512));
  Ds2dOptions o;
  o.budget = 10;
  o.row_cost = 0;  // full trees every step: the most ways to go wrong
  Ds2dStats stats;
  const DecodeLoop ds2d = ds2d_decode_loop(o, {&forecast}, &stats);

  // Different seeds: independent samples of the two distributions.
  const Samples want = sample(plain, *model, decode_plain, 1.0f, 1, prompt);
  const Samples got = sample(tree, *model, ds2d, 1.0f, 1000000, prompt);
  ASSERT_GT(stats.tau(), 1.05) << "trees were never accepted: the test would prove nothing";
  for (size_t index : {size_t{2}, size_t{5}}) {
    const auto [x2, crit] = chi_square(got, want, index);
    EXPECT_LT(x2, crit) << "token " << index << ": chi-square " << x2;
  }

  // The test has the power to see a small change of the distribution.
  const Samples cooler = sample(plain, *model, decode_plain, 0.8f, 2000000, prompt);
  const auto [x2, crit] = chi_square(cooler, want, 5);
  EXPECT_GT(x2, crit) << "temperature 0.8 vs 1 went unnoticed";

  // With the same seeds, DS2D draws exactly what plain decoding draws: one
  // uniform per token from the same sampler, on logits equal to rounding.
  const Samples same = sample(tree, *model, ds2d, 1.0f, 1, prompt);
  int equal = 0;
  for (size_t i = 0; i < same.runs.size(); ++i) equal += same.runs[i] == want.runs[i];
  EXPECT_GE(equal, static_cast<int>(same.runs.size() * 98 / 100));
}

}  // namespace
}  // namespace chorus
