// The step's promise on INT4 weights, bit for bit: a row's logits and the
// K/V it leaves in the cache do not depend on the rest of its step. Here
// every token of several streams (some with an adapter) is first fed alone,
// one row per step, on one thread; then the same tokens go through random
// mixed steps (prefill chunks, tentative DS2D-like chains committed
// afterwards, decoy branches and forecast rows that are dropped, rows of
// all streams interleaved) with 1 to 4 threads. Every logit and every K/V
// value must be the same bits as when fed alone.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/engine.h"
#include "engine/engine_testing.h"
#include "model/lora.h"
#include "model/synthetic.h"

namespace chorus {
namespace {

using namespace chorus::testing;

constexpr int kStreams = 4;
constexpr int kTokens = 28;  // per stream

struct Plan {
  std::vector<std::vector<int32_t>> tokens;  // [stream]
  std::vector<int16_t> adapter;              // [stream]: slot or -1
};

// logits[stream][pos] of each token fed alone.
using Logits = std::vector<std::vector<std::vector<float>>>;

// Index of the first element whose bits differ, or -1.
int64_t first_difference(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  }
  return -1;
}

// Every layer's K and V of a stream's committed cells, in position order.
std::vector<float> stream_kv(const Engine& e, int stream) {
  const KvCache& kv = e.kv_cache();
  std::vector<float> out;
  for (int32_t cell : kv.stream_cells_before(stream, e.options().context)) {
    for (int l = 0; l < e.config().n_layers; ++l) {
      const size_t at = out.size();
      out.resize(at + 2 * kv.kv_dim());
      kv.read_key(l, cell, out.data() + at);
      kv.read_value(l, cell, out.data() + at + kv.kv_dim());
    }
  }
  return out;
}

class EngineInvarianceTest : public ::testing::Test {
 protected:
  EngineOptions options(int threads) const {
    EngineOptions o = small_options();
    o.max_rows = 64;
    o.max_streams = kStreams;
    o.threads = threads;
    o.weights = weights_;
    o.output = output_;
    o.kv_type = kv_type_;
    o.adapter_slots = static_cast<int>(adapters_.size());
    o.adapter_max_rank = 0;
    for (const LoraAdapter& a : adapters_) o.adapter_max_rank = std::max(o.adapter_max_rank, a.max_rank);
    return o;
  }

  std::unique_ptr<Engine> make_engine(int threads) const {
    auto e = std::make_unique<Engine>(*model_, options(threads));
    for (size_t i = 0; i < adapters_.size(); ++i) e->adapters().load(fmt::format("a{}", i), adapters_[i]);
    return e;
  }

  Plan plan(uint64_t seed) const {
    std::mt19937 rng(seed);
    Plan p;
    std::uniform_int_distribution<int32_t> token(3, model_->config.n_vocab - 1);
    for (int s = 0; s < kStreams; ++s) {
      std::vector<int32_t> t = {1};
      while (t.size() < kTokens) t.push_back(token(rng));
      p.tokens.push_back(t);
      p.adapter.push_back(static_cast<int16_t>(s % (adapters_.size() + 1)) - 1);  // -1: base model
    }
    return p;
  }

  // Each token alone: one row per step, one thread.
  Logits feed_alone(const Plan& p, std::vector<std::vector<float>>* kv) const {
    auto e = make_engine(1);
    Logits out(kStreams);
    for (int s = 0; s < kStreams; ++s) {
      for (int pos = 0; pos < kTokens; ++pos) {
        Row r = single(p.tokens[s][pos], pos, static_cast<int16_t>(s));
        r.adapter = p.adapter[s];
        std::span<const float> l = e->step({&r, 1});
        out[s].emplace_back(l.begin(), l.end());
      }
      kv->push_back(stream_kv(*e, s));
    }
    return out;
  }

