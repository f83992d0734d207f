// The multi-stream scheduler and the plain decode loop on stories260K: every
// stream must produce exactly what it produces alone, the prompt must sit in
// the cache once per adapter, and bad requests must fail before any step.
#include "decode/multi_stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "decode/generate.h"
#include "decode/logits_source.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/error.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf";

EngineOptions options(int max_rows = 64, int max_streams = 8, int context = 256) {
  EngineOptions o;
  o.max_rows = max_rows;
  o.max_streams = max_streams;
  o.context = context;
  o.threads = 2;
  return o;
}

SamplerParams greedy() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

SamplerParams sampled(uint64_t seed) {
  SamplerParams p;
  p.temperature = 0.9f;
  p.seed = seed;
  return p;
}

class MultiStream : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(kModel);
    prompt_ = model_->tokenizer->encode("Once upon a time, there was a little", true);
  }

  MultiStreamRequest request(std::vector<StreamSpec> streams, int n_predict) const {
    MultiStreamRequest r;
    r.prompt = prompt_;
    r.streams = std::move(streams);
    r.limits.n_predict = n_predict;
    r.limits.ignore_eos = true;
    r.limits.tokenizer = model_->tokenizer.get();
    return r;
  }

  // The stream alone: generate() on a fresh single-stream engine, from the
  // prompt + suffix (+ the forced first token, which then leads the output).
  std::vector<int32_t> alone(const MultiStreamRequest& req, const StreamSpec& s,
                             int32_t forced_first = -1) {
    Engine engine(*model_, options(64, 1));
    EngineSource source(engine, *model_);
    std::vector<int32_t> prompt = req.prompt;
    prompt.insert(prompt.end(), s.suffix.begin(), s.suffix.end());
    std::vector<int32_t> out;
    if (forced_first >= 0) {
      prompt.push_back(forced_first);
      out.push_back(forced_first);
    }
    GenerateParams gp;
    gp.n_predict = req.limits.n_predict - static_cast<int>(out.size());
    gp.ignore_eos = req.limits.ignore_eos;
    gp.sampler = s.sampler;
    generate(source, prompt, gp, [&](int32_t id) {
      out.push_back(id);
      return true;
    });
    return out;
  }

  // The stream alone through the scheduler, on a fresh engine with the same
  // adapters: the reference for streams with adapters (generate() has none).
  MultiStreamResult alone_scheduled(const MultiStreamRequest& req, const StreamSpec& s) {
    Engine engine(*model_, with_adapters(options(64, 1)));
    load_adapters(engine);
    MultiStreamRequest one = req;
    one.streams = {s};
    return run_streams(engine, one, [](int, int32_t) { return true; });
  }

  // Two random adapters, "a" and "b", written as GGUF files and loaded.
  EngineOptions with_adapters(EngineOptions o) const {
    o.adapter_slots = 2;
    o.adapter_max_rank = 4;
    return o;
  }
  void load_adapters(Engine& engine) {
    if (loras_.empty()) {
      const fs::path dir =
          fs::path(::testing::TempDir()) / ("chorus_multi_stream_" + std::to_string(::getpid()));
      fs::create_directories(dir);
      for (uint64_t seed : {1, 2}) {
        SyntheticLoraSpec spec;
        spec.rank = 4;
        spec.alpha = 8;
        spec.seed = seed;
        spec.stddev = 0.1f;
        const std::string path = (dir / ("lora" + std::to_string(seed) + ".gguf")).string();
        write_synthetic_lora_gguf(path, model_->config, spec);
        loras_.push_back(load_lora(path, model_->config));
      }
      fs::remove_all(dir);
    }
    ASSERT_EQ(engine.adapters().load("a", loras_[0]), 0);
    ASSERT_EQ(engine.adapters().load("b", loras_[1]), 1);
  }

  std::unique_ptr<Model> model_;
  std::vector<int32_t> prompt_;
  std::vector<LoraAdapter> loras_;
};

MultiStreamResult run(Engine& engine, const MultiStreamRequest& req) {
  return run_streams(engine, req, [](int, int32_t) { return true; });
}

