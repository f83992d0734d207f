// The public API on stories260K: text in, k streams out, adapters by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <span>
#include <map>
#include <string>
#include <vector>

#include "chorus/chorus.h"
#include "decode/logits_source.h"
#include "engine/engine.h"
#include "engine/reference_forward.h"
#include "model/lora.h"
#include "model/model.h"
#include "test_data/stories260k.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::string kModel = test_data::source_path("models/stories260K.gguf");

RuntimeOptions small(int context = 256) {
  RuntimeOptions o;
  o.context = context;
  o.max_streams = 4;
  return o;
}

Request greedy(std::string prompt, int n) {
  Request r;
  r.prompt = std::move(prompt);
  r.n_predict = n;
  r.ignore_eos = true;
  r.sampling.temperature = 0.0f;
  return r;
}

// What the std::runtime_error (the public API's error type) thrown by f
// says, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

StreamOptions with_adapter(std::string name) {
  StreamOptions s;
  s.adapter = std::move(name);
  return s;
}
StreamOptions with_suffix(std::string suffix) {
  StreamOptions s;
  s.suffix = std::move(suffix);
  return s;
}
StreamOptions with_rank(int rank) {
  StreamOptions s;
  s.first_token_rank = rank;
  return s;
}

// Two random rank-4 adapters in GGUF form, written once for all tests.
class Adapters : public ::testing::Environment {
 public:
  static std::string path(int i) {
    return (dir() / ("lora" + std::to_string(i) + ".gguf")).string();
  }
  void SetUp() override {
    fs::create_directories(dir());
    const auto model = load_model(kModel);
    for (int i = 0; i < 2; ++i) {
      SyntheticLoraSpec spec;
      spec.rank = 4;
      spec.alpha = 8;
      spec.seed = 1 + i;
      spec.stddev = 0.1f;
      write_synthetic_lora_gguf(path(i), model->config, spec);
    }
  }
  void TearDown() override { fs::remove_all(dir()); }

 private:
  static fs::path dir() {
    return fs::path(::testing::TempDir()) / ("chorus_api_test_" + std::to_string(::getpid()));
  }
};
const auto* const kAdapters = ::testing::AddGlobalTestEnvironment(new Adapters);

TEST(Runtime, GreedyFromBosMatchesTheReference) {
  Runtime rt(kModel, small());
  const Result r = rt.generate(greedy("", 30));
  ASSERT_EQ(r.streams.size(), 1u);
  const std::vector<int32_t>& ref = test_data::stories260k_greedy_ids();
  EXPECT_EQ(r.streams[0].tokens, std::vector<int32_t>(ref.begin(), ref.begin() + 30));
  EXPECT_EQ(r.streams[0].finish, FinishReason::kLength);
  EXPECT_EQ(r.prompt_tokens, std::vector<int32_t>{1});
  EXPECT_EQ(r.timings.generated_tokens, 30);
  EXPECT_EQ(r.timings.prompt_prefills, 1);
  EXPECT_GT(r.timings.total_seconds, 0);
}

// What a chat needs: the template (stories260K has none), the BOS and EOS
// texts, and special token texts in a prompt read as those tokens.
TEST(Runtime, ChatTemplateAndSpecialTokens) {
  Runtime rt(kModel, small());
  const RuntimeInfo info = rt.info();
  EXPECT_EQ(info.chat_template, "");
  EXPECT_EQ(info.bos_token, "<s>");
  EXPECT_EQ(info.eos_token, "</s>");
  const std::vector<int32_t> parsed = rt.tokenize("<s>Once", false, true);
  ASSERT_FALSE(parsed.empty());
  EXPECT_EQ(parsed[0], 1);
  const std::vector<int32_t> spelled = rt.tokenize("<s>Once", false);
  EXPECT_NE(spelled[0], 1);
  EXPECT_GT(spelled.size(), parsed.size());
  Request req = greedy("<s>Once", 4);
  req.add_bos = false;
  req.parse_special = true;
  EXPECT_EQ(rt.generate(req).prompt_tokens, parsed);
  req.parse_special = false;
  EXPECT_EQ(rt.generate(req).prompt_tokens, spelled);
}

