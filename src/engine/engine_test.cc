// The step function against the f32 reference forward pass: prefill chains,
// decode, streams sharing a prompt, token trees with commit, INT4 weights on
// a synthetic model, and row validation.
#include "engine/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/reference_forward.h"
#include "model/synthetic.h"
#include "util/error.h"
#include "test_data/stories260k.h"
#include "engine/engine_testing.h"

namespace chorus {
namespace {

using namespace chorus::testing;

// Reference logits after running `tokens` from position 0.
std::vector<float> reference_logits(ReferenceForward& ref, std::span<const int32_t> tokens) {
  ref.reset();
  return ref.forward_all(tokens);
}

TEST(Engine, FloatModelKeepsFloatWeights) {
  auto model = load_stories();
  Engine e(*model, small_options());
  EXPECT_EQ(e.options().context, 256);
  EXPECT_EQ(e.weights().layers[0].wq.format, PackedFormat::kF32);
  EXPECT_EQ(e.weights().output.format, PackedFormat::kF32);
  EXPECT_GT(e.weight_bytes(), 0u);
  EXPECT_EQ(e.kv_bytes(), 256 * e.kv_cache().bytes_per_cell());
  EXPECT_FALSE(e.kernel_name().empty());
  EXPECT_EQ(Engine(*model).options().context, std::min(model->config.context_length, 4096));
}

// (1) A prefill chain and the decode steps after it give the reference's
// logits, with either KV cache type (the reference rounds its cache alike).
// With f16 the bound is looser: engine and reference sums differ in their
// last f32 bits, and a value near an f16 rounding boundary then rounds to
// neighbouring f16 values (a step of 2^-11) in the two caches.
TEST(Engine, PrefillThenDecodeMatchesReference) {
  auto model = load_stories();
  const int n_vocab = model->config.n_vocab;
  for (const KvType kv_type : {KvType::kF16, KvType::kF32}) {
    SCOPED_TRACE(std::string(kv_type_name(kv_type)) + " KV cache");
    EngineOptions o = small_options();
    o.kv_type = kv_type;
    Engine e(*model, o);
    ASSERT_EQ(e.kv_cache().type(), kv_type);
    ReferenceForward ref(*model, 256, kv_type);
    const double bound = kv_type == KvType::kF16 ? 1e-3 : 1e-4;

    std::span<const float> logits = e.step(chain(kPrompt, 0));
    ASSERT_EQ(logits.size(), kPrompt.size() * n_vocab);
    const std::vector<float> all(logits.begin(), logits.end());
    for (size_t i = 0; i < kPrompt.size(); ++i) {
      std::span<const float> want = ref.forward(kPrompt[i], static_cast<int>(i));
      EXPECT_LT(max_rel_diff(logits_of(all, i, n_vocab), want), bound) << "prefill row " << i;
    }
    int32_t token = argmax(logits_of(all, kPrompt.size() - 1, n_vocab));
    for (int pos = kPrompt.size(); pos < static_cast<int>(kPrompt.size()) + 8; ++pos) {
      const Row row = single(token, pos);
      std::span<const float> got = e.step({&row, 1});
      std::span<const float> want = ref.forward(token, pos);
      EXPECT_LT(max_rel_diff(got, want), bound) << "decode pos " << pos;
      token = argmax(want);
    }
    EXPECT_EQ(e.kv_cache().stream_length(0), static_cast<int>(kPrompt.size()) + 8);
  }
}

// An f16 cell holds half an f32 cell's bytes, and what attention reads
// back is each value rounded once to f16 (layer 0's keys, computed before
// any attention, are the same f32 values in both engines).
TEST(Engine, KvCacheTypeSetsCellBytesAndRounding) {
  auto model = load_stories();
  EngineOptions o = small_options();
  o.kv_type = KvType::kF32;
  Engine e32(*model, o);
  o.kv_type = KvType::kF16;
  Engine e16(*model, o);
  EXPECT_EQ(EngineOptions{}.kv_type, KvType::kF16);  // the default
  EXPECT_EQ(2 * e16.kv_cache().bytes_per_cell(), e32.kv_cache().bytes_per_cell());
  EXPECT_EQ(2 * e16.kv_bytes(), e32.kv_bytes());
  const Row row = single(1, 0);
  e16.step({&row, 1});
  e32.step({&row, 1});
  const int kv_dim = model->config.kv_dim();
  std::vector<float> k16(kv_dim), k32(kv_dim);
  e16.kv_cache().read_key(0, e16.kv_cache().stream_cells(0)[0], k16.data());
  e32.kv_cache().read_key(0, e32.kv_cache().stream_cells(0)[0], k32.data());
  int inexact = 0;
  for (int i = 0; i < kv_dim; ++i) {
    EXPECT_EQ(k16[i], kv_round(KvType::kF16, k32[i])) << "element " << i;
    inexact += k16[i] != k32[i];
  }
  EXPECT_GT(inexact, 0);  // the rounding happened
}

// (1) Greedy decoding from BOS with one-row steps reproduces the reference ids.
TEST(Engine, GreedyFromBosMatchesReferenceIds) {
  auto model = load_stories();
  Engine e(*model, small_options());
  std::vector<int32_t> out;
  int32_t token = 1;
  for (int pos = 0; pos < 100; ++pos) {
    const Row row = single(token, pos);
    token = argmax(e.step({&row, 1}));
    out.push_back(token);
  }
  EXPECT_EQ(out, kReferenceIds);
}

// The llama2.c import keeps its weights in heap buffers (and ties the output
// head to the embedding): packing must leave them intact.
TEST(Engine, Llama2cModelMatchesReferenceIds) {
  auto model = load_model(kSource + "/models/stories260K.bin", kSource + "/models/tok512.bin");
  Engine e(*model, small_options());
  std::vector<int32_t> out;
  int32_t token = 1;
  for (int pos = 0; pos < 100; ++pos) {
    const Row row = single(token, pos);
    token = argmax(e.step({&row, 1}));
    out.push_back(token);
  }
  EXPECT_EQ(out, kReferenceIds);
  ReferenceForward ref(*model, 16);  // the model's own views still read right
  EXPECT_EQ(argmax(ref.forward(1, 0)), kReferenceIds[0]);
}

// (2) N tokens in one step give the logits of N one-row steps.
TEST(Engine, PrefillInOneStepEqualsSingleSteps) {
  auto model = load_stories();
  Engine e(*model, small_options());
  const int n_vocab = model->config.n_vocab;
  const std::vector<int32_t> tokens(kReferenceIds.begin(), kReferenceIds.begin() + 12);

  std::span<const float> batched = e.step(chain(tokens, 0, /*stream=*/0));
  const std::vector<float> all(batched.begin(), batched.end());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Row row = single(tokens[i], static_cast<int>(i), /*stream=*/1);
    std::span<const float> one = e.step({&row, 1});
    EXPECT_LT(max_rel_diff(logits_of(all, i, n_vocab), one), 1e-5) << "row " << i;
  }
  // A chain continuing a committed prefix works the same way.
  const std::vector<int32_t> more = {300, 301, 302};
  std::span<const float> cont = e.step(chain(more, tokens.size(), 0));
  const std::vector<float> cont_all(cont.begin(), cont.end());
  for (size_t i = 0; i < more.size(); ++i) {
    const Row row = single(more[i], static_cast<int>(tokens.size() + i), 1);
    EXPECT_LT(max_rel_diff(logits_of(cont_all, i, n_vocab), e.step({&row, 1})), 1e-5);
  }
}

// Rows asking for logits get them, packed in row order; the others cost no
// output head.
TEST(Engine, OnlyRowsWantingLogitsGetThem) {
  auto model = load_stories();
  Engine e(*model, small_options());
  ReferenceForward ref(*model, 256);
  std::vector<Row> rows = chain(kPrompt, 0);
  for (Row& r : rows) r.want_logits = false;
  rows[2].want_logits = true;
  rows.back().want_logits = true;
  const std::vector<float> got = [&] {
    std::span<const float> s = e.step(rows);
    return std::vector<float>(s.begin(), s.end());
  }();
  const int n_vocab = model->config.n_vocab;
  ASSERT_EQ(got.size(), 2u * n_vocab);
  const std::vector<int32_t> first3(kPrompt.begin(), kPrompt.begin() + 3);
  EXPECT_LT(max_rel_diff(logits_of(got, 0, n_vocab), reference_logits(ref, first3)), 1e-4);
  EXPECT_LT(max_rel_diff(logits_of(got, 1, n_vocab), reference_logits(ref, kPrompt)), 1e-4);

  for (Row& r : rows) r.want_logits = false;
  EXPECT_TRUE(e.step(rows).empty());  // a rewind of the same prompt
  EXPECT_EQ(e.kv_cache().stream_length(0), static_cast<int>(kPrompt.size()));
}

// (3) Streams forked from one prompt, decoding different tokens in one step,
// each get the logits of running alone; the prompt's cells are shared.
TEST(Engine, StreamsForkedFromASharedPrompt) {
  auto model = load_stories();
  Engine e(*model, small_options());
  ReferenceForward ref(*model, 256);
  const int n_vocab = model->config.n_vocab;
  const int p = static_cast<int>(kPrompt.size());
  KvCache& kv = e.kv_cache();

  e.step(chain(kPrompt, 0));
  kv.fork_stream(0, 1);
  kv.fork_stream(0, 2);
  EXPECT_EQ(kv.n_cells_used(), p);

  const int32_t first[3] = {286, 261, 13};
  const int32_t second[3] = {300, 417, 298};
  std::vector<Row> rows;
  for (int16_t s = 0; s < 3; ++s) rows.push_back(single(first[s], p, s));
  std::vector<float> got = [&] {
    std::span<const float> l = e.step(rows);
    return std::vector<float>(l.begin(), l.end());
  }();
  EXPECT_EQ(kv.n_cells_used(), p + 3);
  EXPECT_EQ(kv.bytes_used(), static_cast<size_t>(p + 3) * kv.bytes_per_cell());
  for (int s = 0; s < 3; ++s) {
    std::vector<int32_t> seq = kPrompt;
    seq.push_back(first[s]);
    EXPECT_LT(max_rel_diff(logits_of(got, s, n_vocab), reference_logits(ref, seq)), 1e-4)
        << "stream " << s;
  }

  // A second step: streams listed in another order.
  rows.clear();
  for (int16_t s = 2; s >= 0; --s) rows.push_back(single(second[s], p + 1, s));
  got = [&] {
    std::span<const float> l = e.step(rows);
    return std::vector<float>(l.begin(), l.end());
  }();
  for (int j = 0; j < 3; ++j) {
    const int s = 2 - j;
    std::vector<int32_t> seq = kPrompt;
    seq.push_back(first[s]);
    seq.push_back(second[s]);
    EXPECT_LT(max_rel_diff(logits_of(got, j, n_vocab), reference_logits(ref, seq)), 1e-4)
        << "stream " << s;
  }
  EXPECT_EQ(kv.n_cells_used(), p + 6);
  kv.clear_stream(1);
  EXPECT_EQ(kv.n_cells_used(), p + 4);
  kv.clear_stream(0);
  EXPECT_EQ(kv.n_cells_used(), p + 2);  // stream 2 still holds the prompt
}

// (4) A token tree: every node gets the logits of its linear sequence, and
// committing one path leaves the cache plain decoding would have built.
TEST(Engine, TokenTreeAndCommit) {
  auto model = load_stories();
  EngineOptions opts = small_options();
  Engine e(*model, opts);
  Engine plain(*model, opts);
  ReferenceForward ref(*model, 256);
  const int n_vocab = model->config.n_vocab;
  const int p = static_cast<int>(kPrompt.size());
  e.step(chain(kPrompt, 0));

  // The tree: a (row 0, pos p) has children b (row 1) and c (row 2) at
  // pos p + 1; c has a child d (row 3) at pos p + 2.
  const int32_t a = 286, b = 261, c = 298, d = 315;
  std::vector<Row> tree = {single(a, p), single(b, p + 1), single(c, p + 1), single(d, p + 2)};
  tree[1].parent = 0;
  tree[2].parent = 0;
  tree[3].parent = 2;
  for (Row& r : tree) r.tentative = true;
  const std::vector<float> got = [&] {
    std::span<const float> l = e.step(tree);
    return std::vector<float>(l.begin(), l.end());
  }();
  const std::vector<std::vector<int32_t>> paths = {{a}, {a, b}, {a, c}, {a, c, d}};
  for (size_t i = 0; i < paths.size(); ++i) {
    std::vector<int32_t> seq = kPrompt;
    seq.insert(seq.end(), paths[i].begin(), paths[i].end());
    EXPECT_LT(max_rel_diff(logits_of(got, i, n_vocab), reference_logits(ref, seq)), 1e-4)
        << "node " << i;
  }
  KvCache& kv = e.kv_cache();
  EXPECT_EQ(kv.n_cells_used(), p + 4);
  EXPECT_EQ(kv.stream_length(0), p);  // nothing tentative is committed yet

  const int bad_order[] = {3, 2, 0};  // d before its parent c
  EXPECT_THROW(e.commit(bad_order), Error);
  const int out_of_range[] = {4};
  EXPECT_THROW(e.commit(out_of_range), Error);
  const int accepted[] = {0, 2, 3};
  e.commit(accepted);
  EXPECT_EQ(kv.stream_length(0), p + 3);

  // The same tokens decoded plainly, one row per step.
  std::vector<int32_t> seq = kPrompt;
  seq.insert(seq.end(), {a, c, d});
  for (int pos = 0; pos < static_cast<int>(seq.size()); ++pos) {
    const Row row = single(seq[pos], pos);
    plain.step({&row, 1});
  }
  const KvCache& pk = plain.kv_cache();
  ASSERT_EQ(pk.stream_length(0), kv.stream_length(0));
  const int kv_dim = model->config.kv_dim();
  for (int l = 0; l < model->config.n_layers; ++l) {
    for (int j = 0; j < kv.stream_length(0); ++j) {
      const int32_t ct = kv.stream_cells(0)[j], cp = pk.stream_cells(0)[j];
      ASSERT_EQ(kv.cell_pos(ct), pk.cell_pos(cp));
      std::vector<float> kt(kv_dim), kp(kv_dim), vt(kv_dim), vp(kv_dim);
      kv.read_key(l, ct, kt.data());
      pk.read_key(l, cp, kp.data());
      kv.read_value(l, ct, vt.data());
      pk.read_value(l, cp, vp.data());
      EXPECT_LT(max_rel_diff(kt, kp), 1e-5) << "layer " << l << " pos " << j;
      EXPECT_LT(max_rel_diff(vt, vp), 1e-5) << "layer " << l << " pos " << j;
    }
  }

  // The next step drops b's cell and continues from d.
  const Row next = single(417, p + 3);
  std::span<const float> after = e.step({&next, 1});
  EXPECT_EQ(kv.n_cells_used(), p + 4);
  seq.push_back(417);
  EXPECT_LT(max_rel_diff(after, reference_logits(ref, seq)), 1e-4);
}

// An uncommitted tree leaves no trace: the next step sees the old prefix.
TEST(Engine, UncommittedTreeIsDropped) {
  auto model = load_stories();
  Engine e(*model, small_options());
  ReferenceForward ref(*model, 256);
  const int p = static_cast<int>(kPrompt.size());
  e.step(chain(kPrompt, 0));
  std::vector<Row> tree = chain(std::vector<int32_t>{286, 261, 298}, p);
  for (Row& r : tree) r.tentative = true;
  e.step(tree);
  EXPECT_EQ(e.kv_cache().n_cells_used(), p + 3);
  const Row row = single(13, p);
  std::span<const float> got = e.step({&row, 1});
  EXPECT_EQ(e.kv_cache().n_cells_used(), p + 1);
  std::vector<int32_t> seq = kPrompt;
  seq.push_back(13);
  EXPECT_LT(max_rel_diff(got, reference_logits(ref, seq)), 1e-4);
}

// (7) Rows breaking the rules are rejected before any work; the engine and
// its cache are unchanged and keep working.
TEST(Engine, BadRowsAreErrorsAndTheEngineStillWorks) {
  auto model = load_stories();
  EngineOptions opts = small_options();
  opts.max_rows = 4;
  opts.context = 16;
  opts.max_streams = 2;
  Engine e(*model, opts);
  ReferenceForward ref(*model, 16);
  e.step(chain(std::vector<int32_t>{1, 403}, 0));

  auto expect_error = [&](std::vector<Row> rows, const std::string& needle) {
    try {
      e.step(rows);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(needle), std::string::npos) << err.what();
    }
  };
  std::vector<Row> ok = {single(407, 2), single(261, 3)};
  ok[1].parent = 0;
  auto with = [&](auto change) {
    std::vector<Row> rows = ok;
    change(rows);
    return rows;
  };
  expect_error(with([](auto& r) { r[1].token = 512; }), "row 1: token = 512");
  expect_error(with([](auto& r) { r[0].token = -1; }), "row 0: token = -1");
  expect_error(with([](auto& r) {
                 r[0].pos = 16;
                 r[1].pos = 17;
               }),
               "row 0: pos = 16");
  expect_error(with([](auto& r) {
                 r[0].pos = -1;
                 r[1].pos = 0;
               }),
               "row 0: pos = -1");
  expect_error(with([](auto& r) { r[0].stream = 2; }), "row 0: stream = 2");
  expect_error(with([](auto& r) { r[1].adapter = 0; }), "row 1: adapter = 0");
  expect_error(with([](auto& r) { r[1].parent = 1; }), "row 1: parent = 1");
  expect_error(with([](auto& r) { r[0].parent = 0; }), "row 0: parent = 0");
  expect_error(with([](auto& r) { r[1].pos = 4; }), "row 1: pos = 4");
  expect_error(with([](auto& r) { r[1].stream = 1; }), "row 1: parent = 0 is in stream 0");
  expect_error(with([](auto& r) { r[0].tentative = true; }), "row 1: parent = 0 is tentative");
  expect_error(std::vector<Row>(5, single(1, 0)), "5 rows exceed max_rows = 4");
  EXPECT_EQ(e.kv_cache().n_cells_used(), 2);