  // The same tokens in random mixed steps; checks every real row's logits
  // and, at the end, every stream's K/V against the rows fed alone.
  void feed_mixed(const Plan& p, const Logits& alone, const std::vector<std::vector<float>>& alone_kv,
                  int threads, uint64_t seed) {
    auto e = make_engine(threads);
    std::mt19937 rng(seed);
    auto coin = [&](double p_true) { return std::bernoulli_distribution(p_true)(rng); };
    std::uniform_int_distribution<int32_t> token(3, model_->config.n_vocab - 1);
    const std::vector<float> forecast = [&] {
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> v(model_->config.dim);
      for (float& x : v) x = d(rng);
      return v;
    }();
    std::vector<int> next(kStreams, 0);
    int steps = 0, checked = 0;
    while (true) {
      // Per stream, its rows of this step (parents as indices into the
      // stream's own list) and which are real tokens.
      struct Planned {
        Row row;
        int local_parent;
        bool real;
      };
      std::vector<std::vector<Planned>> per(kStreams);
      for (int s = 0; s < kStreams; ++s) {
        if (next[s] >= kTokens || !coin(0.8)) continue;
        const int k = std::min(kTokens - next[s], std::uniform_int_distribution<int>(1, 7)(rng));
        const bool tentative = coin(0.5);  // a DS2D path, committed after the step
        int last_real = -1;
        for (int j = 0; j < k; ++j) {
          Row r;
          r.token = p.tokens[s][next[s] + j];
          r.pos = next[s] + j;
          r.stream = static_cast<int16_t>(s);
          r.adapter = p.adapter[s];
          r.want_logits = true;
          r.tentative = tentative;
          const int parent = last_real;
          last_real = static_cast<int>(per[s].size());
          per[s].push_back({r, parent, true});
          // A decoy sibling (a rejected DS2D candidate) with a child.
          if (coin(0.3)) {
            Row d = r;
            d.token = token(rng);
            d.tentative = true;
            per[s].push_back({d, parent, false});
            Row c = d;
            c.pos += 1;
            per[s].push_back({c, static_cast<int>(per[s].size()) - 1, false});
          }
        }
        // A forecast row below the chain's last real row.
        if (coin(0.5)) {
          Row f = per[s][last_real].row;
          f.pos += 1;
          f.tentative = true;
          f.embedding = forecast.data();
          per[s].push_back({f, last_real, false});
        }
      }
      // Interleave the streams' lists at random, keeping each list's order.
      std::vector<Row> rows;
      std::vector<std::pair<int, int>> origin;  // [row] (stream, local index)
      std::vector<std::vector<int>> global(kStreams);
      std::vector<size_t> taken(kStreams, 0);
      while (true) {
        std::vector<int> open;
        for (int s = 0; s < kStreams; ++s) {
          if (taken[s] < per[s].size()) open.push_back(s);
        }
        if (open.empty()) break;
        const int s = open[std::uniform_int_distribution<size_t>(0, open.size() - 1)(rng)];
        const Planned& pl = per[s][taken[s]];
        Row r = pl.row;
        r.parent = pl.local_parent < 0 ? -1 : global[s][pl.local_parent];
        global[s].push_back(static_cast<int>(rows.size()));
        origin.emplace_back(s, static_cast<int>(taken[s]));
        rows.push_back(r);
        ++taken[s];
      }
      if (rows.empty()) {
        bool done = true;
        for (int s = 0; s < kStreams; ++s) done = done && next[s] >= kTokens;
        if (done) break;
        continue;
      }
      const std::span<const float> logits = e->step(rows);
      ++steps;
      const int n_vocab = model_->config.n_vocab;
      std::vector<int> commit;
      for (size_t i = 0; i < rows.size(); ++i) {
        const auto [s, local] = origin[i];
        if (!per[s][local].real) continue;
        const std::span<const float> got = logits_of(logits, static_cast<int>(i), n_vocab);
        const std::vector<float>& want = alone[s][rows[i].pos];
        const int64_t d = first_difference(got, want);
        ASSERT_EQ(d, -1)
            << "stream " << s << " pos " << rows[i].pos << " (row " << i << " of " << rows.size() << ", "
            << (rows[i].tentative ? "tentative" : "committed") << ", " << threads << " threads, step " << steps
            << "): logit " << d << " is " << got[d] << ", alone " << want[d];
        ++checked;
        if (rows[i].tentative) commit.push_back(static_cast<int>(i));
      }
      e->commit(commit);
      for (int s = 0; s < kStreams; ++s) {
        for (const Planned& pl : per[s]) next[s] += pl.real;
      }
    }
    EXPECT_EQ(checked, kStreams * kTokens);
    for (int s = 0; s < kStreams; ++s) {
      EXPECT_TRUE(stream_kv(*e, s) == alone_kv[s]) << "K/V of stream " << s << ", " << threads << " threads";
    }
  }

