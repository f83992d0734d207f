// Adapters in the step: a slot's delta equals merging it into the weights,
// rows of one step may use different adapters, scale 0 is the base model,
// and a bad adapter leaves the pool and the other adapters as they were.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_testing.h"
#include "util/error.h"
#include "util/half.h"

namespace chorus {
namespace {

using namespace chorus::testing;
using ::testing::HasSubstr;

// A random adapter whose entries are f16 values, so the pool holds them
// exactly and the merged model sees the same numbers.
LoraAdapter random_adapter(const ModelConfig& c, int rank, float alpha, uint64_t seed,
                           std::array<bool, kLoraTargets> targets) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-0.3f, 0.3f);
  auto f16 = [&] { return f16_to_f32(f32_to_f16(u(rng))); };
  LoraAdapter a;
  a.format = "test";
  a.architecture = "llama";
  a.alpha = alpha;
  a.max_rank = rank;
  a.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      if (!targets[t]) continue;
      LoraPair p;
      p.rank = rank;
      p.in = lora_target_in(c, static_cast<LoraTarget>(t));
      p.out = lora_target_out(c, static_cast<LoraTarget>(t));
      p.a.resize(static_cast<size_t>(p.rank) * p.in);
      p.b.resize(static_cast<size_t>(p.out) * p.rank);
      for (float& v : p.a) v = f16();
      for (float& v : p.b) v = f16();
      a.layers[l][t] = std::move(p);
    }
  }
  return a;
}

std::array<bool, kLoraTargets> only(LoraTarget t) {
  std::array<bool, kLoraTargets> targets{};
  targets[static_cast<int>(t)] = true;
  return targets;
}

const WeightView& projection(const LayerWeights& w, LoraTarget t) {
  const WeightView* views[] = {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down};
  return *views[static_cast<int>(t)];
}

// A copy of an f32 model whose projections are W + scale * B A (what an
// offline merge produces); the buffers live in `storage`.
std::unique_ptr<Model> merged_model(const Model& base, const LoraAdapter& a, float user_scale,
                                    std::vector<std::vector<float>>& storage) {
  auto m = std::make_unique<Model>();
  m->config = base.config;
  m->weights = base.weights;
  for (int l = 0; l < base.config.n_layers; ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto& p = a.layers[l][t];
      if (!p) continue;
      const WeightView& src = projection(base.weights.layers[l], static_cast<LoraTarget>(t));
      EXPECT_EQ(src.type, gguf::TensorType::kF32);
      std::vector<float> w(reinterpret_cast<const float*>(src.data),
                           reinterpret_cast<const float*>(src.data) + src.rows * src.cols);
      const float s = a.pair_scale(*p, user_scale);
      for (int o = 0; o < p->out; ++o) {
        for (int i = 0; i < p->in; ++i) {
          double d = 0;
          for (int j = 0; j < p->rank; ++j) {
            d += static_cast<double>(p->b[o * p->rank + j]) * p->a[j * p->in + i];
          }
          w[static_cast<size_t>(o) * p->in + i] += static_cast<float>(s * d);
        }
      }
      storage.push_back(std::move(w));
      auto& layer = m->weights.layers[l];
      WeightView* views[] = {&layer.wq, &layer.wk,     &layer.wv,  &layer.wo,
                             &layer.w_gate, &layer.w_up, &layer.w_down};
      views[t]->data = reinterpret_cast<const uint8_t*>(storage.back().data());
    }
  }
  return m;
}

EngineOptions lora_options(int slots, int max_rank) {
  EngineOptions o = small_options();
  o.weights = WeightFormat::kF32;
  o.output = OutputFormat::kF32;
  o.adapter_slots = slots;
  o.adapter_max_rank = max_rank;
  return o;
}

// Logits of the prompt in one chain step, then 4 greedy decode steps.
std::vector<float> run_prompt(Engine& e, int16_t adapter, int16_t stream = 0) {
  std::vector<Row> rows = chain(kPrompt, 0, stream);
  for (Row& r : rows) r.adapter = adapter;
  std::span<const float> out = e.step(rows);
  std::vector<float> all(out.begin(), out.end());
  const int n_vocab = e.config().n_vocab;
  int32_t token = argmax(logits_of(out, static_cast<int>(rows.size()) - 1, n_vocab));
  for (int pos = static_cast<int>(kPrompt.size()); pos < static_cast<int>(kPrompt.size()) + 4;
       ++pos) {
    Row r = single(token, pos, stream);
    r.adapter = adapter;
    out = e.step(std::span<const Row>(&r, 1));
    all.insert(all.end(), out.begin(), out.end());
    token = argmax(out);
  }
  return all;
}