// Either KV cache type; f16 is the default and halves the cache.
TEST(Runtime, KvTypeIsAnOption) {
  const std::vector<int32_t>& ref = test_data::stories260k_greedy_ids();
  size_t f16_bytes = 0;
  for (const char* type : {"f16", "f32"}) {
    RuntimeOptions o = small();
    o.kv_type = type;
    Runtime rt(kModel, o);
    EXPECT_EQ(rt.info().kv_type, type);
    const Result r = rt.generate(greedy("", 30));
    EXPECT_EQ(r.streams[0].tokens, std::vector<int32_t>(ref.begin(), ref.begin() + 30)) << type;
    if (f16_bytes == 0) {
      f16_bytes = rt.info().kv_bytes;
    } else {
      EXPECT_EQ(rt.info().kv_bytes, 2 * f16_bytes);
    }
  }
  EXPECT_EQ(Runtime(kModel, small()).info().kv_type, "f16");
}

TEST(Runtime, StreamsReportTheirPiecesAndText) {
  Runtime rt(kModel, small());
  Request req = greedy("Once upon a time", 20);
  for (int i = 0; i < 3; ++i) req.streams.push_back(with_rank(i));
  std::map<int, std::string> pieces;
  std::map<int, int> tokens;
  const Result r = rt.generate(req, [&](int stream, int32_t token, std::string_view piece) {
    pieces[stream] += piece;
    if (token >= 0) ++tokens[stream];
    return true;
  });
  ASSERT_EQ(r.streams.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.streams[i].stream, i);
    EXPECT_EQ(pieces[i], r.streams[i].text);
    EXPECT_EQ(tokens[i], 20);
    EXPECT_EQ(r.streams[i].text, rt.detokenize(r.streams[i].tokens));
    EXPECT_FALSE(r.streams[i].text.empty());
    EXPECT_GT(r.streams[i].last_token_seconds, 0);
  }
  EXPECT_NE(r.streams[0].text, r.streams[1].text);
  // Stream 0 (the most likely first token) is plain greedy decoding.
  EXPECT_EQ(r.streams[0].tokens, rt.generate(greedy("Once upon a time", 20)).streams[0].tokens);
}

// Stop strings: the text ends right before the first one, also when it
// spans tokens; the callback never sees text that turned out to be part of
// one, and text held back by a start that never completes comes at the end.
TEST(Runtime, StopStringsCutTheTextAsOpenAiDoes) {
  Runtime rt(kModel, small());
  const Request plain = greedy("Once upon a time", 40);
  std::vector<std::string> per_token;
  const Result full = rt.generate(plain, [&](int, int32_t token, std::string_view piece) {
    if (token >= 0) per_token.emplace_back(piece);
    return true;
  });
  const std::string text = full.streams[0].text;
  // A 3-byte stop string starting one byte before the end of token j, so it
  // spans tokens, and occurring there first.
  std::string stop;
  size_t at = 0, end = 0;
  for (size_t j = 0; j + 2 < per_token.size() && stop.empty(); ++j) {
    end += per_token[j].size();
    if (j < 4 || per_token[j].empty() || per_token[j + 1].size() < 2) continue;
    const std::string s = text.substr(end - 1, 3);
    if (text.find(s) == end - 1) stop = s, at = end - 1;
  }
  ASSERT_FALSE(stop.empty()) << text;

  Request req = plain;
  req.stop = {"never appears", stop};
  std::string pieces;
  int calls = 0;
  const Result r = rt.generate(req, [&](int, int32_t, std::string_view piece) {
    pieces += piece;
    ++calls;
    return true;
  });
  EXPECT_EQ(r.streams[0].finish, FinishReason::kStopString);
  EXPECT_EQ(r.streams[0].text, text.substr(0, at)) << "stop '" << stop << "' in: " << text;
  EXPECT_EQ(pieces, r.streams[0].text);
  // The tokens include those of the stop string: generation ended on the one completing it.
  EXPECT_GT(rt.detokenize(r.streams[0].tokens).size(), at);
  EXPECT_EQ(static_cast<size_t>(calls), r.streams[0].tokens.size());

  // A start of a stop string that never completes is held back, then given out.
  req.stop = {stop + "\x01"};
  pieces.clear();
  const Result held = rt.generate(req, [&](int, int32_t, std::string_view piece) {
    pieces += piece;
    return true;
  });
  EXPECT_EQ(held.streams[0].finish, FinishReason::kLength);
  EXPECT_EQ(held.streams[0].text, text);
  EXPECT_EQ(pieces, text);

  // With k streams a stop string ends only the streams whose text holds it.
  req = plain;
  for (int i = 0; i < 3; ++i) req.streams.push_back(with_rank(i));
  req.stop = {stop};
  const Result many = rt.generate(req);
  EXPECT_EQ(many.streams[0].text, text.substr(0, at));
  for (const StreamResult& s : many.streams) {
    EXPECT_EQ(s.text.find(stop), std::string::npos) << s.text;
    if (s.finish != FinishReason::kStopString) {
      EXPECT_EQ(s.tokens.size(), 40u);
    }
  }
}

