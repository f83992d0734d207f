// LoRA adapters from files: the PEFT and GGUF forms of one synthetic adapter
// load to the same matrices, the RoPE row permutation is llama.cpp's, and
// every malformed or mismatched adapter is an Error naming file and tensor.
#include "model/lora.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "gguf/writer.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "test_util/error_of.h"
#include "util/error.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using test_util::error_of;

// stories260K's attention (8 heads sharing 4 KV heads, head dim 8) on fewer layers.
ModelConfig small_config() {
  ModelConfig c;
  c.name = "small";
  c.n_vocab = 512;
  c.dim = 64;
  c.n_layers = 3;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.head_dim = 8;
  c.rope_dim = 8;
  c.ffn_dim = 172;
  c.context_length = 512;
  return c;
}

// A directory of its own under the test temp dir, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(::testing::TempDir()) /
            fmt::format("chorus_lora_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void expect_same(const LoraAdapter& x, const LoraAdapter& y) {
  EXPECT_EQ(x.alpha, y.alpha);
  EXPECT_EQ(x.use_rslora, y.use_rslora);
  EXPECT_EQ(x.max_rank, y.max_rank);
  EXPECT_EQ(x.architecture, y.architecture);
  ASSERT_EQ(x.layers.size(), y.layers.size());
  for (size_t l = 0; l < x.layers.size(); ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const auto& p = x.layers[l][t];
      const auto& q = y.layers[l][t];
      ASSERT_EQ(p.has_value(), q.has_value()) << "layer " << l << " target " << t;
      if (!p) continue;
      EXPECT_EQ(p->rank, q->rank);
      EXPECT_EQ(p->in, q->in);
      EXPECT_EQ(p->out, q->out);
      EXPECT_EQ(p->a, q->a) << "layer " << l << " " << lora_target_name(static_cast<LoraTarget>(t));
      EXPECT_EQ(p->b, q->b) << "layer " << l << " " << lora_target_name(static_cast<LoraTarget>(t));
    }
  }
}

// ---------------------------------------------------------------------------
// The RoPE row permutation.

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(PermuteRopeRows, HandWorkedExample) {
  // One head of dim 8, one column: HF row i of the first half pairs with row
  // i + 4; GGUF puts each pair side by side.
  std::vector<float> m = iota(8);
  permute_rope_rows(m, 1, 8, 1);
  EXPECT_EQ(m, (std::vector<float>{0, 4, 1, 5, 2, 6, 3, 7}));

  // Two heads of dim 4, two columns: rows move whole, each head on its own.
  m = iota(16);  // row r holds 2r, 2r + 1
  permute_rope_rows(m, 2, 4, 2);
  EXPECT_EQ(m, (std::vector<float>{0, 1, 4, 5, 2, 3, 6, 7,  //
                                   8, 9, 12, 13, 10, 11, 14, 15}));
}

TEST(PermuteRopeRows, MatchesNumpyReshapeSwapaxes) {
  // llama.cpp: w.reshape(n_head, 2, hd / 2, cols).swapaxes(1, 2).reshape(w.shape),
  // written out as index arithmetic on the flattened array.
  const int heads = 3, hd = 6, cols = 5;
  const std::vector<float> hf = iota(static_cast<size_t>(heads) * hd * cols);
  std::vector<float> want(hf.size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int j = 0; j < 2; ++j)
        for (int c = 0; c < cols; ++c)
          want[((h * (hd / 2) + i) * 2 + j) * cols + c] =
              hf[((h * 2 + j) * (hd / 2) + i) * cols + c];
  std::vector<float> m = hf;
  permute_rope_rows(m, heads, hd, cols);
  EXPECT_EQ(m, want);
}

