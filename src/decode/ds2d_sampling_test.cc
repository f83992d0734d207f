// The sampling path of DS2D keeps the model's distribution: verification
// samples from each node's exact logits with the stream's own sampler and
// only follows a child equal to the sample. Checked on stories260K at
// temperature 1, over several prompts and every generated position:
//  - with the same seeds, DS2D draws what plain decoding draws;
//  - the likelihood check: each drawn token's log-probability under the
//    model (recomputed on a separate engine) minus its expectation, the
//    negative entropy, has mean 0 given the tokens before it. Summed over
//    every token of every run and divided by the square root of the summed
//    variances, it is close to N(0, 1) (martingale central limit theorem,
//    so the dependence between positions does not matter); a sampler too
//    sharp draws likelier tokens (z > 0), one too flat less likely ones.
// The same check is shown to fail for plain sampling at temperature 0.9 and
// 1.1, and for a speculative loop with a wrong verification rule, while the
// same loop with the right rule passes.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "decode/ds2d_testing.h"

namespace chorus {
namespace {

using namespace ds2d_testing;

constexpr int kPrompts = 4;     // the first story openings
constexpr int kStreams = 4;     // seeds per request, decoded together
constexpr int kRequests = 150;  // per prompt: 2400 runs in all
constexpr int kTokens = 6;      // tokens per run, all of them checked
constexpr double kBound = 4.0;  // |z| above this: the draws are not the model's

SamplerParams sampling(float temperature, uint64_t seed) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;  // no cut: the draw is softmax(logits / temperature) exactly
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

struct Samples {
  std::vector<int> prompt;                 // [run] its prompt's index
  std::vector<std::vector<int32_t>> runs;  // every stream's tokens
};

Samples sample(Engine& engine, const Model& model, const DecodeLoop& loop, float temperature,
               uint64_t seed0, const std::vector<std::vector<int32_t>>& prompts) {
  Samples out;
  uint64_t seed = seed0;
  for (int p = 0; p < kPrompts; ++p) {
    for (int r = 0; r < kRequests; ++r) {
      MultiStreamRequest req;
      req.prompt = prompts[p];
      req.limits.n_predict = kTokens;
      req.limits.ignore_eos = true;
      req.limits.tokenizer = model.tokenizer.get();
      for (int s = 0; s < kStreams; ++s) {
        StreamSpec spec;
        spec.sampler = sampling(temperature, seed++);
        req.streams.push_back(spec);
      }
      const Outcome o = run(engine, req, loop);
      for (const auto& tokens : o.tokens) {
        out.prompt.push_back(p);
        out.runs.push_back(tokens);
      }
    }
  }
  return out;
}

struct Likelihood {
  double z = 0;              // over every token
  std::vector<double> z_at;  // [position] over the runs
};

// The likelihood check of the header at temperature 1: the model's logits
// for every position of every run, from one prefill of prompt + tokens.
Likelihood likelihood(Engine& ref, const Samples& s,
                      const std::vector<std::vector<int32_t>>& prompts) {
  const int n_vocab = ref.config().n_vocab;
  std::vector<double> dev(kTokens, 0.0), var(kTokens, 0.0), p(n_vocab);
  std::vector<Row> rows;
  for (size_t r = 0; r < s.runs.size(); ++r) {
    const std::vector<int32_t>& prompt = prompts[s.prompt[r]];
    const std::vector<int32_t>& run = s.runs[r];
    EXPECT_EQ(run.size(), size_t{kTokens});
    if (run.size() != size_t{kTokens}) continue;
    rows.clear();
    for (size_t i = 0; i + 1 < prompt.size() + run.size(); ++i) {
      Row row;
      row.token = i < prompt.size() ? prompt[i] : run[i - prompt.size()];
      row.pos = static_cast<int32_t>(i);
      row.parent = i == 0 ? -1 : static_cast<int32_t>(i) - 1;
      row.want_logits = i + 1 >= prompt.size();
      rows.push_back(row);
    }
    ref.kv_cache().clear_stream(0);
    const std::span<const float> logits = ref.step(rows);
    for (int t = 0; t < kTokens; ++t) {
      const float* l = logits.data() + static_cast<size_t>(t) * n_vocab;
      const float mx = *std::max_element(l, l + n_vocab);
      double sum = 0;
      for (int v = 0; v < n_vocab; ++v) sum += p[v] = std::exp(static_cast<double>(l[v] - mx));
      double mean = 0, square = 0;  // of log p over the distribution
      for (int v = 0; v < n_vocab; ++v) {
        p[v] /= sum;
        if (p[v] == 0) continue;
        const double lp = std::log(p[v]);
        mean += p[v] * lp;
        square += p[v] * lp * lp;
      }
      dev[t] += std::log(p[run[t]]) - mean;
      var[t] += square - mean * mean;
    }
  }
  Likelihood out;
  double d = 0, v = 0;
  for (int t = 0; t < kTokens; ++t) {
    out.z_at.push_back(dev[t] / std::sqrt(var[t]));
    d += dev[t];
    v += var[t];
  }
  out.z = d / std::sqrt(v);
  return out;
}

// The k highest logits' ids, best first.
void top_k(const float* l, int n_vocab, int k, int32_t* out) {
  std::vector<std::pair<float, int32_t>> all;
  for (int v = 0; v < n_vocab; ++v) all.push_back({-l[v], v});
  std::partial_sort(all.begin(), all.begin() + k, all.end());
  for (int j = 0; j < k; ++j) out[j] = all[j].second;
}

// A speculative loop small enough to get wrong on purpose: per stream and
// step, the root and kWidth drafted children (the top tokens of the
// forecast row after the last step's deepest accepted node), each followed
// by a forecast row. The right rule samples at the root and follows the
// child equal to the sample; the wrong one takes the model's most likely
// token without drawing whenever a child holds it (greedy verification
// while sampling). Needs limits.ignore_eos.
constexpr int kWidth = 6;

DecodeLoop one_level_loop(const ForecastEmbeddings& f, bool take_likeliest, int* accepted) {
  return [&f, take_likeliest, accepted](Engine& engine, std::span<StreamState> streams,
                                        const DecodeLimits& limits, const OnStreamToken& on_token) {
    const size_t n_vocab = static_cast<size_t>(engine.config().n_vocab);
    auto report = [&](size_t i, int32_t id) {  // false: the stream is done
      StreamState& s = streams[i];
      s.history.push_back(id);
      s.next = id;
      ++s.n_generated;
      if (!on_token(static_cast<int>(i), id)) s.done = true;
      if (s.n_generated >= limits.n_predict) s.done = true;
      return !s.done;
    };
    std::vector<std::array<int32_t, kWidth>> drafts(streams.size());
    std::vector<int> n_drafts(streams.size(), 0);
    std::vector<int> first(streams.size(), -1);  // the stream's first row in the step
    std::vector<Row> rows;
    std::vector<int> commits;
    for (;;) {
      // Rows: the root, its forecast row, the children, their forecast rows.
      rows.clear();
      for (size_t i = 0; i < streams.size(); ++i) {
        StreamState& s = streams[i];
        first[i] = -1;
        if (s.done || s.n_generated >= limits.n_predict) continue;
        first[i] = static_cast<int>(rows.size());
        Row root;
        root.token = s.next;
        root.pos = s.pos;
        root.stream = static_cast<int16_t>(s.stream);
        root.want_logits = true;
        rows.push_back(root);
        Row forecast = root;
        forecast.pos = s.pos + 1;
        forecast.parent = first[i];
        forecast.tentative = true;
        forecast.embedding = f.row(1);
        rows.push_back(forecast);
        for (int j = 0; j < n_drafts[i]; ++j) {
          Row child = forecast;
          child.token = drafts[i][j];
          child.embedding = nullptr;
          rows.push_back(child);
        }
        for (int j = 0; j < n_drafts[i]; ++j) {
          forecast.pos = s.pos + 2;
          forecast.parent = first[i] + 2 + j;
          rows.push_back(forecast);
        }
      }
      if (rows.empty()) return;
      const std::span<const float> logits = engine.step(rows);  // every row wants logits
      auto row_logits = [&](int row) { return logits.subspan(row * n_vocab, n_vocab); };
      commits.clear();
      for (size_t i = 0; i < streams.size(); ++i) {
        if (first[i] < 0) continue;
        StreamState& s = streams[i];
        const int n = std::exchange(n_drafts[i], 0);
        const int32_t* children = drafts[i].data();
        const std::span<const float> root = row_logits(first[i]);
        ++s.pos;  // the root
        const int32_t likeliest =
            static_cast<int32_t>(std::max_element(root.begin(), root.end()) - root.begin());
        const bool drafted = std::find(children, children + n, likeliest) != children + n;
        const int32_t id =
            take_likeliest && drafted ? likeliest : s.sampler->sample(root, s.history);
        if (!report(i, id)) continue;
        const int child = static_cast<int>(std::find(children, children + n, id) - children);
        if (child == n) {
          top_k(row_logits(first[i] + 1).data(), n_vocab, kWidth, drafts[i].data());
          n_drafts[i] = kWidth;
          continue;
        }
        ++*accepted;
        commits.push_back(first[i] + 2 + child);
        ++s.pos;
        if (!report(i, s.sampler->sample(row_logits(first[i] + 2 + child), s.history))) continue;
        top_k(row_logits(first[i] + 2 + n + child).data(), n_vocab, kWidth, drafts[i].data());
        n_drafts[i] = kWidth;
      }
      engine.commit(commits);
    }
  };
}

TEST(Ds2dSampling, KeepsTheModelsDistribution) {
  const auto model = load_stories();
  const ForecastEmbeddings forecast = stories_forecasts(*model);
  const std::vector<std::vector<int32_t>> all = story_prompts(*model);
  ASSERT_GE(all.size(), size_t{kPrompts});
  const std::vector<std::vector<int32_t>> prompts(all.begin(), all.begin() + kPrompts);
  Engine plain(*model, engine_options(64, kStreams, 512));
  Engine tree(*model, engine_options(64, kStreams, 512));
  Engine ref(*model, engine_options(64, 1, 256));
  Ds2dOptions o;
  o.budget = 10;
  o.row_cost = 0;  // full trees every step: the most ways to go wrong
  Ds2dStats stats;
  const DecodeLoop ds2d = ds2d_decode_loop(o, {&forecast}, &stats);

  const Samples got = sample(tree, *model, ds2d, 1.0f, 1, prompts);
  ASSERT_GT(stats.tau(), 1.05) << "trees were never accepted: the test would prove nothing";
  const Likelihood l = likelihood(ref, got, prompts);
  EXPECT_LT(std::abs(l.z), kBound) << "DS2D at temperature 1: z " << l.z;
  for (int t = 0; t < kTokens; ++t) {
    EXPECT_LT(std::abs(l.z_at[t]), kBound) << "token " << t << ": z " << l.z_at[t];
  }

  // With the same seeds, DS2D draws exactly what plain decoding draws: one
  // uniform per token from the same sampler, on logits equal to rounding.
  const Samples want = sample(plain, *model, decode_plain, 1.0f, 1, prompts);
  int equal = 0;
  for (size_t i = 0; i < got.runs.size(); ++i) equal += got.runs[i] == want.runs[i];
  EXPECT_GE(equal, static_cast<int>(got.runs.size() * 98 / 100));
  EXPECT_LT(std::abs(likelihood(ref, want, prompts).z), kBound) << "plain sampling fails the check";

  // The check has the power to see a temperature 10% off...
  for (float t : {0.9f, 1.1f}) {
    const Samples off = sample(plain, *model, decode_plain, t, 2000000, prompts);
    EXPECT_GT(std::abs(likelihood(ref, off, prompts).z), kBound)
        << "temperature " << t << " passes";
  }
  // ... and a wrong verification rule, where the right one passes.
  for (bool wrong : {false, true}) {
    int accepted = 0;
    const DecodeLoop loop = one_level_loop(forecast, wrong, &accepted);
    const Samples s = sample(tree, *model, loop, 1.0f, 3000000, prompts);
    ASSERT_GT(accepted, 300) << "drafts were never accepted: the test would prove nothing";
    const double z = likelihood(ref, s, prompts).z;
    if (wrong) {
      EXPECT_GT(z, kBound) << "taking the likeliest drafted token passes";
    } else {
      EXPECT_LT(std::abs(z), kBound) << "the one-level loop with the right rule: z " << z;
    }
  }
}

}  // namespace
}  // namespace chorus