  std::span<const float> got = e.step(ok);
  const std::vector<int32_t> seq = {1, 403, 407, 261};
  EXPECT_LT(max_rel_diff(got.subspan(model->config.n_vocab), reference_logits(ref, seq)), 1e-4);

  // Filling the cache: a step that does not fit is an error, not a partial step.
  const std::vector<int32_t> twelve(12, 300);
  e.step(chain(std::span(twelve).first(4), 4));
  e.step(chain(std::span(twelve).first(4), 8));
  e.step(chain(std::span(twelve).first(3), 12));
  expect_error({single(300, 15), single(301, 15)}, "KV cache full");
  EXPECT_EQ(e.kv_cache().n_cells_used(), 15);
  e.kv_cache().clear();
  EXPECT_EQ(argmax(e.step(chain(std::vector<int32_t>{1}, 0))), kReferenceIds[0]);
}

TEST(Engine, BadOptionsAreErrors) {
  auto model = load_stories();
  EngineOptions o = small_options();
  o.max_rows = 0;
  EXPECT_THROW(Engine(*model, o), Error);
  o = small_options();
  o.max_streams = 65;
  EXPECT_THROW(Engine(*model, o), Error);
  o = small_options();
  o.threads = 0;
  EXPECT_THROW(Engine(*model, o), Error);
}