TEST(PermuteRopeRows, InverseUndoesIt) {
  const std::vector<float> original = iota(4 * 8 * 3);
  std::vector<float> m = original;
  permute_rope_rows(m, 4, 8, 3);
  EXPECT_NE(m, original);
  permute_rope_rows(m, 4, 8, 3, /*inverse=*/true);
  EXPECT_EQ(m, original);
  permute_rope_rows(m, 4, 8, 3, /*inverse=*/true);
  permute_rope_rows(m, 4, 8, 3);
  EXPECT_EQ(m, original);
}

TEST(PermuteRopeRows, BadShapesAreErrors) {
  std::vector<float> m(10);
  EXPECT_THAT(error_of([&] { permute_rope_rows(m, 1, 8, 1); }), HasSubstr("permute_rope_rows"));
  m.resize(7);
  EXPECT_THAT(error_of([&] { permute_rope_rows(m, 1, 7, 1); }), HasSubstr("permute_rope_rows"));
}

// ---------------------------------------------------------------------------
// Synthetic adapters in both formats.

TEST(SyntheticLora, BothFormatsLoadToIdenticalMatrices) {
  TempDir tmp;
  const ModelConfig c = small_config();
  SyntheticLoraSpec spec;
  spec.rank = 4;
  spec.alpha = 8.0f;
  spec.seed = 42;
  write_synthetic_lora_peft(tmp.path("peft"), c, spec);
  write_synthetic_lora_gguf(tmp.path("a.gguf"), c, spec);

  const LoraAdapter peft = load_peft_lora(tmp.path("peft"), c);
  const LoraAdapter gguf = load_gguf_lora(tmp.path("a.gguf"), c);
  EXPECT_EQ(peft.format, "peft");
  EXPECT_EQ(gguf.format, "gguf");
  EXPECT_EQ(peft.architecture, "llama");
  EXPECT_EQ(peft.alpha, 8.0f);
  EXPECT_EQ(peft.max_rank, 4);
  EXPECT_EQ(peft.layers.size(), 3u);
  EXPECT_EQ(peft.n_pairs(), 3 * kLoraTargets);
  expect_same(peft, gguf);

  // Both hold f16: the same bytes, A + B of every pair.
  size_t want_bytes = 0;
  for (int t = 0; t < kLoraTargets; ++t) {
    const auto target = static_cast<LoraTarget>(t);
    want_bytes += 2 * 4 * (lora_target_in(c, target) + lora_target_out(c, target));
  }
  EXPECT_EQ(peft.file_tensor_bytes, 3 * want_bytes);
  EXPECT_EQ(gguf.file_tensor_bytes, 3 * want_bytes);

  const LoraPair& q = *gguf.layers[1][static_cast<int>(LoraTarget::kK)];
  EXPECT_EQ(q.in, 64);
  EXPECT_EQ(q.out, 32);  // 4 kv heads x 8
  EXPECT_EQ(gguf.pair_scale(q, 1.0f), 2.0f);
}

TEST(SyntheticLora, PeftStoresQAndKInHuggingFaceOrder) {
  TempDir tmp;
  const ModelConfig c = small_config();
  SyntheticLoraSpec spec;
  spec.rank = 2;
  write_synthetic_lora_peft(tmp.path("peft"), c, spec);
  const LoraAdapter loaded = load_peft_lora(tmp.path("peft"), c);
  const SafetensorsFile st = SafetensorsFile::open(tmp.path("peft/adapter_model.safetensors"));
  const std::string stem = "base_model.model.model.layers.0.self_attn.";
  for (auto [module, target, heads] : {std::tuple{"q_proj", LoraTarget::kQ, c.n_heads},
                                       std::tuple{"k_proj", LoraTarget::kK, c.n_kv_heads},
                                       std::tuple{"v_proj", LoraTarget::kV, 0}}) {
    std::vector<float> raw = st.read_f32(*st.find(stem + module + ".lora_B.weight"));
    const std::vector<float>& b = loaded.layers[0][static_cast<int>(target)]->b;
    if (heads == 0) {  // v is not rotated: rows as stored
      EXPECT_EQ(raw, b) << module;
      continue;
    }
    EXPECT_NE(raw, b) << module << " was not permuted";
    permute_rope_rows(raw, heads, c.head_dim, spec.rank);
    EXPECT_EQ(raw, b) << module;
  }
}