TEST(Runtime, StreamSeedsDefaultToTheRequestSeedPlusIndex) {
  Runtime rt(kModel, small());
  Request req;
  req.prompt = "Once upon a time";
  req.n_predict = 25;
  req.sampling.temperature = 0.9f;
  req.sampling.seed = 5;
  req.streams.resize(3);
  req.streams[2].seed = 42;
  const Result r = rt.generate(req);
  for (int i = 0; i < 3; ++i) {
    Request one = req;
    one.streams.clear();
    one.sampling.seed = i == 2 ? 42 : 5 + i;
    EXPECT_EQ(r.streams[i].tokens, rt.generate(one).streams[0].tokens) << i;
  }
}

TEST(Runtime, SuffixesAreTheirStreamsOwn) {
  Runtime rt(kModel, small());
  Request req = greedy("Once upon a time, there was a", 15);
  req.streams = {with_suffix("girl named"), with_suffix("dog")};
  const Result r = rt.generate(req);
  const Result a = rt.generate(greedy("Once upon a time, there was a girl named", 15));
  EXPECT_EQ(r.streams[0].tokens, a.streams[0].tokens);
  EXPECT_GT(r.streams[0].prompt_tokens, static_cast<int>(r.prompt_tokens.size()));
}

TEST(Runtime, FillsTheContextWhenAsked) {
  Runtime rt(kModel, small(64));
  Request req = greedy("Once upon a time", -1);
  req.streams.resize(3);
  const Result r = rt.generate(req);
  const int p = static_cast<int>(r.prompt_tokens.size());
  for (const StreamResult& s : r.streams)
    EXPECT_EQ(s.tokens.size(), static_cast<size_t>((64 - p) / 3));
}

TEST(Runtime, AdaptersByName) {
  RuntimeOptions o = small();
  o.adapters = {{"a", Adapters::path(0)}};
  o.adapter_slots = 2;
  Runtime rt(kModel, o);
  EXPECT_EQ(rt.info().adapter_slots, 2);
  EXPECT_EQ(rt.info().adapter_max_rank, 4);
  rt.load_adapter("b", Adapters::path(1), 1.0f);
  EXPECT_EQ(rt.adapters(), (std::vector<std::string>{"a", "b"}));

  Request req = greedy("Once upon a time", 16);
  req.streams = {with_adapter("a"), with_adapter("b"), {}, with_adapter("a")};
  const Result r = rt.generate(req);
  EXPECT_EQ(r.timings.prompt_prefills, 3);
  EXPECT_EQ(r.streams[0].adapter, "a");
  EXPECT_EQ(r.streams[0].tokens, r.streams[3].tokens);
  EXPECT_NE(r.streams[0].tokens, r.streams[2].tokens);
  EXPECT_NE(r.streams[0].tokens, r.streams[1].tokens);
  for (int i = 0; i < 3; ++i) {
    Request one = req;
    one.streams = {req.streams[i]};
    EXPECT_EQ(r.streams[i].tokens, rt.generate(one).streams[0].tokens) << i;
  }

  // Unknown names fail before any work; unloading frees the name and slot.
  req.streams = {with_adapter("a"), with_adapter("formal")};
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("no adapter named 'formal' is loaded (loaded: a, b)"));
  EXPECT_THAT(error_of([&] { rt.load_adapter("a", Adapters::path(1)); }),
              HasSubstr("a: an adapter of this name is already loaded"));
  rt.unload_adapter("a");
  EXPECT_EQ(rt.adapters(), std::vector<std::string>{"b"});
  EXPECT_THAT(error_of([&] { rt.unload_adapter("a"); }),
              HasSubstr("no adapter named 'a' is loaded (loaded: b)"));
  rt.load_adapter("c", Adapters::path(0));
}