class EngineLoraTarget : public ::testing::TestWithParam<LoraTarget> {};

INSTANTIATE_TEST_SUITE_P(Projections, EngineLoraTarget,
                         ::testing::Values(LoraTarget::kQ, LoraTarget::kK, LoraTarget::kV,
                                           LoraTarget::kO, LoraTarget::kGate, LoraTarget::kUp,
                                           LoraTarget::kDown),
                         [](const auto& info) { return std::string(lora_target_name(info.param)); });

TEST_P(EngineLoraTarget, EqualsMergedWeights) {
  auto base = load_stories();
  const LoraAdapter adapter = random_adapter(base->config, 4, 8.0f, 11, only(GetParam()));
  std::vector<std::vector<float>> storage;
  auto merged = merged_model(*base, adapter, 1.5f, storage);

  Engine with_adapter(*base, lora_options(2, 8));
  const int slot = with_adapter.adapters().load("test", adapter, 1.5f);
  Engine merged_engine(*merged, lora_options(0, 0));
  Engine plain(*base, lora_options(0, 0));

  const std::vector<float> got = run_prompt(with_adapter, static_cast<int16_t>(slot));
  const std::vector<float> want = run_prompt(merged_engine, -1);
  const std::vector<float> base_logits = run_prompt(plain, -1);
  EXPECT_LT(max_rel_diff(got, want), 2e-5);
  // The adapter must matter, or the comparison above proves nothing.
  EXPECT_GT(max_rel_diff(base_logits, want), 1e-2);
}

TEST(EngineLora, AllTargetsAtOnceEqualMergedWeights) {
  auto base = load_stories();
  const LoraAdapter adapter = random_adapter(base->config, 8, 16.0f, 5, {1, 1, 1, 1, 1, 1, 1});
  std::vector<std::vector<float>> storage;
  auto merged = merged_model(*base, adapter, 1.0f, storage);
  Engine with_adapter(*base, lora_options(1, 8));
  with_adapter.adapters().load("all", adapter);
  Engine merged_engine(*merged, lora_options(0, 0));
  EXPECT_LT(max_rel_diff(run_prompt(with_adapter, 0), run_prompt(merged_engine, -1)), 2e-5);
}

TEST(EngineLora, MixedBatchEqualsEachRowAlone) {
  auto base = load_stories();
  const ModelConfig& c = base->config;
  EngineOptions o = lora_options(3, 16);
  o.max_streams = 4;
  o.max_rows = 32;
  Engine mixed(*base, o);
  const int slots[] = {mixed.adapters().load("a", random_adapter(c, 4, 8.0f, 1, {1, 1, 1, 1, 1, 1, 1})),
                       mixed.adapters().load("b", random_adapter(c, 16, 16.0f, 2, {1, 0, 1, 0, 0, 1, 1})),
                       mixed.adapters().load("c", random_adapter(c, 8, 4.0f, 3, {0, 1, 0, 1, 1, 0, 0}))};
  const int16_t adapter_of_stream[] = {static_cast<int16_t>(slots[0]), -1,
                                       static_cast<int16_t>(slots[1]),
                                       static_cast<int16_t>(slots[2])};
  // Prompts of the four streams interleaved in one step, then one decode
  // step with a row per stream.
  std::vector<Row> rows;
  std::vector<int> last_row(4);
  for (size_t i = 0; i < kPrompt.size(); ++i) {
    for (int16_t s = 0; s < 4; ++s) {
      Row r = single(kPrompt[i], static_cast<int>(i), s);
      r.adapter = adapter_of_stream[s];
      r.parent = i == 0 ? -1 : last_row[s];
      last_row[s] = static_cast<int>(rows.size());
      rows.push_back(r);
    }
  }
  const std::span<const float> out = mixed.step(rows);
  const std::vector<float> prefill(out.begin(), out.end());
  const int n_vocab = c.n_vocab;
  std::vector<Row> decode;
  for (int16_t s = 0; s < 4; ++s) {
    Row r = single(argmax(logits_of(prefill, last_row[s], n_vocab)),
                   static_cast<int>(kPrompt.size()), s);
    r.adapter = adapter_of_stream[s];
    decode.push_back(r);
  }
  const std::span<const float> out2 = mixed.step(decode);
  const std::vector<float> decoded(out2.begin(), out2.end());

  for (int16_t s = 0; s < 4; ++s) {
    SCOPED_TRACE(::testing::Message() << "stream " << s);
    Engine alone(*base, lora_options(3, 16));
    // Same slots as in the mixed engine, so rows name the same adapters.
    alone.adapters().load("a", random_adapter(c, 4, 8.0f, 1, {1, 1, 1, 1, 1, 1, 1}));
    alone.adapters().load("b", random_adapter(c, 16, 16.0f, 2, {1, 0, 1, 0, 0, 1, 1}));
    alone.adapters().load("c", random_adapter(c, 8, 4.0f, 3, {0, 1, 0, 1, 1, 0, 0}));
    std::vector<Row> own = chain(kPrompt, 0);
    for (Row& r : own) r.adapter = adapter_of_stream[s];
    const std::span<const float> p = alone.step(own);
    const std::vector<float> own_prefill(p.begin(), p.end());
    for (size_t i = 0; i < kPrompt.size(); ++i) {
      EXPECT_LT(max_rel_diff(logits_of(prefill, static_cast<int>(i * 4 + s), n_vocab),
                             logits_of(own_prefill, static_cast<int>(i), n_vocab)),
                1e-5)
          << "prompt position " << i;
    }
    Row r = decode[s];
    r.stream = 0;
    EXPECT_LT(max_rel_diff(logits_of(decoded, s, n_vocab), alone.step(std::span<const Row>(&r, 1))),
              1e-5);
  }
}

