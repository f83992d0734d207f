// Helpers shared by the DS2D tests: stories260K, forecast sets, and running
// a request through the scheduler with the plain or the DS2D loop.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "decode/decode_plain.h"
#include "decode/ds2d.h"
#include "decode/multi_stream.h"
#include "engine/engine.h"
#include "gguf/quants.h"
#include "model/forecast.h"
#include "model/model.h"
#include "test_data/stories260k.h"

namespace chorus::ds2d_testing {

inline std::unique_ptr<Model> load_stories() {
  return load_model(test_data::source_path("models/stories260K.gguf"));
}

// The shipped training-free forecasts, when present; else a scaled mean
// token embedding (what `derive --method weighted-mean` starts from).
inline ForecastEmbeddings stories_forecasts(const Model& model, int count = 4) {
  const std::string shipped = test_data::source_path("models/stories260K.forecast-derived.gguf");
  if (count == 4 && std::ifstream(shipped).good()) return load_forecast(shipped, model);
  ForecastEmbeddings f = make_forecast(model, count);
  f.method = "test-mean";
  const ModelConfig& c = model.config;
  std::vector<float> row(c.dim);
  for (int v = 0; v < c.n_vocab; ++v) {
    const WeightView& e = model.weights.token_embedding;
    gguf::dequantize_row(e.type, e.row(v), row.data(), c.dim);
    for (int k = 1; k <= count; ++k) {
      for (int d = 0; d < c.dim; ++d) f.row(k)[d] += row[d] * (3.0f + k) / c.n_vocab;
    }
  }
  return f;
}

// The story openings of a file in tests/data, one per line, tokenized with
// BOS: by default the ten of ds2d_prompts.txt.
inline std::vector<std::vector<int32_t>> story_prompts(const Model& model,
                                                       const std::string& file = "ds2d_prompts.txt") {
  std::ifstream in(test_data::source_path("tests/data/" + file));
  std::vector<std::vector<int32_t>> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(model.tokenizer->encode(line, true));
  }
  return out;
}

inline EngineOptions engine_options(int max_rows = 64, int streams = 4, int context = 1024) {
  EngineOptions o;
  o.max_rows = max_rows;
  o.max_streams = streams;
  o.context = context;
  o.threads = 1;
  return o;
}

struct Outcome {
  std::vector<std::vector<int32_t>> tokens;  // [stream]
  std::vector<StopReason> reasons;
  Ds2dStats stats;
};

// Runs `req` and returns each stream's tokens. stop_after[i] > 0 makes the
// callback stop stream i after that many tokens.
inline Outcome run(Engine& engine, const MultiStreamRequest& req, const DecodeLoop& loop,
                   std::vector<int> stop_after = {}) {
  Outcome out;
  std::vector<int> seen(req.streams.size(), 0);
  const MultiStreamResult res = run_streams(
      engine, req,
      [&](int i, int32_t) {
        ++seen[i];
        return !(i < static_cast<int>(stop_after.size()) && stop_after[i] > 0 &&
                 seen[i] >= stop_after[i]);
      },
      loop);
  for (const StreamOutcome& s : res.streams) {
    out.tokens.push_back(s.tokens);
    out.reasons.push_back(s.stop_reason);
  }
  return out;
}

inline MultiStreamRequest greedy_request(std::vector<int32_t> prompt, int streams, int n_predict,
                                         const Tokenizer* tok) {
  MultiStreamRequest req;
  req.prompt = std::move(prompt);
  req.limits.n_predict = n_predict;
  req.limits.tokenizer = tok;
  for (int s = 0; s < streams; ++s) {
    StreamSpec spec;
    spec.sampler.temperature = 0.0f;
    spec.first_token_rank = streams > 1 ? s : -1;
    req.streams.push_back(spec);
  }
  return req;
}

// Shapes that exercise different trees: the full budget on every step
// (row_cost 0), small budgets, fixed shapes, n-gram branches alone.
inline std::vector<std::pair<std::string, Ds2dOptions>> shapes() {
  std::vector<std::pair<std::string, Ds2dOptions>> out;
  Ds2dOptions o;
  o.row_cost = 0;
  out.push_back({"full budget", o});
  o.ngram = false;
  out.push_back({"forecasts only", o});
  o = {};
  o.row_cost = 0;
  o.budget = 8;  // the most forecasts shipped (m = 6) plus the root and one node
  o.max_width = 2;
  out.push_back({"budget 8", o});
  o = {};
  o.row_cost = 0;
  o.dynamic = false;
  o.forecast_rows = 2;
  o.max_width = 3;
  o.budget = 24;
  out.push_back({"fixed 2 forecasts", o});
  o = {};
  o.row_cost = 0.3f;
  o.max_depth = 3;
  out.push_back({"row cost 0.3", o});
  // Chains on a few likely ends only: walks that stop at a node without one
  // draft from an ancestor's chain.
  o = {};
  o.row_cost = 0;
  o.dynamic = false;
  o.forecast_rows = 3;
  o.forecast_chains = 1;
  out.push_back({"one chain", o});
  o.forecast_chains = 0;
  o.budget = 16;
  out.push_back({"a chain per node", o});
  // Budgets below m + 1: chains use the first budget - 1 forecasts.
  o = {};
  o.row_cost = 0;
  o.budget = 3;
  out.push_back({"budget 3", o});
  o.dynamic = false;
  o.budget = 4;
  out.push_back({"fixed, budget 4", o});
  return out;
}

// A suite whose tests share stories260K and its forecasts, loaded once per
// suite (gtest runs suites one after another).
class StoriesSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = load_stories().release();
    forecast_ = new ForecastEmbeddings(stories_forecasts(*model_));
  }
  static void TearDownTestSuite() {
    delete forecast_;
    delete model_;
    forecast_ = nullptr;
    model_ = nullptr;
  }
  static inline Model* model_ = nullptr;
  static inline ForecastEmbeddings* forecast_ = nullptr;
};

}  // namespace chorus::ds2d_testing