// stories260K forced to INT4: the FFN's 172-wide rows are not whole blocks
// and stay f32; the rest is 4-bit with 8-bit activations and still mostly
// picks the reference's tokens.
TEST(Engine, ForcedInt4OnStoriesStaysClose) {
  auto model = load_stories();
  EngineOptions o = small_options();
  o.max_rows = 32;
  o.weights = WeightFormat::kInt4;
  Engine e(*model, o);
  EXPECT_EQ(e.weights().layers[0].wq.format, PackedFormat::kInt4);
  EXPECT_EQ(e.weights().layers[0].w_down.format, PackedFormat::kF32);
  EXPECT_EQ(e.weights().output.format, PackedFormat::kF32);
  ReferenceForward ref(*model, 256);
  std::vector<int32_t> seq = {1};
  seq.insert(seq.end(), kReferenceIds.begin(), kReferenceIds.begin() + 31);
  std::span<const float> got = e.step(chain(seq, 0));
  const std::vector<float> all(got.begin(), got.end());
  int agree = 0;
  std::vector<double> errors;
  for (size_t i = 0; i < seq.size(); ++i) {
    std::span<const float> want = ref.forward(seq[i], static_cast<int>(i));
    agree += argmax(logits_of(all, i, model->config.n_vocab)) == argmax(want);
    errors.push_back(rel_l2(logits_of(all, i, model->config.n_vocab), want));
  }
  // 4-bit weights on a 64-wide model: typically 5% off, a few positions
  // with small logits much more, so the median is what is stable.
  std::sort(errors.begin(), errors.end());
  EXPECT_GE(agree, 26) << "of " << seq.size();
  EXPECT_LT(errors[errors.size() / 2], 0.15);
}