TEST(EngineLora, ScaleZeroIsTheBaseModelExactly) {
  auto base = load_stories();
  Engine with_adapter(*base, lora_options(1, 8));
  const int slot =
      with_adapter.adapters().load("zero", random_adapter(base->config, 8, 16.0f, 9, {1, 1, 1, 1, 1, 1, 1}), 0.0f);
  Engine plain(*base, lora_options(0, 0));
  EXPECT_EQ(run_prompt(with_adapter, static_cast<int16_t>(slot)), run_prompt(plain, -1));
  // Rescaling needs no reload and takes effect at the next step.
  with_adapter.adapters().set_scale(slot, 1.0f);
  with_adapter.kv_cache().clear();
  EXPECT_NE(run_prompt(with_adapter, static_cast<int16_t>(slot)), run_prompt(plain, -1));
}

TEST(EngineLora, EmbeddingOverrideReplacesTheToken) {
  auto base = load_stories();
  Engine a(*base, lora_options(0, 0));
  Engine b(*base, lora_options(0, 0));
  std::vector<float> embedding(base->config.dim);
  const WeightView& e = base->weights.token_embedding;
  std::copy_n(reinterpret_cast<const float*>(e.row(kPrompt[1])), base->config.dim, embedding.data());
  std::vector<Row> with_token = chain(kPrompt, 0);
  std::vector<Row> with_vector = with_token;
  with_vector[1].token = 0;
  with_vector[1].embedding = embedding.data();
  const std::span<const float> x = a.step(with_token);
  const std::vector<float> want(x.begin(), x.end());
  const std::span<const float> y = b.step(with_vector);
  EXPECT_EQ(std::vector<float>(y.begin(), y.end()), want);
}

