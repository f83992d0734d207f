// The DS2D loop on stories260K: greedy output identical to plain decoding
// (many prompts, lengths and shapes; 1 and 4 streams; with an adapter), the
// KV cache it leaves equal to plain decoding's, the plain loop's stopping
// rules, and bad input.
#include "decode/ds2d.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "decode/ds2d_testing.h"
#include "model/lora.h"
#include "test_util/error_of.h"
#include "util/error.h"

namespace chorus {
namespace {

using namespace ds2d_testing;

class Ds2d : public StoriesSuite {
 protected:

  DecodeLoop ds2d(Ds2dOptions o, Ds2dStats* stats = nullptr) const {
    return ds2d_decode_loop(o, {forecast_}, stats);
  }

};

TEST_F(Ds2d, GreedyFromBosMatchesTheReferenceIds) {
  Engine engine(*model_, engine_options());
  Ds2dStats stats;
  Ds2dOptions o;
  o.row_cost = 0;
  const MultiStreamRequest req = greedy_request({1}, 1, 100, model_->tokenizer.get());
  const Outcome out = run(engine, req, ds2d(o, &stats));
  EXPECT_EQ(out.tokens[0], test_data::stories260k_greedy_ids());
  EXPECT_EQ(out.reasons[0], StopReason::kLength);
  // 99 tokens come from the loop (the scheduler picks the first), in fewer
  // steps than tokens.
  EXPECT_EQ(stats.tokens, 99);
  EXPECT_LT(stats.trees, 99);
  EXPECT_GT(stats.tau(), 1.0);
  EXPECT_GT(stats.draft_nodes, 0);
  EXPECT_GT(stats.forecast_rows, 0);
}

// m = 4 forecasts in a budget of 3 rows: chains of at most 2 forecast rows,
// never more rows than the budget, and plain decoding's output.
TEST_F(Ds2d, MoreForecastsThanBudget) {
  ASSERT_EQ(forecast_->count, 4);
  Engine plain(*model_, engine_options());
  Engine tree(*model_, engine_options());
  Ds2dOptions o;
  o.row_cost = 0;
  o.budget = 3;
  o.ngram = false;
  Ds2dStats stats;
  const MultiStreamRequest req = greedy_request(story_prompts(*model_)[0], 1, 60, model_->tokenizer.get());
  EXPECT_EQ(run(tree, req, ds2d(o, &stats)).tokens, run(plain, req, decode_plain).tokens);
  EXPECT_GT(stats.forecast_rows, 0);
  EXPECT_LE(stats.rows, 3 * stats.steps);
  EXPECT_GT(stats.tau(), 1.0);
}

TEST_F(Ds2d, GreedyIdenticalToPlainOneStream) {
  Engine plain(*model_, engine_options());
  Engine tree(*model_, engine_options());
  const std::vector<std::vector<int32_t>> prompts = story_prompts(*model_);
  ASSERT_EQ(prompts.size(), 10u);
  const int lengths[] = {1, 2, 3, 9, 40, 150};
  int runs = 0;
  for (const auto& [name, options] : shapes()) {
    for (size_t p = 0; p < prompts.size(); ++p) {
      const int n = lengths[(p + runs) % std::size(lengths)];
      SCOPED_TRACE(name + ", prompt " + std::to_string(p) + ", n " + std::to_string(n));
      const MultiStreamRequest req = greedy_request(prompts[p], 1, n, model_->tokenizer.get());
      const Outcome want = run(plain, req, decode_plain);
      const Outcome got = run(tree, req, ds2d(options));
      ASSERT_EQ(got.tokens, want.tokens);
      ASSERT_EQ(got.reasons, want.reasons);
      ++runs;
    }
  }
}

TEST_F(Ds2d, GreedyIdenticalToPlainFourStreams) {
  Engine plain(*model_, engine_options());
  Engine tree(*model_, engine_options());
  const std::vector<std::vector<int32_t>> prompts = story_prompts(*model_);
  for (const auto& [name, options] : shapes()) {
    for (size_t p = 0; p < prompts.size(); p += 5) {
      SCOPED_TRACE(name + ", prompt " + std::to_string(p));
      MultiStreamRequest req = greedy_request(prompts[p], 4, 60, model_->tokenizer.get());
      req.streams[2].suffix = {model_->tokenizer->encode(" Then", false)};  // its own suffix
      Ds2dStats stats;
      const Outcome want = run(plain, req, decode_plain);
      const Outcome got = run(tree, req, ds2d(options, &stats));
      ASSERT_EQ(got.tokens, want.tokens);
      ASSERT_EQ(got.reasons, want.reasons);
      // Every stream had its own tree in the same steps.
      EXPECT_GE(stats.trees, 3 * stats.steps);
    }
  }
}

TEST_F(Ds2d, MoreStreamsThanRowsFallBackToSmallerTrees) {
  // 4 streams but 6 rows a step: one row and a bit per stream.
  Engine plain(*model_, engine_options(6));
  Engine tree(*model_, engine_options(6));
  Ds2dOptions o;
  o.budget = 6;
  o.row_cost = 0;
  const MultiStreamRequest req =
      greedy_request(story_prompts(*model_)[0], 4, 30, model_->tokenizer.get());
  const Outcome want = run(plain, req, decode_plain);
  const Outcome got = run(tree, req, ds2d_decode_loop(o, {forecast_}));
  EXPECT_EQ(got.tokens, want.tokens);
}

TEST_F(Ds2d, TreesStopAtTheEndOfTheContext) {
  // The context holds exactly prompt + n_predict cells and positions: near
  // the end, nodes and forecast rows past the last position and rows beyond
  // the free cells must be cut, not rejected.
  const std::vector<int32_t> prompt = story_prompts(*model_)[1];
  const int n = 40;
  const int context = static_cast<int>(prompt.size()) + n;
  Engine plain(*model_, engine_options(32, 1, context));
  Engine tree(*model_, engine_options(32, 1, context));
  Ds2dOptions o;
  o.row_cost = 0;
  o.budget = 32;
  MultiStreamRequest req = greedy_request(prompt, 1, n, model_->tokenizer.get());
  req.limits.ignore_eos = true;
  EXPECT_EQ(run(tree, req, ds2d(o)).tokens, run(plain, req, decode_plain).tokens);
}

// Committed cells of `stream` in position order: positions and K/V.
struct StreamCache {
  std::vector<int32_t> pos;
  std::vector<float> kv;  // per cell: every layer's key then value
};

StreamCache cache_of(const Engine& e, int stream) {
  const KvCache& kv = e.kv_cache();
  StreamCache out;
  for (int32_t cell : kv.stream_cells(stream)) {
    out.pos.push_back(kv.cell_pos(cell));
    for (int l = 0; l < kv.n_layers(); ++l) {
      const size_t at = out.kv.size();
      out.kv.resize(at + 2 * kv.kv_dim());
      kv.read_key(l, cell, out.kv.data() + at);
      kv.read_value(l, cell, out.kv.data() + at + kv.kv_dim());
    }
  }
  return out;
}

// On the f32 weights and repacked to INT4.
TEST_F(Ds2d, KvCacheEqualsPlainDecoding) {
  for (const WeightFormat weights : {WeightFormat::kF32, WeightFormat::kInt4}) {
    SCOPED_TRACE(weights == WeightFormat::kF32 ? "f32" : "int4");
    EngineOptions eo = engine_options();
    eo.weights = weights;
    Engine plain(*model_, eo);
    Engine tree(*model_, eo);
    Ds2dOptions o;
    o.row_cost = 0;
    Ds2dStats stats;
    MultiStreamRequest req = greedy_request(story_prompts(*model_)[4], 4, 50, model_->tokenizer.get());
    std::vector<int> stop = {0, 17, 0, 0};  // one stream stops in the middle
    const Outcome want = run(plain, req, decode_plain, stop);
    const Outcome got = run(tree, req, ds2d(o, &stats), stop);
    ASSERT_EQ(got.tokens, want.tokens);
    ASSERT_GT(stats.tau(), 1.0);  // trees were accepted, so cells were compacted in
    for (int s = 0; s < 4; ++s) {
      SCOPED_TRACE(s);
      const StreamCache a = cache_of(tree, s), b = cache_of(plain, s);
      ASSERT_EQ(a.pos, b.pos);
      for (size_t i = 0; i < a.pos.size(); ++i) ASSERT_EQ(a.pos[i], static_cast<int32_t>(i));
      // The committed rows' K/V are the bits plain decoding wrote: a row's
      // numbers never depend on the rest of its step.
      ASSERT_EQ(a.kv.size(), b.kv.size());
      EXPECT_EQ(0, std::memcmp(a.kv.data(), b.kv.data(), a.kv.size() * sizeof(float)));
    }
    // Nothing else is left behind: every used cell belongs to a stream.
    EXPECT_EQ(tree.kv_cache().n_cells_used(), plain.kv_cache().n_cells_used());
  }
}

TEST_F(Ds2d, StopsLikeThePlainLoop) {
  Engine plain(*model_, engine_options());
  Engine tree(*model_, engine_options());
  Ds2dOptions o;
  o.row_cost = 0;
  const std::vector<std::vector<int32_t>> prompts = story_prompts(*model_);
  // The callback stopping a stream in the middle of an accepted run: the
  // rest of the run is dropped and nothing after the stop is reported.
  for (int stop : {1, 2, 5, 13, 31}) {
    SCOPED_TRACE(stop);
    const MultiStreamRequest req = greedy_request(prompts[2], 2, 60, model_->tokenizer.get());
    const Outcome want = run(plain, req, decode_plain, {stop, 0});
    const Outcome got = run(tree, req, ds2d(o), {stop, 0});
    EXPECT_EQ(got.tokens, want.tokens);
    EXPECT_EQ(got.tokens[0].size(), static_cast<size_t>(stop));
    EXPECT_EQ(got.reasons[0], StopReason::kCallback);
    EXPECT_EQ(got.reasons[1], StopReason::kLength);
  }
  // End of generation: it ends the stream unreported. stories260K never
  // emits EOS (its training text separates stories with BOS), so BOS ends
  // generation here; greedy decoding reaches it at the end of a story.
  Vocab vocab = model_->tokenizer->vocab();
  vocab.eog.push_back(1);
  const Tokenizer story_end(std::move(vocab));
  MultiStreamRequest req = greedy_request(prompts[0], 1, 400, &story_end);
  const Outcome want = run(plain, req, decode_plain);
  ASSERT_EQ(want.reasons[0], StopReason::kEndOfGeneration) << "the story did not end";
  const Outcome got = run(tree, req, ds2d(o));
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.reasons, want.reasons);
  // ... unless ignore_eos, where it is reported and decoding goes on.
  req.limits.ignore_eos = true;
  req.limits.n_predict = want.tokens[0].size() + 20;
  const Outcome on = run(tree, req, ds2d(o));
  EXPECT_EQ(on.tokens, run(plain, req, decode_plain).tokens);
  EXPECT_EQ(on.tokens[0].size(), want.tokens[0].size() + 20);
}

TEST_F(Ds2d, AdaptsTheShapeAndLearnsAcrossCalls) {
  Engine engine(*model_, engine_options());
  Ds2dOptions o;
  o.row_cost = 0;
  Ds2dTuner tuner;
  Ds2dStats first, second;
  const MultiStreamRequest req =
      greedy_request(story_prompts(*model_)[3], 1, 120, model_->tokenizer.get());
  run(engine, req, ds2d_decode_loop(o, {forecast_}, &first, &tuner));
  run(engine, req, ds2d_decode_loop(o, {forecast_}, &second, &tuner));
  EXPECT_EQ(first.tokens, second.tokens);
  // With the budget spent every step, rows per step stay within it.
  EXPECT_LE(first.rows_per_step(), o.budget);
  // The tuner carried the base model's acceptance estimates over.
  EXPECT_NE(tuner.for_adapter(-1).forecast(1, 0), AcceptanceStats().forecast(1, 0));
}

TEST_F(Ds2d, MeasuresTheRowCostWhenAsked) {
  Engine engine(*model_, engine_options());
  Ds2dTuner tuner;
  Ds2dStats stats;
  Ds2dOptions o;  // row_cost -1: measured
  const MultiStreamRequest req =
      greedy_request(story_prompts(*model_)[5], 1, 30, model_->tokenizer.get());
  const Outcome got = run(engine, req, ds2d_decode_loop(o, {forecast_}, &stats, &tuner));
  Engine plain(*model_, engine_options());
  EXPECT_EQ(got.tokens, run(plain, req, decode_plain).tokens);
  EXPECT_GE(tuner.row_cost, 0.0f);
  EXPECT_EQ(tuner.row_cost_streams, 1);
  EXPECT_EQ(stats.row_cost, tuner.row_cost);
}

TEST_F(Ds2d, WithAnAdapterIdenticalToPlain) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) /
                            ("chorus_ds2d_lora_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  SyntheticLoraSpec spec;
  spec.rank = 8;
  spec.seed = 3;
  write_synthetic_lora_gguf(path, model_->config, spec);
  const LoraAdapter adapter = load_lora(path, model_->config);
  std::filesystem::remove(path);
  EngineOptions eo = engine_options();
  eo.adapter_slots = 2;
  eo.adapter_max_rank = 8;
  Engine plain(*model_, eo), tree(*model_, eo);
  const int slot = plain.adapters().load("style", adapter);
  ASSERT_EQ(tree.adapters().load("style", adapter), slot);

  // Streams 0 and 2 with the adapter, 1 and 3 without, all in the same steps.
  MultiStreamRequest req =
      greedy_request(story_prompts(*model_)[6], 4, 50, model_->tokenizer.get());
  req.streams[0].adapter = slot;
  req.streams[2].adapter = slot;
  Ds2dOptions o;
  o.row_cost = 0;
  Ds2dTuner tuner;
  const Outcome want = run(plain, req, decode_plain);
  const Outcome got = run(tree, req, ds2d_decode_loop(o, {forecast_}, nullptr, &tuner));
  EXPECT_EQ(got.tokens, want.tokens);
  // The adapter changes the text, so this checks something.
  EXPECT_NE(
      want.tokens[0],
      run(plain, greedy_request(req.prompt, 4, 50, req.limits.tokenizer), decode_plain).tokens[0]);
  // Forecasts per stream: the adapter's own for its streams, none for one.
  ForecastEmbeddings styled = *forecast_;
  styled.adapter = "style";
  const Outcome mixed = run(tree, req,
                            ds2d_decode_loop(o, {&styled, forecast_, &styled, nullptr}));
  EXPECT_EQ(mixed.tokens, want.tokens);
  // ... and not to a stream without that adapter.
  EXPECT_THROW(run(tree, req, ds2d_decode_loop(o, {&styled})), Error);
  // Acceptance is learnt per adapter.
  EXPECT_NE(tuner.for_adapter(slot).forecast(1, 0), AcceptanceStats().forecast(1, 0));
  EXPECT_NE(tuner.for_adapter(-1).forecast(1, 0), AcceptanceStats().forecast(1, 0));
}