TEST(SyntheticLora, SameSeedSameValuesOtherSeedOthers) {
  TempDir tmp;
  const ModelConfig c = small_config();
  SyntheticLoraSpec spec;
  spec.f16 = false;
  spec.targets = {false, true, false, false, false, false, true};
  spec.use_rslora = true;
  write_synthetic_lora_gguf(tmp.path("a.gguf"), c, spec);
  write_synthetic_lora_gguf(tmp.path("b.gguf"), c, spec);
  spec.seed = 2;
  write_synthetic_lora_gguf(tmp.path("c.gguf"), c, spec);
  const LoraAdapter a = load_lora(tmp.path("a.gguf"), c);
  const LoraAdapter b = load_lora(tmp.path("b.gguf"), c);
  const LoraAdapter other = load_lora(tmp.path("c.gguf"), c);
  expect_same(a, b);
  EXPECT_FALSE(a.use_rslora) << "GGUF adapters carry no rsLoRA flag";
  EXPECT_NEAR(a.alpha, spec.alpha * std::sqrt(8.0f), 1e-5f);
  EXPECT_EQ(a.targets(),
            (std::array<bool, kLoraTargets>{false, true, false, false, false, false, true}));
  EXPECT_NE(a.layers[0][1]->a, other.layers[0][1]->a);

  // f32 values have spread around the requested deviation.
  double sum2 = 0;
  const auto& values = a.layers[2][6]->a;
  for (float v : values) sum2 += static_cast<double>(v) * v;
  const double stddev = std::sqrt(sum2 / static_cast<double>(values.size()));
  EXPECT_NEAR(stddev, spec.stddev, spec.stddev * 0.1);
}

TEST(SyntheticLora, F32RsloraSubsetBothFormatsAgree) {
  TempDir tmp;
  const ModelConfig c = small_config();
  SyntheticLoraSpec spec;
  spec.rank = 3;
  spec.alpha = 5.5f;
  spec.use_rslora = true;
  spec.f16 = false;
  spec.targets = {true, true, false, true, false, false, false};
  write_synthetic_lora_peft(tmp.path("peft"), c, spec);
  write_synthetic_lora_gguf(tmp.path("a.gguf"), c, spec);
  const LoraAdapter peft = load_lora(tmp.path("peft"), c);
  LoraAdapter gguf = load_lora(tmp.path("a.gguf"), c);
  EXPECT_TRUE(peft.use_rslora);
  EXPECT_EQ(peft.alpha, 5.5f);
  // GGUF adapters have no rsLoRA key: the sqrt(r) lives in alpha.
  EXPECT_FALSE(gguf.use_rslora);
  const LoraPair& p = *peft.layers[0][0];
  EXPECT_NEAR(gguf.pair_scale(p, 0.5f), peft.pair_scale(p, 0.5f), 1e-6f);
  EXPECT_NEAR(peft.pair_scale(p, 1.0f), 5.5f / std::sqrt(3.0f), 1e-6f);
  gguf.use_rslora = true;
  gguf.alpha = peft.alpha;
  expect_same(peft, gguf);
  EXPECT_EQ(peft.file_tensor_bytes, gguf.file_tensor_bytes);
}