// A request may scale an adapter for itself only: scale 0 is the base
// model, the loaded scale comes back afterwards.
TEST(Runtime, PerRequestAdapterScale) {
  RuntimeOptions o = small();
  o.adapters = {{"a", Adapters::path(0)}};
  Runtime rt(kModel, o);
  const Request base = greedy("Once upon a time", 16);
  Request req = base;
  req.streams = {with_adapter("a")};
  const std::vector<int32_t> loaded = rt.generate(req).streams[0].tokens;
  ASSERT_NE(loaded, rt.generate(base).streams[0].tokens);

  req.streams[0].adapter_scale = 0.0f;
  EXPECT_EQ(rt.generate(req).streams[0].tokens, rt.generate(base).streams[0].tokens);
  req.streams[0].adapter_scale = 1.0f;
  EXPECT_EQ(rt.generate(req).streams[0].tokens, loaded);
  req.streams[0].adapter_scale.reset();
  EXPECT_EQ(rt.generate(req).streams[0].tokens, loaded) << "the loaded scale is restored";

  req.streams = {with_adapter("a"), with_adapter("a")};
  req.streams[0].adapter_scale = 0.5f;
  req.streams[1].adapter_scale = 0.25f;
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("adapter 'a' at scale 0.5 and 0.25 in one request"));
  req.streams = {{}};
  req.streams[0].adapter_scale = 0.5f;
  EXPECT_THAT(error_of([&] { rt.generate(req); }), HasSubstr("adapter_scale needs an adapter"));
}

TEST(Runtime, BadInputThrows) {
  EXPECT_THAT(error_of([] { Runtime(kModel + ".missing"); }),
              HasSubstr("stories260K.gguf.missing: cannot open"));
  RuntimeOptions o = small();
  o.threads = 0;
  EXPECT_THAT(error_of([&] { Runtime(kModel, o); }), HasSubstr("threads: must be 1..256, got 0"));
  o = small();
  o.weights = "int3";
  EXPECT_THAT(error_of([&] { Runtime(kModel, o); }), HasSubstr("unknown format 'int3'"));
  o = small();
  o.kv_type = "q8";
  EXPECT_THAT(error_of([&] { Runtime(kModel, o); }),
              HasSubstr("kv_type: unknown KV cache type 'q8' (expected f16 or f32)"));
  o = small();
  o.adapters = {{"a", "/no/such/adapter.gguf"}};
  EXPECT_THAT(error_of([&] { Runtime(kModel, o); }),
              HasSubstr("/no/such/adapter.gguf: cannot open"));

  Runtime rt(kModel, small(64));
  Request req = greedy("Once upon a time", 8);
  req.streams.resize(5);  // max_streams = 4
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("5 streams exceed the engine's capacity of 4"));
  req.streams.resize(2);
  req.n_predict = 60;
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("60 to generate exceed the context of 64"));
  req.n_predict = -2;
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("n_predict: must be -1 (fill the context) or >= 0, got -2"));
  req = greedy("", 4);
  req.add_bos = false;
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("prompt: is empty and no BOS token is added"));
  // No slots: the pool has room for no rank at all.
  EXPECT_THAT(error_of([&] { rt.load_adapter("a", Adapters::path(0)); }),
              HasSubstr("rank 4 exceeds the adapter pool's max rank 0"));
  // Still usable after every error.
  EXPECT_EQ(rt.generate(greedy("Once", 4)).streams[0].tokens.size(), 4u);
}