TEST_F(MultiStream, GreedyTopKFirstTokensMatchTheStreamsAlone) {
  Engine engine(*model_, options());
  std::vector<StreamSpec> streams(4);
  for (int i = 0; i < 4; ++i) {
    streams[i].sampler = greedy();
    streams[i].first_token_rank = i;
  }
  const MultiStreamRequest req = request(streams, 24);
  const MultiStreamResult r = run(engine, req);
  ASSERT_EQ(r.streams.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const std::vector<int32_t>& got = r.streams[i].tokens;
    ASSERT_EQ(got.size(), 24u) << "stream " << i;
    EXPECT_EQ(got, alone(req, streams[i], got[0])) << "stream " << i;
    EXPECT_EQ(r.streams[i].stop_reason, StopReason::kLength);
    for (int j = 0; j < i; ++j) EXPECT_NE(got[0], r.streams[j].tokens[0]) << "distinct firsts";
  }
  // Stream 0 starts with the argmax, i.e. it is plain greedy decoding.
  EXPECT_EQ(r.streams[0].tokens, alone(req, streams[0]));
  EXPECT_EQ(r.stats.prompt_groups, 1);
  EXPECT_EQ(r.stats.n_generated, 4 * 24);
}

TEST_F(MultiStream, GreedySuffixesMatchTheStreamsAlone) {
  Engine engine(*model_, options());
  const Tokenizer& tok = *model_->tokenizer;
  std::vector<StreamSpec> streams(3);
  streams[0].suffix = tok.encode(" girl named", false);
  streams[1].suffix = tok.encode(" dog who liked to", false);
  // streams[2]: no suffix, continues the prompt itself.
  for (StreamSpec& s : streams) s.sampler = greedy();
  const MultiStreamRequest req = request(streams, 20);
  const MultiStreamResult r = run(engine, req);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.streams[i].tokens, alone(req, streams[i])) << "stream " << i;
    EXPECT_EQ(r.streams[i].n_prompt, static_cast<int>(prompt_.size() + streams[i].suffix.size()));
  }
  EXPECT_NE(r.streams[0].tokens, r.streams[1].tokens);
}

TEST_F(MultiStream, SeededStreamsMatchTheirSingleRuns) {
  Engine engine(*model_, options());
  std::vector<StreamSpec> streams(4);
  for (int i = 0; i < 4; ++i) streams[i].sampler = sampled(11 + i);
  const MultiStreamRequest req = request(streams, 30);
  const MultiStreamResult r = run(engine, req);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(r.streams[i].tokens, alone(req, streams[i])) << "stream " << i;
  }
  EXPECT_NE(r.streams[0].tokens, r.streams[1].tokens);
}

TEST_F(MultiStream, ChunksToSmallStepsWithTheSameResult) {
  // 3 rows per step: the prompt, the suffixes and even one decode round
  // (5 streams) each take several steps.
  std::vector<StreamSpec> streams(5);
  for (int i = 0; i < 5; ++i) {
    streams[i].sampler = sampled(3 + i);
    if (i % 2) streams[i].suffix = model_->tokenizer->encode(" cat and a", false);
  }
  const MultiStreamRequest req = request(streams, 12);
  Engine wide(*model_, options());
  Engine narrow(*model_, options(3));
  const MultiStreamResult a = run(wide, req);
  const MultiStreamResult b = run(narrow, req);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.streams[i].tokens, b.streams[i].tokens) << i;
  EXPECT_GT(b.stats.prefill_steps, a.stats.prefill_steps);
}

TEST_F(MultiStream, KvHoldsThePromptOnceAndEachContinuation) {
  Engine engine(*model_, options());
  const KvCache& kv = engine.kv_cache();
  const int k = 4, n = 16;
  const int p = static_cast<int>(prompt_.size());
  std::vector<StreamSpec> streams(k);
  for (int i = 0; i < k; ++i) {
    streams[i].sampler = greedy();
    streams[i].first_token_rank = i;
  }
  streams[1].suffix = {300, 301, 302};
  const MultiStreamRequest req = request(streams, n);
  const MultiStreamResult r = run(engine, req);
  // Each stream fed its suffix and all its tokens but the last.
  const int continuations = 3 + k * (n - 1);
  EXPECT_EQ(kv.n_cells_used(), p + continuations);
  EXPECT_EQ(kv.bytes_used(), static_cast<size_t>(p + continuations) * kv.bytes_per_cell());
  EXPECT_EQ(r.stats.kv_cells_used, p + continuations);
  EXPECT_EQ(r.stats.kv_bytes_used, kv.bytes_used());
  // k separate runs would hold the prompt k times.
  EXPECT_LT(kv.bytes_used(), static_cast<size_t>(k * p + continuations) * kv.bytes_per_cell());
  for (int i = 0; i < k; ++i) {
    EXPECT_EQ(kv.stream_length(i), p + static_cast<int>(streams[i].suffix.size()) + n - 1);
    // The prompt's cells are the same physical cells in every stream.
    for (int c = 0; c < p; ++c) EXPECT_EQ(kv.stream_cells(i)[c], kv.stream_cells(0)[c]);
  }
}