TEST(SyntheticLora, WorksOnTheBundledModel) {
  TempDir tmp;
  const auto model = load_model(std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf");
  const ModelConfig& c = model->config;
  ASSERT_LT(c.n_kv_heads, c.n_heads);
  SyntheticLoraSpec spec;
  spec.rank = 8;
  write_synthetic_lora_peft(tmp.path("peft"), c, spec);
  write_synthetic_lora_gguf(tmp.path("a.gguf"), c, spec);
  // load_lora picks the format: directory, its .safetensors, GGUF.
  const LoraAdapter dir = load_lora(tmp.path("peft"), c);
  const LoraAdapter file = load_lora(tmp.path("peft/adapter_model.safetensors"), c);
  const LoraAdapter gguf = load_lora(tmp.path("a.gguf"), c);
  expect_same(dir, gguf);
  expect_same(file, gguf);
  EXPECT_EQ(gguf.layers.size(), 5u);
}

TEST(SyntheticLora, InspectWithoutABaseModel) {
  TempDir tmp;
  const ModelConfig c = small_config();
  SyntheticLoraSpec spec;
  spec.rank = 4;
  spec.targets = {true, false, false, false, false, false, true};
  write_synthetic_lora_peft(tmp.path("peft"), c, spec);
  write_synthetic_lora_gguf(tmp.path("a.gguf"), c, spec);
  for (const std::string& p : {tmp.path("peft"), tmp.path("a.gguf")}) {
    EXPECT_TRUE(is_lora_path(p)) << p;
    const LoraAdapter a = inspect_lora(p);
    EXPECT_EQ(a.layers.size(), 3u) << p;
    EXPECT_EQ(a.max_rank, 4);
    EXPECT_EQ(a.layers[2][6]->in, 172);
    EXPECT_EQ(a.layers[2][6]->out, 64);
  }
  EXPECT_FALSE(is_lora_path(std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf"));
  EXPECT_FALSE(is_lora_path(std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.bin"));
  EXPECT_FALSE(is_lora_path(tmp.path("missing.gguf")));
}

TEST(SyntheticLora, BadSpecsAreErrors) {
  TempDir tmp;
  SyntheticLoraSpec spec;
  spec.rank = 0;
  EXPECT_THAT(
      error_of([&] { write_synthetic_lora_gguf(tmp.path("x.gguf"), small_config(), spec); }),
      HasSubstr("rank"));
  spec.rank = 4;
  spec.targets = {};
  EXPECT_THAT(error_of([&] { write_synthetic_lora_peft(tmp.path("p"), small_config(), spec); }),
              HasSubstr("target"));
  spec.targets[0] = true;
  EXPECT_THAT(
      error_of([&] { write_synthetic_lora_peft(tmp.path("no/such/p"), small_config(), spec); }),
      HasSubstr("no/such/p"));
}

// ---------------------------------------------------------------------------
// Bad PEFT adapters.

std::string hf_name(int layer, const std::string& module, const std::string& ab) {
  const bool mlp = module == "gate_proj" || module == "up_proj" || module == "down_proj";
  return fmt::format("base_model.model.model.layers.{}.{}.{}.lora_{}.weight", layer,
                     mlp ? "mlp" : "self_attn", module, ab);
}

class BadPeft : public ::testing::Test {
 protected:
  const ModelConfig c = small_config();
  TempDir tmp;
  SafetensorsWriter st;
  std::string config =
      R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})";

  void zeros(const std::string& name, std::vector<int64_t> shape,
             const std::string& dtype = "F32") {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    const std::vector<uint8_t> bytes(n * (dtype == "F32" ? 4 : dtype == "I64" ? 8 : 2), 0);
    st.add(name, dtype, std::move(shape), bytes);
  }
  // A valid rank-4 pair for q (64 -> 64) in `layer`.
  void q_pair(int layer) {
    zeros(hf_name(layer, "q_proj", "A"), {4, 64});
    zeros(hf_name(layer, "q_proj", "B"), {64, 4});
  }
  // Writes the directory and returns the load error.
  std::string load_error() {
    fs::create_directories(tmp.path("peft"));
    st.write(tmp.path("peft/adapter_model.safetensors"));
    std::ofstream(tmp.path("peft/adapter_config.json")) << config;
    return error_of([&] { load_peft_lora(tmp.path("peft"), c); });
  }
};

TEST_F(BadPeft, ValidBaselineLoads) {
  q_pair(0);
  zeros(hf_name(2, "v_proj", "A"), {4, 64});
  zeros(hf_name(2, "v_proj", "B"), {32, 4});
  EXPECT_EQ(load_error(), "");
}

TEST_F(BadPeft, EmbeddingAndHeadAreRejected) {
  q_pair(0);
  zeros("base_model.model.model.embed_tokens.lora_embedding_A", {4, 512});
  const std::string e = load_error();
  EXPECT_THAT(e,
              HasSubstr("adapter_model.safetensors: tensor 'base_model.model.model.embed_tokens"));
  EXPECT_THAT(e, HasSubstr("not supported"));
}

TEST_F(BadPeft, LmHeadIsRejected) {
  q_pair(0);
  zeros("base_model.model.lm_head.lora_A.weight", {4, 64});
  EXPECT_THAT(load_error(), HasSubstr("lm_head (the output head) is not supported"));
}

TEST_F(BadPeft, EmbedTokensInTargetModulesIsRejected) {
  q_pair(0);
  config = R"({"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "embed_tokens"]})";
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr("adapter_config.json"));
  EXPECT_THAT(e, HasSubstr("'embed_tokens' is not supported"));
}