TEST(Runtime, SpeculationAutoFallsBackToPlainDecoding) {
  RuntimeOptions o = small();
  o.speculation.enabled = true;
  o.speculation.budget = 100000;  // does not fit any engine
  EXPECT_THAT(error_of([&] { Runtime(kModel, o); }), HasSubstr("ds2d budget: must be 1.."));
  o.speculation.fallback_to_plain = true;
  Runtime rt(kModel, o);
  const Result r = rt.generate(greedy("Once upon a time", 16));
  EXPECT_NE(r.speculation.fallback.find("ds2d budget"), std::string::npos) << r.speculation.fallback;
  EXPECT_EQ(r.speculation.trees, 0);
  Runtime plain(kModel, small());
  EXPECT_EQ(r.streams[0].tokens, plain.generate(greedy("Once upon a time", 16)).streams[0].tokens);
  // A forecast file for this model and a sane budget: no fallback.
  RuntimeOptions ok = small();
  ok.speculation.enabled = true;
  ok.speculation.fallback_to_plain = true;
  ok.speculation.forecasts = {test_data::source_path("models/stories260K.forecast.gguf")};
  EXPECT_TRUE(Runtime(kModel, ok).generate(greedy("Once upon a time", 8)).speculation.fallback.empty());
}

// No forecast named: the files beside the model and each adapter serve
// their streams (models/README.md), and the report names them.
TEST(Runtime, SpeculationFindsForecastFilesByName) {
  RuntimeOptions o = small();
  o.speculation.enabled = true;
  o.speculation.row_cost = 0;
  o.adapters = {{"pup", test_data::source_path("models/adapters/dog.gguf")}};
  Runtime rt(kModel, o);
  Request req = greedy("Once upon a time", 24);
  req.streams.resize(2);
  req.streams[1].adapter = "pup";
  const Result r = rt.generate(req);
  EXPECT_TRUE(r.speculation.forecasts_found);
  EXPECT_THAT(r.speculation.forecasts,
              ::testing::ElementsAre(test_data::source_path("models/stories260K.forecast-lora.gguf"),
                                     test_data::source_path("models/adapters/dog.forecast.gguf")));
  EXPECT_GT(r.speculation.tau, 1.5);
  // find_forecasts = false: n-gram drafts only.
  o.speculation.find_forecasts = false;
  o.adapters.clear();
  const Result none = Runtime(kModel, o).generate(greedy("Once upon a time", 8));
  EXPECT_FALSE(none.speculation.forecasts_found);
  EXPECT_THAT(none.speculation.forecasts, ::testing::ElementsAre(""));
}

TEST(Runtime, FinishReasonNames) {
  EXPECT_STREQ(to_string(FinishReason::kLength), "length");
  EXPECT_STREQ(to_string(FinishReason::kEndOfGeneration), "eog");
  EXPECT_STREQ(to_string(FinishReason::kStopString), "stop");
  EXPECT_STREQ(to_string(FinishReason::kCallback), "callback");
}