// (5) A synthetic Q4_0 model (the "tiny" shape): 4-bit weights load without
// loss, so the only error left is the 8-bit activations.
class SyntheticEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((std::filesystem::path(::testing::TempDir()) /
                             ("chorus_engine_tiny_" + std::to_string(::getpid()) + ".gguf"))
                                .string());
    SynthOptions so;
    so.type = gguf::TensorType::kQ4_0;
    so.embedding_type = gguf::TensorType::kQ4_0;
    so.vocab_path = kSource + "/tests/data/vocab/ggml-vocab-llama-spm.gguf";
    write_synthetic_model(find_synthetic_shape("tiny"), so, *path_);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove(*path_);
    delete path_;
  }
  static std::string* path_;
};
std::string* SyntheticEngineTest::path_ = nullptr;

const std::vector<int32_t> kSyntheticTokens = {1,    450, 4996, 17354, 1701, 432,  29871, 13,
                                               3444, 263, 1243, 310,   278,  5199, 2,     887};

TEST_F(SyntheticEngineTest, Int4WeightsStayCloseToReference) {
  auto model = load_model(*path_);
  EngineOptions o = small_options();
  Engine e(*model, o);
  EXPECT_EQ(e.weights().layers[0].wq.format, PackedFormat::kInt4);
  EXPECT_EQ(e.weights().layers[0].w_down.format, PackedFormat::kInt4);
  EXPECT_EQ(e.weights().output.format, PackedFormat::kInt4);  // a Q4_0 head repacks losslessly
  ReferenceForward ref(*model, 256);
  const int n_vocab = model->config.n_vocab;

  // Half the tokens as one prefill chain, the rest decoded one at a time.
  const size_t half = kSyntheticTokens.size() / 2;
  std::span<const float> pre = e.step(chain(std::span(kSyntheticTokens).first(half), 0));
  std::vector<std::vector<float>> got;
  for (size_t i = 0; i < half; ++i) {
    std::span<const float> l = logits_of(pre, i, n_vocab);
    got.emplace_back(l.begin(), l.end());
  }
  for (size_t i = half; i < kSyntheticTokens.size(); ++i) {
    const Row row = single(kSyntheticTokens[i], static_cast<int>(i));
    std::span<const float> l = e.step({&row, 1});
    got.emplace_back(l.begin(), l.end());
  }
  int agree = 0;
  double worst = 0;
  for (size_t i = 0; i < kSyntheticTokens.size(); ++i) {
    std::span<const float> want = ref.forward(kSyntheticTokens[i], static_cast<int>(i));
    const double err = rel_l2(got[i], want);
    worst = std::max(worst, err);
    agree += argmax(got[i]) == argmax(want);
  }
  EXPECT_LT(worst, 0.03);
  EXPECT_GE(agree, static_cast<int>(kSyntheticTokens.size()) * 3 / 4);
  RecordProperty("worst_rel_l2", std::to_string(worst));
  RecordProperty("top1_agree", std::to_string(agree));
}