TEST_F(BadPeft, UnknownModuleIsRejected) {
  q_pair(0);
  zeros("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", {4, 64});
  EXPECT_THAT(load_error(), HasSubstr("tensor 'base_model.model.model.layers.0.self_attn.qkv_proj"
                                      ".lora_A.weight': module 'qkv_proj' is not supported"));
}

TEST_F(BadPeft, UnrelatedTensorNameIsRejected) {
  q_pair(0);
  zeros("something.else", {4});
  EXPECT_THAT(load_error(), HasSubstr("tensor 'something.else': is not a PEFT LoRA tensor"));
}

TEST_F(BadPeft, LayerBeyondTheModelIsRejected) {
  q_pair(0);
  q_pair(3);
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr(hf_name(3, "q_proj", "A")));
  EXPECT_THAT(e, HasSubstr("layer 3, but the model has 3 layers"));
}

TEST_F(BadPeft, MissingPartnerIsRejected) {
  q_pair(0);
  zeros(hf_name(1, "v_proj", "A"), {4, 64});
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr("tensor '" + hf_name(1, "v_proj", "A") + "'"));
  EXPECT_THAT(e, HasSubstr("'" + hf_name(1, "v_proj", "B") + "' is missing"));
}

TEST_F(BadPeft, RankMismatchBetweenAAndBIsRejected) {
  zeros(hf_name(0, "q_proj", "A"), {4, 64});
  zeros(hf_name(0, "q_proj", "B"), {64, 3});
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr(hf_name(0, "q_proj", "B")));
  EXPECT_THAT(e, HasSubstr("has rank 3 but its partner"));
}

TEST_F(BadPeft, RankOtherThanTheConfigsIsRejected) {
  zeros(hf_name(0, "q_proj", "A"), {2, 64});
  zeros(hf_name(0, "q_proj", "B"), {64, 2});
  EXPECT_THAT(load_error(), HasSubstr("has rank 2, but the adapter's configured r is 4"));
}

TEST_F(BadPeft, ZeroRankIsRejected) {
  zeros(hf_name(0, "q_proj", "A"), {0, 64});
  zeros(hf_name(0, "q_proj", "B"), {64, 0});
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr(hf_name(0, "q_proj", "A")));
  EXPECT_THAT(e, HasSubstr("rank must be positive"));
}

TEST_F(BadPeft, ZeroRankInTheConfigIsRejected) {
  q_pair(0);
  config = R"({"r": 0, "lora_alpha": 8})";
  EXPECT_THAT(load_error(), HasSubstr("adapter_config.json: r = 0 is not a valid LoRA rank"));
}