using test_util::error_of;

TEST_F(Ds2d, RejectsBadInputBeforeAnyStep) {
  Engine engine(*model_, engine_options(32));
  std::vector<StreamState> streams(1);
  Sampler sampler(SamplerParams{});
  streams[0].sampler = &sampler;
  streams[0].next = 5;
  streams[0].pos = 0;
  const DecodeLimits limits;
  auto on_token = [](int, int32_t) { return true; };
  auto attempt = [&](const Ds2dOptions& o, std::vector<const ForecastEmbeddings*> f,
                     size_t n_streams = 1) {
    std::vector<StreamState> s(n_streams, streams[0]);
    return error_of([&] { decode_ds2d(engine, s, limits, on_token, o, f); });
  };
  Ds2dOptions o;

  // A forecast file for another model: another width.
  ForecastEmbeddings other = *forecast_;
  other.path = "other.gguf";
  other.dim = 32;
  other.embd.resize(other.count * 32);
  EXPECT_NE(attempt(o, {&other}).find("other.gguf: chorus.forecast.dim = 32 does not match"),
            std::string::npos);
  other = *forecast_;
  other.base_n_vocab = 32000;
  EXPECT_NE(attempt(o, {&other}).find("n_vocab = 32000"), std::string::npos);
  // ... and another model of the same shape, caught by the fingerprint on load.
  other = *forecast_;
  other.base_fingerprint = "0000000000000000";
  EXPECT_NE(error_of([&] { validate_forecast(other, *model_); }).find("fingerprint"),
            std::string::npos);

  // (m larger than the row budget is no error: MoreForecastsThanBudget.)
  // A budget above the step's capacity.
  o.budget = 33;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d budget: must be 1..32"), std::string::npos);
  o.budget = 0;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d budget"), std::string::npos);
  o = {};
  o.max_width = 9;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d max_width"), std::string::npos);
  o = {};
  o.max_depth = 0;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d max_depth"), std::string::npos);
  o = {};
  o.ngram_min = 3;
  o.ngram_max = 2;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d ngram"), std::string::npos);
  o = {};
  o.row_cost = -2;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d row_cost"), std::string::npos);
  o = {};
  o.forecast_chains = -2;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d forecast_chains"), std::string::npos);
  o.forecast_chains = 33;
  EXPECT_NE(attempt(o, {forecast_}).find("ds2d forecast_chains: must be -1 (choose), 0 (every node) or 1..32"),
            std::string::npos);
  o = {};
  EXPECT_NE(attempt(o, {forecast_, forecast_}, 3).find("2 forecast sets for 3 streams"),
            std::string::npos);
  // Nothing ran: the cache is untouched.
  EXPECT_EQ(engine.kv_cache().n_cells_used(), 0);
  EXPECT_EQ(engine.kv_cache().n_cells_pending(), 0);
}

TEST_F(Ds2d, WithoutForecastsUsesNgramBranchesOnly) {
  Engine plain(*model_, engine_options());
  Engine tree(*model_, engine_options());
  Ds2dOptions o;
  o.row_cost = 0;
  Ds2dStats stats;
  // A prompt that repeats itself, so n-gram branches have something to find.
  std::vector<int32_t> prompt = story_prompts(*model_)[0];
  const std::vector<int32_t> again(prompt.begin() + 1, prompt.end());
  prompt.insert(prompt.end(), again.begin(), again.end());
  const MultiStreamRequest req = greedy_request(prompt, 1, 80, model_->tokenizer.get());
  const Outcome got = run(tree, req, ds2d_decode_loop(o, {}, &stats));
  EXPECT_EQ(got.tokens, run(plain, req, decode_plain).tokens);
  EXPECT_EQ(stats.forecast_rows, 0);
  EXPECT_GT(stats.ngram_nodes, 0);
  EXPECT_GT(stats.tau(), 1.0);
}

}  // namespace
}  // namespace chorus