// The output head's layout is selectable whatever the source type.
TEST_F(SyntheticEngineTest, OutputHeadFormatIsSelectable) {
  auto model = load_model(*path_);
  ReferenceForward ref(*model, 16);
  const std::vector<float> want = ref.forward_all(std::span(kSyntheticTokens).first(4));
  for (OutputFormat f : {OutputFormat::kInt4, OutputFormat::kInt8, OutputFormat::kF32}) {
    EngineOptions o = small_options();
    o.output = f;
    Engine e(*model, o);
    EXPECT_EQ(packed_format_name(e.weights().output.format), weight_format_name(f));
    std::vector<Row> rows = chain(std::span(kSyntheticTokens).first(4), 0);
    for (Row& r : rows) r.want_logits = false;
    rows.back().want_logits = true;
    EXPECT_LT(rel_l2(e.step(rows), want), 0.1) << weight_format_name(f);
  }
}

// Automatic formats: a head that would need requantizing (here Q8_0) is
// kept at 8 bits, while Q4_0 layers still repack to 4 bits.
TEST(EngineWeightPolicy, QuantizedHeadThatCannotRepackStaysEightBit) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) /
                            ("chorus_engine_q8head_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  SynthOptions so;
  so.type = gguf::TensorType::kQ4_0;
  so.embedding_type = gguf::TensorType::kQ8_0;
  so.vocab_path = kSource + "/tests/data/vocab/ggml-vocab-llama-spm.gguf";
  write_synthetic_model(find_synthetic_shape("tiny"), so, path);
  {
    auto model = load_model(path);
    Engine e(*model, small_options());
    EXPECT_EQ(e.weights().layers[0].wq.format, PackedFormat::kInt4);
    EXPECT_EQ(e.weights().output.format, PackedFormat::kInt8);
  }
  std::filesystem::remove(path);
}

// Forced f32, the same file computes what the reference computes.
TEST_F(SyntheticEngineTest, ForcedF32MatchesReference) {
  auto model = load_model(*path_);
  EngineOptions o = small_options();
  o.weights = WeightFormat::kF32;
  o.output = OutputFormat::kF32;
  Engine e(*model, o);
  EXPECT_EQ(e.weights().layers[1].w_up.format, PackedFormat::kF32);
  ReferenceForward ref(*model, 256);
  std::span<const float> got = e.step(chain(std::span(kSyntheticTokens).first(6), 0));
  const std::vector<float> all(got.begin(), got.end());
  for (int i = 0; i < 6; ++i) {
    std::span<const float> want = ref.forward(kSyntheticTokens[i], i);
    EXPECT_LT(max_rel_diff(logits_of(all, i, model->config.n_vocab), want), 1e-4) << "row " << i;
  }
}

}  // namespace
}  // namespace chorus