TEST_F(BadPeft, ShapeOfAnotherModelIsRejected) {
  zeros(hf_name(0, "v_proj", "A"), {4, 64});
  zeros(hf_name(0, "v_proj", "B"), {64, 4});  // v gives kv_dim = 32 outputs here
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr(hf_name(0, "v_proj", "B")));
  EXPECT_THAT(e, HasSubstr("gives 64 outputs, but the model's v projection gives 32"));
}

TEST_F(BadPeft, InputWidthOfAnotherModelIsRejected) {
  zeros(hf_name(0, "q_proj", "A"), {4, 128});
  zeros(hf_name(0, "q_proj", "B"), {64, 4});
  EXPECT_THAT(load_error(), HasSubstr("takes 128 inputs, but the model's q projection takes 64"));
}

TEST_F(BadPeft, WrongGroupIsRejected) {
  zeros("base_model.model.model.layers.0.mlp.q_proj.lora_A.weight", {4, 64});
  EXPECT_THAT(load_error(), HasSubstr("q_proj belongs under self_attn"));
}

TEST_F(BadPeft, IntegerDtypeIsRejected) {
  zeros(hf_name(0, "q_proj", "A"), {4, 64}, "I64");
  zeros(hf_name(0, "q_proj", "B"), {64, 4});
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr(hf_name(0, "q_proj", "A")));
  EXPECT_THAT(e, HasSubstr("dtype I64 is not supported"));
}

TEST_F(BadPeft, ThreeDimensionalTensorIsRejected) {
  zeros(hf_name(0, "q_proj", "A"), {4, 64, 1});
  EXPECT_THAT(load_error(), HasSubstr("has 3 dimensions"));
}

TEST_F(BadPeft, RankPatternIsRejected) {
  q_pair(0);
  config = R"({"r": 4, "lora_alpha": 8, "rank_pattern": {"q_proj": 8}})";
  EXPECT_THAT(load_error(), HasSubstr("rank_pattern"));
}

TEST_F(BadPeft, EmptyPatternsAndNullsAreFine) {
  q_pair(0);
  config = R"({"r": 4, "lora_alpha": 8, "rank_pattern": {}, "alpha_pattern": {},
              "use_dora": false, "modules_to_save": null, "target_modules": "all-linear"})";
  EXPECT_EQ(load_error(), "");
}

TEST_F(BadPeft, DoraIsRejected) {
  q_pair(0);
  config = R"({"r": 4, "use_dora": true})";
  EXPECT_THAT(load_error(), HasSubstr("DoRA"));
}

TEST_F(BadPeft, ConfigThatIsNotJsonIsRejected) {
  q_pair(0);
  config = "{r: 4";
  EXPECT_THAT(load_error(), HasSubstr("adapter_config.json: not valid JSON"));
}

TEST_F(BadPeft, NoTensorsIsRejected) {
  EXPECT_THAT(load_error(), HasSubstr("holds no LoRA tensors"));
}

TEST_F(BadPeft, MissingFilesAreReported) {
  fs::create_directories(tmp.path("empty"));
  EXPECT_THAT(error_of([&] { load_peft_lora(tmp.path("empty"), c); }),
              HasSubstr("empty: is not a PEFT adapter directory (no adapter_config.json)"));
  EXPECT_THAT(error_of([&] { load_lora(tmp.path("empty/x.safetensors"), c); }),
              HasSubstr("empty/adapter_config.json: cannot open"));
  EXPECT_THAT(error_of([&] { load_peft_lora(tmp.path("missing"), c); }),
              HasSubstr("is not a directory"));
  std::ofstream(tmp.path("empty/adapter_config.json")) << config;
  EXPECT_THAT(error_of([&] { load_lora(tmp.path("empty"), c); }),
              HasSubstr("empty/adapter_model.safetensors"));
}