// log p(id) of a logits row, computed plainly in double.
double log_softmax(std::span<const float> logits, int32_t id) {
  double max = logits[0];
  for (float v : logits) max = std::max(max, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(v - max);
  return logits[id] - max - std::log(sum);
}

// Request::logprobs: the log-softmax of the model's raw logits for each
// generated token: within 1e-5 of the logits the same engine computes one
// token at a time (an EngineSource on an engine of the Runtime's options;
// rows are exact, so these are the logits the Runtime read), and close to
// the f32 reference pass (its weights are not the engine's packed ones).
// The alternatives come most likely first and, for greedy decoding, start
// with the chosen token.
TEST(Runtime, LogprobsAreTheLogSoftmaxOfTheModelsLogits) {
  Runtime rt(kModel, small());
  Request req = greedy("Once upon a time", 12);
  req.logprobs = 5;
  const Result r = rt.generate(req);
  const StreamResult& s = r.streams[0];
  ASSERT_EQ(s.logprobs.size(), s.tokens.size());
  const auto model = load_model(kModel);
  EngineOptions eo;
  eo.context = 256;
  eo.max_streams = 1;
  Engine engine(*model, eo);
  EngineSource source(engine, *model);
  ReferenceForward ref(*model, 256, KvType::kF16);
  std::span<const float> logits = source.advance(r.prompt_tokens, 0);
  std::vector<float> ref_logits = ref.forward_all(r.prompt_tokens);
  int pos = static_cast<int>(r.prompt_tokens.size());
  for (size_t t = 0; t < s.tokens.size(); ++t) {
    const GeneratedLogprob& lp = s.logprobs[t];
    EXPECT_EQ(lp.token, s.tokens[t]);
    EXPECT_EQ(lp.bytes, model->tokenizer->token_bytes(lp.token));
    EXPECT_NEAR(lp.logprob, log_softmax(logits, lp.token), 1e-5) << "token " << t;
    EXPECT_NEAR(lp.logprob, log_softmax(ref_logits, lp.token), 1e-3) << "token " << t;
    EXPECT_LT(lp.logprob, 0.0f);
    ASSERT_EQ(lp.top.size(), 5u);
    EXPECT_EQ(lp.top[0].token, lp.token) << "greedy picks the most likely token";
    EXPECT_EQ(lp.top[0].logprob, lp.logprob);
    for (size_t a = 1; a < lp.top.size(); ++a) {
      EXPECT_GE(lp.top[a - 1].logprob, lp.top[a].logprob);
      EXPECT_NE(lp.top[a].token, lp.token);
      EXPECT_EQ(lp.top[a].bytes, model->tokenizer->token_bytes(lp.top[a].token));
    }
    const std::vector<int32_t> fed = {lp.token};
    logits = source.advance(fed, pos);
    ref_logits = ref.forward_all(fed, pos);
    ++pos;
  }
  // Off by default: nothing reported.
  EXPECT_TRUE(rt.generate(greedy("Once upon a time", 4)).streams[0].logprobs.empty());
  req.logprobs = 0;
  const Result bare = rt.generate(req);
  ASSERT_EQ(bare.streams[0].logprobs.size(), s.tokens.size());
  EXPECT_TRUE(bare.streams[0].logprobs[0].top.empty());
  EXPECT_EQ(bare.streams[0].logprobs[0].logprob, s.logprobs[0].logprob);
  req.logprobs = 21;
  EXPECT_THAT(error_of([&] { rt.generate(req); }),
              HasSubstr("logprobs: must be -1 (off) or 0..20 alternatives, got 21"));
}

// DS2D verifies each token from the same logits row plain decoding reads,
// and rows never depend on their neighbours: the log-probabilities are the
// same bit for bit with and without speculation, and in every stream.
TEST(Runtime, LogprobsAreIdenticalWithDs2dAndAcrossStreams) {
  RuntimeOptions o = small();
  o.speculation.enabled = true;
  o.speculation.row_cost = 0;
  o.speculation.forecasts = {test_data::source_path("models/stories260K.forecast.gguf")};
  Runtime spec(kModel, o);
  Runtime plain(kModel, small());
  Request req = greedy("Once upon a time", 24);
  req.logprobs = 3;
  req.streams.resize(3);
  const Result a = spec.generate(req);
  EXPECT_GT(a.speculation.trees, 0);
  EXPECT_GT(a.speculation.tau, 1.0) << "the test needs drafts accepted";
  const Result b = plain.generate(req);
  auto same = [](const StreamResult& x, const StreamResult& y) {
    ASSERT_EQ(x.tokens, y.tokens);
    ASSERT_EQ(x.logprobs.size(), y.logprobs.size());
    for (size_t t = 0; t < x.logprobs.size(); ++t) {
      EXPECT_EQ(x.logprobs[t].token, y.logprobs[t].token);
      EXPECT_EQ(x.logprobs[t].logprob, y.logprobs[t].logprob) << "token " << t;
      ASSERT_EQ(x.logprobs[t].top.size(), 3u);
      ASSERT_EQ(y.logprobs[t].top.size(), 3u);
      for (size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(x.logprobs[t].top[k].token, y.logprobs[t].top[k].token);
        EXPECT_EQ(x.logprobs[t].top[k].logprob, y.logprobs[t].top[k].logprob);
      }
    }
  };
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    same(a.streams[i], b.streams[i]);
    same(a.streams[i], a.streams[0]);
  }
  // One stream alone: the same values again.
  req.streams.resize(1);
  same(plain.generate(req).streams[0], b.streams[0]);
}

}  // namespace
}  // namespace chorus