  void check_all_thread_counts() {
    const Plan p = plan(11);
    std::vector<std::vector<float>> alone_kv;
    const Logits alone = feed_alone(p, &alone_kv);
    for (int threads = 1; threads <= 4; ++threads) {
      SCOPED_TRACE(::testing::Message() << threads << " threads");
      for (uint64_t seed = 0; seed < 2; ++seed) feed_mixed(p, alone, alone_kv, threads, 100 * threads + seed);
    }
  }

  std::unique_ptr<Model> model_;
  WeightFormat weights_ = WeightFormat::kAuto;
  OutputFormat output_ = OutputFormat::kAuto;
  KvType kv_type_ = KvType::kF16;  // the default cache
  std::vector<LoraAdapter> adapters_;
};

// stories260K repacked to INT4 (its FFN-down stays f32: 172 columns are not
// whole blocks), an 8-bit head, two of the bundled style adapters.
TEST_F(EngineInvarianceTest, StoriesInt4WithAdapters) {
  model_ = load_stories();
  weights_ = WeightFormat::kInt4;
  output_ = OutputFormat::kInt8;
  for (const char* name : {"dog", "sad"}) {
    adapters_.push_back(load_lora(kSource + "/models/adapters/" + name + ".gguf", model_->config));
  }
  auto probe = make_engine(1);
  ASSERT_EQ(probe->weights().layers[0].wq.format, PackedFormat::kInt4);
  ASSERT_EQ(probe->weights().output.format, PackedFormat::kInt8);
  check_all_thread_counts();
}

// The same over an f32 KV cache.
TEST_F(EngineInvarianceTest, StoriesInt4WithAdaptersF32Cache) {
  model_ = load_stories();
  weights_ = WeightFormat::kInt4;
  output_ = OutputFormat::kInt8;
  kv_type_ = KvType::kF32;
  adapters_.push_back(load_lora(kSource + "/models/adapters/dog.gguf", model_->config));
  auto probe = make_engine(1);
  ASSERT_EQ(probe->kv_cache().type(), KvType::kF32);
  check_all_thread_counts();
}

// A Q4_0 file: every product, the head included, on the INT4 kernels.
TEST_F(EngineInvarianceTest, SyntheticQ4_0) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) /
                            ("chorus_invariance_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  SynthOptions so;
  so.type = gguf::TensorType::kQ4_0;
  so.embedding_type = gguf::TensorType::kQ4_0;
  so.vocab_path = kSource + "/tests/data/vocab/ggml-vocab-llama-spm.gguf";
  write_synthetic_model(find_synthetic_shape("tiny"), so, path);
  model_ = load_model(path);
  std::filesystem::remove(path);
  auto probe = make_engine(1);
  ASSERT_EQ(probe->weights().layers[0].w_down.format, PackedFormat::kInt4);
  ASSERT_EQ(probe->weights().output.format, PackedFormat::kInt4);
  check_all_thread_counts();
}

}  // namespace
}  // namespace chorus