TEST_F(BadPeft, CorruptSafetensorsIsRejected) {
  q_pair(0);
  load_error();
  std::vector<uint8_t> bytes = st.serialize();
  bytes[8] = '[';  // the JSON header's opening brace
  std::ofstream(tmp.path("peft/adapter_model.safetensors"), std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  EXPECT_THAT(error_of([&] { load_lora(tmp.path("peft"), c); }),
              HasSubstr("adapter_model.safetensors: header is not valid JSON"));
}

// ---------------------------------------------------------------------------
// Bad GGUF adapters.

class BadGguf : public ::testing::Test {
 protected:
  const ModelConfig c = small_config();
  TempDir tmp;
  gguf::Writer w;

  void SetUp() override {
    w.set_string("general.architecture", "llama");
    w.set_string("general.type", "adapter");
    w.set_string("adapter.type", "lora");
    w.set_float32("adapter.lora.alpha", 8.0f);
  }
  // A zero f32 tensor of GGUF dims {cols, rows}.
  void zeros(const std::string& name, int64_t cols, int64_t rows,
             gguf::TensorType type = gguf::TensorType::kF32) {
    const std::vector<uint8_t> bytes(gguf::row_bytes(type, cols) * rows, 0);
    w.add_tensor(name, type, {cols, rows}, bytes);
  }
  void q_pair(int layer) {
    zeros(fmt::format("blk.{}.attn_q.weight.lora_a", layer), 64, 4);
    zeros(fmt::format("blk.{}.attn_q.weight.lora_b", layer), 4, 64);
  }
  std::string load_error() {
    w.write(tmp.path("a.gguf"));
    return error_of([&] { load_gguf_lora(tmp.path("a.gguf"), c); });
  }
};

TEST_F(BadGguf, ValidBaselineLoads) {
  q_pair(2);
  zeros("blk.0.ffn_down.weight.lora_a", 172, 4);
  zeros("blk.0.ffn_down.weight.lora_b", 4, 64);
  EXPECT_EQ(load_error(), "");
  const LoraAdapter a = load_gguf_lora(tmp.path("a.gguf"), c);
  EXPECT_EQ(a.alpha, 8.0f);
  EXPECT_EQ(a.n_pairs(), 2);
  EXPECT_EQ(a.layers[0][static_cast<int>(LoraTarget::kDown)]->in, 172);
}

TEST_F(BadGguf, MissingGeneralTypeIsRejected) {
  gguf::Writer bare;
  bare.set_string("general.architecture", "llama");
  w = bare;
  q_pair(0);
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr("a.gguf"));
  EXPECT_THAT(e, HasSubstr("general.type is missing"));
}

