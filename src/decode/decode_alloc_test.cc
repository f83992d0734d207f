// The decode loops allocate nothing once warm, like the engine step beneath
// them (engine_alloc_test.cc): the sampler, the multi-stream scheduler with
// the plain loop, and the DS2D loop. The test binary counts every heap
// allocation, whatever the path (test_util/count_allocations.h); the loops
// are read through their token callbacks, so a count covers everything a
// loop does between two tokens (steps, sampling, trees, bookkeeping).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "decode/decode_plain.h"
#include "decode/ds2d.h"
#include "decode/ds2d_testing.h"
#include "decode/multi_stream.h"
#include "decode/sampler.h"
#include "test_util/count_allocations.h"

namespace chorus {
namespace {

using test_util::heap_allocations;

constexpr int kStreams = 3;
constexpr int kPredict = 160;
constexpr int kWarmTokens = 24;  // tokens of stream 0 before the count starts

// Greedy stream 0 (the deepest DS2D trees), two sampled streams with every
// sampler stage on (top-k, top-p, min-p, repetition penalty).
MultiStreamRequest request(const Model& model) {
  MultiStreamRequest req;
  req.prompt = ds2d_testing::story_prompts(model)[0];
  req.limits.n_predict = kPredict;
  req.limits.ignore_eos = true;
  req.limits.tokenizer = model.tokenizer.get();
  for (int s = 0; s < kStreams; ++s) {
    StreamSpec spec;
    spec.sampler.temperature = s == 0 ? 0.0f : 0.9f;
    spec.sampler.repeat_penalty = 1.1f;
    spec.sampler.seed = 5 + static_cast<uint64_t>(s);
    req.streams.push_back(spec);
  }
  return req;
}

// The allocation count when each token of stream 0 was reported.
struct TokenClock {
  std::vector<long> at = std::vector<long>(kPredict, -1);
  int seen = 0;
  OnStreamToken callback() {
    return [this](int stream, int32_t) {
      if (stream == 0 && seen < kPredict) at[seen++] = heap_allocations();
      return true;
    };
  }
};

// Allocations between stream 0's warm-up token and its last one.
long steady_state_allocations(const Model& model, const DecodeLoop& loop, Ds2dStats* stats) {
  EngineOptions o = ds2d_testing::engine_options(64, kStreams, 1024);
  o.threads = 2;
  o.min_parallel_work = 0;  // the parallel paths must not allocate either
  Engine engine(model, o);
  TokenClock clock;
  const MultiStreamRequest req = request(model);
  const MultiStreamResult res = run_streams(engine, req, clock.callback(), loop);
  EXPECT_EQ(clock.seen, kPredict);
  for (const StreamOutcome& s : res.streams) EXPECT_EQ(s.tokens.size(), size_t{kPredict});
  if (stats != nullptr) {
    EXPECT_GT(stats->tau(), 1.2) << "DS2D drafted too little to test";
  }
  return clock.at[kPredict - 1] - clock.at[kWarmTokens];
}

TEST(DecodeAllocations, CounterSeesAllocations) {
  const long before = heap_allocations();
  auto* p = new std::vector<int>(100);
  asm volatile("" : : "g"(p) : "memory");  // kept, not elided
  delete p;
  EXPECT_EQ(heap_allocations() - before, 2);
}

TEST(DecodeAllocations, SamplerDrawsWithoutAllocating) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<std::vector<float>> logits(8, std::vector<float>(512));
  for (auto& l : logits) {
    for (float& x : l) x = normal(rng);
  }
  std::vector<int32_t> history(100);
  for (size_t i = 0; i < history.size(); ++i) history[i] = static_cast<int32_t>(i * 7 % 512);

  SamplerParams sampled;
  sampled.repeat_penalty = 1.1f;
  sampled.seed = 9;
  SamplerParams all = sampled;  // no cut: every candidate sorted and kept
  all.top_k = 0;
  all.top_p = 1.0f;
  all.min_p = 0.0f;
  all.repeat_last_n = -1;
  SamplerParams greedy = sampled;
  greedy.temperature = 0.0f;
  for (const SamplerParams& p : {sampled, all, greedy}) {
    Sampler s(p);
    for (const auto& l : logits) s.sample(l, history);  // warm-up: buffers sized
    const long before = heap_allocations();
    int32_t sum = 0;
    for (int i = 0; i < 400; ++i) sum += s.sample(logits[i % logits.size()], history);
    EXPECT_EQ(heap_allocations() - before, 0) << "temperature " << p.temperature;
    EXPECT_GT(sum, 0);
  }
}

TEST(DecodeAllocations, MultiStreamPlainLoopSteadyState) {
  const auto model = ds2d_testing::load_stories();
  EXPECT_EQ(steady_state_allocations(*model, decode_plain, nullptr), 0);
}

TEST(DecodeAllocations, Ds2dLoopSteadyState) {
  const auto model = ds2d_testing::load_stories();
  const ForecastEmbeddings forecast = ds2d_testing::stories_forecasts(*model);
  Ds2dOptions o;
  o.budget = 16;
  o.row_cost = 0;  // full trees every step: the most nodes, rows and chains
  Ds2dStats stats;
  const DecodeLoop loop = ds2d_decode_loop(o, {&forecast}, &stats);
  EXPECT_EQ(steady_state_allocations(*model, loop, &stats), 0);
}

}  // namespace
}  // namespace chorus