TEST_F(MultiStream, StreamsFinishingEarlyDoNotDisturbTheOthers) {
  Engine engine(*model_, options());
  std::vector<StreamSpec> streams(4);
  for (int i = 0; i < 4; ++i) streams[i].sampler = sampled(40 + i);
  MultiStreamRequest req = request(streams, 25);
  // Stream i is stopped by the caller after 3 * (i + 1) tokens; stream 3 runs out.
  std::vector<int> seen(4, 0);
  const MultiStreamResult r =
      run_streams(engine, req, [&](int i, int32_t) { return ++seen[i] < 3 * (i + 1) || i == 3; });
  for (int i = 0; i < 4; ++i) {
    const std::vector<int32_t> full = alone(req, streams[i]);
    const size_t len = i == 3 ? 25 : 3 * (i + 1);
    ASSERT_EQ(r.streams[i].tokens.size(), len) << i;
    EXPECT_EQ(r.streams[i].tokens, std::vector<int32_t>(full.begin(), full.begin() + len)) << i;
    EXPECT_EQ(r.streams[i].stop_reason, i == 3 ? StopReason::kLength : StopReason::kCallback);
  }
  EXPECT_LE(r.streams[0].last_token_seconds, r.streams[3].last_token_seconds);
}

TEST_F(MultiStream, EndOfGenerationEndsAStream) {
  // stories260K separates stories with BOS and never says EOS, so a
  // tokenizer that also counts "." as end of generation stands in.
  Vocab vocab = model_->tokenizer->vocab();
  const int32_t dot = model_->tokenizer->token_id(".");
  ASSERT_GE(dot, 0);
  vocab.eog.push_back(dot);
  const Tokenizer tok(std::move(vocab));
  Engine engine(*model_, options());
  std::vector<StreamSpec> streams(3);
  for (int i = 0; i < 3; ++i) {
    streams[i].sampler = greedy();
    streams[i].first_token_rank = i;
  }
  MultiStreamRequest req = request(streams, 40);
  req.limits.ignore_eos = false;
  req.limits.tokenizer = &tok;
  const MultiStreamResult r = run(engine, req);
  int ended = 0;
  for (int i = 0; i < 3; ++i) {
    // Alone, ignoring EOS: the stream's tokens up to its first ".".
    std::vector<int32_t> full = alone(request(streams, 40), streams[i], r.streams[i].tokens.at(0));
    const auto end = std::find(full.begin(), full.end(), dot);
    EXPECT_EQ(r.streams[i].tokens, std::vector<int32_t>(full.begin(), end)) << i;
    EXPECT_EQ(r.streams[i].stop_reason,
              end == full.end() ? StopReason::kLength : StopReason::kEndOfGeneration);
    ended += end != full.end();
  }
  EXPECT_GT(ended, 0) << "stories260K ends a sentence within 40 tokens";
}

TEST_F(MultiStream, ZeroTokensRunsNoDecode) {
  Engine engine(*model_, options());
  std::vector<StreamSpec> streams(2);
  const MultiStreamResult r = run(engine, request(streams, 0));
  for (const StreamOutcome& s : r.streams) EXPECT_TRUE(s.tokens.empty());
  EXPECT_EQ(r.stats.n_generated, 0);
}

TEST_F(MultiStream, TheDecodeLoopIsPluggable) {
  Engine engine(*model_, options());
  std::vector<StreamSpec> streams(2);
  for (StreamSpec& s : streams) s.sampler = greedy();
  int calls = 0;
  const DecodeLoop loop = [&](Engine& e, std::span<StreamState> s, const DecodeLimits& l,
                              const OnStreamToken& cb) {
    ++calls;
    for (const StreamState& st : s) {
      EXPECT_EQ(st.n_generated, 1);
      EXPECT_EQ(st.pos, static_cast<int>(prompt_.size()));
      EXPECT_EQ(st.history.back(), st.next);
    }
    decode_plain(e, s, l, cb);
  };
  const MultiStreamRequest req = request(streams, 5);
  const MultiStreamResult r = run_streams(
      engine, req, [](int, int32_t) { return true; }, loop);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.streams[1].tokens.size(), 5u);
}