TEST_F(BadGguf, AModelIsNotAnAdapter) {
  const std::string e =
      error_of([&] { load_lora(std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf", c); });
  EXPECT_THAT(e, HasSubstr("stories260K.gguf"));
  EXPECT_THAT(e, HasSubstr("general.type"));
}

TEST_F(BadGguf, OtherGeneralTypeIsRejected) {
  w.set_string("general.type", "model");
  q_pair(0);
  EXPECT_THAT(load_error(), HasSubstr("general.type is 'model', not 'adapter'"));
}

TEST_F(BadGguf, MissingAdapterTypeIsRejected) {
  gguf::Writer bare;
  bare.set_string("general.architecture", "llama");
  bare.set_string("general.type", "adapter");
  w = bare;
  q_pair(0);
  EXPECT_THAT(load_error(), HasSubstr("adapter.type is missing"));
}

TEST_F(BadGguf, OtherAdapterTypeIsRejected) {
  w.set_string("adapter.type", "control_vector");
  q_pair(0);
  EXPECT_THAT(load_error(), HasSubstr("adapter.type is 'control_vector'"));
}

TEST_F(BadGguf, OtherArchitectureIsRejected) {
  w.set_string("general.architecture", "phi3");
  q_pair(0);
  EXPECT_THAT(load_error(), HasSubstr("adapter is for architecture 'phi3', the model is 'llama'"));
}

TEST_F(BadGguf, TokenEmbeddingIsRejected) {
  q_pair(0);
  zeros("token_embd.weight.lora_a", 512, 4);
  EXPECT_THAT(load_error(), HasSubstr("tensor 'token_embd.weight.lora_a': LoRA of token_embd"));
}

TEST_F(BadGguf, NonLoraTensorIsRejected) {
  q_pair(0);
  zeros("blk.0.attn_q.weight", 64, 64);
  EXPECT_THAT(load_error(), HasSubstr("tensor 'blk.0.attn_q.weight': is not a LoRA tensor"));
}

TEST_F(BadGguf, UnknownProjectionIsRejected) {
  zeros("blk.0.attn_norm.weight.lora_a", 64, 4);
  EXPECT_THAT(load_error(), HasSubstr("projection 'attn_norm' is not supported"));
}

TEST_F(BadGguf, LayerBeyondTheModelIsRejected) {
  q_pair(7);
  const std::string e = load_error();
  EXPECT_THAT(e, HasSubstr("blk.7.attn_q.weight.lora_a"));
  EXPECT_THAT(e, HasSubstr("layer 7, but the model has 3 layers"));
}

TEST_F(BadGguf, MissingPartnerIsRejected) {
  zeros("blk.1.attn_q.weight.lora_b", 4, 64);
  EXPECT_THAT(load_error(), HasSubstr("'blk.1.attn_q.weight.lora_a' is missing"));
}

TEST_F(BadGguf, RankMismatchIsRejected) {
  zeros("blk.0.attn_q.weight.lora_a", 64, 4);
  zeros("blk.0.attn_q.weight.lora_b", 5, 64);
  EXPECT_THAT(load_error(), HasSubstr("tensor 'blk.0.attn_q.weight.lora_b': has rank 5 but its "
                                      "partner 'blk.0.attn_q.weight.lora_a' has rank 4"));
}

TEST_F(BadGguf, TransposedShapesAreRejected) {
  zeros("blk.0.attn_k.weight.lora_a", 4, 64);  // [r, in] written the wrong way round
  zeros("blk.0.attn_k.weight.lora_b", 32, 4);
  EXPECT_THAT(load_error(), HasSubstr("blk.0.attn_k.weight.lora_"));
}

TEST_F(BadGguf, QuantizedTensorIsRejected) {
  zeros("blk.0.attn_q.weight.lora_a", 64, 4, gguf::TensorType::kQ8_0);
  zeros("blk.0.attn_q.weight.lora_b", 4, 64);
  EXPECT_THAT(load_error(),
              HasSubstr("tensor 'blk.0.attn_q.weight.lora_a': type q8_0 is not supported"));
}

TEST_F(BadGguf, AdapterForAnotherModelIsRejected) {
  ModelConfig big = small_config();
  big.dim = 128;
  big.head_dim = 16;
  SyntheticLoraSpec spec;
  write_synthetic_lora_gguf(tmp.path("big.gguf"), big, spec);
  write_synthetic_lora_peft(tmp.path("big"), big, spec);
  for (const std::string& p : {tmp.path("big.gguf"), tmp.path("big")}) {
    const std::string e = error_of([&] { load_lora(p, c); });
    EXPECT_THAT(e, HasSubstr(p)) << p;
    EXPECT_THAT(e, HasSubstr("adapter for another model?")) << p;
  }
}

TEST(LoadLora, NeitherFormatIsAnError) {
  const std::string bin = std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.bin";
  EXPECT_THAT(error_of([&] { load_lora(bin, small_config()); }), HasSubstr("not a LoRA adapter"));
  EXPECT_THAT(error_of([&] { load_lora("/nonexistent/a.gguf", small_config()); }),
              HasSubstr("/nonexistent/a.gguf"));
}

}  // namespace
}  // namespace chorus