TEST(EngineLora, BadAdaptersAreRejectedAndLeaveThePoolWorking) {
  auto base = load_stories();
  const ModelConfig& c = base->config;
  Engine e(*base, lora_options(2, 8));
  AdapterPool& pool = e.adapters();
  const int good = pool.load("good", random_adapter(c, 4, 8.0f, 1, {1, 1, 1, 1, 1, 1, 1}));
  const std::vector<float> before = run_prompt(e, static_cast<int16_t>(good));

  auto expect_error = [](auto&& fn, const std::string& text) {
    try {
      fn();
      ADD_FAILURE() << "no error; expected one mentioning '" << text << "'";
    } catch (const Error& err) {
      EXPECT_THAT(err.what(), HasSubstr(text));
    }
  };
  expect_error([&] { pool.load("big", random_adapter(c, 16, 8.0f, 2, {1, 0, 0, 0, 0, 0, 0})); },
               "exceeds the adapter pool's max rank 8");
  expect_error([&] { pool.load("good", random_adapter(c, 4, 8.0f, 2, {1, 0, 0, 0, 0, 0, 0})); },
               "already loaded");
  LoraAdapter wrong_shape = random_adapter(c, 4, 8.0f, 3, only(LoraTarget::kV));
  wrong_shape.layers[2][static_cast<int>(LoraTarget::kV)]->out = c.dim;
  expect_error([&] { pool.load("shape", wrong_shape); }, "layer 2 v: shape");
  LoraAdapter deeper = random_adapter(c, 4, 8.0f, 4, only(LoraTarget::kQ));
  deeper.layers.resize(c.n_layers + 1);
  expect_error([&] { pool.load("deep", deeper); }, "layers");
  expect_error([&] { pool.slot_of("missing"); }, "no adapter named 'missing' is loaded (loaded: good)");
  pool.load("second", random_adapter(c, 2, 8.0f, 5, only(LoraTarget::kUp)));
  expect_error([&] { pool.load("third", random_adapter(c, 2, 8.0f, 6, only(LoraTarget::kUp))); },
               "all 2 adapter slots are in use");
  Row r = single(1, 0);
  r.adapter = 5;
  expect_error([&] { e.step(std::span<const Row>(&r, 1)); }, "adapter = 5 is not a loaded slot");

  // Unloading frees the slot for another adapter; "good" is unchanged.
  pool.unload(pool.slot_of("second"));
  EXPECT_EQ(pool.find("second"), -1);
  pool.load("third", random_adapter(c, 2, 8.0f, 6, only(LoraTarget::kUp)));
  e.kv_cache().clear();
  EXPECT_EQ(run_prompt(e, static_cast<int16_t>(good)), before);
}

TEST(EngineLora, PoolOptionsAreChecked) {
  auto base = load_stories();
  EXPECT_THROW(Engine(*base, lora_options(1, 0)), Error);
  EXPECT_THROW(Engine(*base, lora_options(-1, 8)), Error);
  Engine e(*base, lora_options(2, 32));
  EXPECT_EQ(e.adapters().slots(), 2);
  EXPECT_EQ(e.adapters().max_rank(), 32);
  const int slot = e.adapters().load("r4", random_adapter(base->config, 4, 8.0f, 1, only(LoraTarget::kDown)));
  const ModelConfig& c = base->config;
  // A rank-4 pair on every layer's down projection: 4 x (ffn + dim) halves each.
  EXPECT_EQ(e.adapters().adapter_bytes(slot), size_t{2} * 4 * (c.ffn_dim + c.dim) * c.n_layers);
}

}  // namespace
}  // namespace chorus

namespace chorus {
namespace {

using namespace chorus::testing;

// The same synthetic adapter as a PEFT directory and as a GGUF file: the
// step gives identical logits for both, and they equal the merged weights.
TEST(EngineLoraFiles, PeftAndGgufFormsGiveIdenticalLogits) {
  auto base = load_stories();
  const std::string dir = ::testing::TempDir() + "/engine_lora_files";
  std::filesystem::create_directories(dir);
  SyntheticLoraSpec spec;
  spec.rank = 8;
  spec.alpha = 32.0f;
  spec.seed = 42;
  write_synthetic_lora_peft(dir + "/peft", base->config, spec);
  write_synthetic_lora_gguf(dir + "/adapter.gguf", base->config, spec);
  const LoraAdapter peft = load_lora(dir + "/peft", base->config);
  const LoraAdapter gguf = load_lora(dir + "/adapter.gguf", base->config);
  EXPECT_EQ(peft.format, "peft");
  EXPECT_EQ(gguf.format, "gguf");

  Engine e(*base, lora_options(2, 8));
  const int16_t p = static_cast<int16_t>(e.adapters().load("peft", peft));
  const int16_t g = static_cast<int16_t>(e.adapters().load("gguf", gguf));
  const std::vector<float> from_peft = run_prompt(e, p, 0);
  e.kv_cache().clear();
  const std::vector<float> from_gguf = run_prompt(e, g, 0);
  EXPECT_EQ(from_peft, from_gguf);

  std::vector<std::vector<float>> storage;
  auto merged = merged_model(*base, gguf, 1.0f, storage);
  Engine merged_engine(*merged, lora_options(0, 0));
  EXPECT_LT(max_rel_diff(from_gguf, run_prompt(merged_engine, -1)), 2e-5);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace chorus