// Every bad request throws before the first step: the cache is untouched.
TEST_F(MultiStream, BadRequestsFailBeforeAnyWork) {
  Engine engine(*model_, with_adapters(options(64, 4, 64)));
  load_adapters(engine);
  engine.adapters().unload(1);
  KvCache& kv = engine.kv_cache();
  // Streams 0 and 3 share a cell; a request that runs would release it,
  // one that fails must not.
  const std::vector<Row> rows = {Row{.token = 1, .pos = 0, .stream = 0}};
  engine.step(rows);
  kv.fork_stream(0, 3);
  const int used = kv.n_cells_used();

  auto expect_error = [&](const MultiStreamRequest& req, const std::string& fragment) {
    try {
      run(engine, req);
      ADD_FAILURE() << "no error, expected '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_EQ(kv.n_cells_used(), used);
    EXPECT_EQ(kv.stream_length(0), 1);
    EXPECT_EQ(kv.stream_length(3), 1);
  };
  std::vector<StreamSpec> two(2);
  expect_error(request({}, 4), "at least one stream");
  expect_error(request(std::vector<StreamSpec>(5), 4),
               "5 streams exceed the engine's capacity of 4");
  MultiStreamRequest r = request(two, 4);
  r.streams[1].adapter = 1;
  expect_error(r, "adapter slot 1 is not loaded");
  r.streams[1].adapter = 7;
  expect_error(r, "adapter slot 7 is not loaded");
  expect_error(request(two, 64), "exceed the context of 64");
  // Each stream fits the positions, but not all of them the cells.
  expect_error(request(std::vector<StreamSpec>(4), 30), "KV cells");
  r = request(two, 4);
  r.prompt.clear();
  expect_error(r, "prompt");
  r = request(two, 4);
  r.streams[0].suffix = {5, 512};
  expect_error(r, "outside the vocabulary");
  r = request(two, 4);
  r.streams[1].first_token_rank = 512;
  expect_error(r, "first_token_rank");
  r = request(two, 4);
  r.streams[1].sampler.temperature = -1;
  expect_error(r, "stream 1");
  r = request(two, -1);
  expect_error(r, "n_predict");
}

// --- Adapters: streams with different adapters need their own prompt KV. ---

TEST_F(MultiStream, PerStreamAdaptersMatchTheStreamsAlone) {
  Engine engine(*model_, with_adapters(options()));
  load_adapters(engine);
  std::vector<StreamSpec> streams(5);
  const int adapters[] = {0, 1, -1, 0, 1};
  for (int i = 0; i < 5; ++i) {
    streams[i].adapter = adapters[i];
    streams[i].sampler = i < 3 ? greedy() : sampled(7 + i);
  }
  streams[3].suffix = model_->tokenizer->encode(" boy", false);
  const MultiStreamRequest req = request(streams, 16);
  const MultiStreamResult r = run(engine, req);
  EXPECT_EQ(r.stats.prompt_groups, 3);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r.streams[i].tokens, alone_scheduled(req, streams[i]).streams[0].tokens) << i;
  }
  // The base-model stream is plain greedy decoding; the adapters change the text.
  EXPECT_EQ(r.streams[2].tokens, alone(req, streams[2]));
  EXPECT_NE(r.streams[0].tokens, r.streams[2].tokens);
  EXPECT_NE(r.streams[0].tokens, r.streams[1].tokens);

  // One prompt per adapter group, then each stream's continuation.
  const KvCache& kv = engine.kv_cache();
  const int p = static_cast<int>(prompt_.size());
  EXPECT_EQ(kv.n_cells_used(), 3 * p + static_cast<int>(streams[3].suffix.size()) + 5 * 15);
  EXPECT_EQ(kv.stream_cells(3)[0], kv.stream_cells(0)[0]);  // same adapter: shared
  EXPECT_NE(kv.stream_cells(1)[0], kv.stream_cells(0)[0]);  // other adapter: own copy
}

}  // namespace
}  // namespace chorus
