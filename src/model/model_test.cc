// Loading stories260K from both formats, and rejecting broken inputs.
#include "model/model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/quants.h"
#include "gguf/writer.h"
#include "test_util/error_of.h"
#include "util/error.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;

const std::string kModels = std::string(CHORUS_SOURCE_DIR) + "/models/";
const std::string kGguf = kModels + "stories260K.gguf";
const std::string kBin = kModels + "stories260K.bin";
const std::string kTok = kModels + "tok512.bin";

class TempDir {
 public:
  TempDir() {
    path_ = fs::path(::testing::TempDir()) / ("chorus_model_test_" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const char* data, size_t n) {
  std::ofstream out(path, std::ios::binary);
  out.write(data, static_cast<std::streamsize>(n));
}

using test_util::error_of;

void expect_stories_shape(const ModelConfig& c) {
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.ffn_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.rope_dim, 8);
  EXPECT_EQ(c.q_dim(), 64);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_FLOAT_EQ(c.rope_theta, 10000.0f);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_EQ(c.rope_freq_scale, 1.0f);
}

TEST(LoadModel, Stories260KGguf) {
  auto m = load_gguf_model(kGguf);
  EXPECT_EQ(m->format, "gguf");
  expect_stories_shape(m->config);
  EXPECT_EQ(m->config.context_length, 2048);
  EXPECT_FALSE(m->config.tied_output);
  EXPECT_EQ(m->file_bytes, 1185376u);
  ASSERT_EQ(m->weights.layers.size(), 5u);
  const LayerWeights& l0 = m->weights.layers[0];
  EXPECT_EQ(l0.wk.name, "blk.0.attn_k.weight");
  EXPECT_EQ(l0.wk.rows, 32);
  EXPECT_EQ(l0.wk.cols, 64);
  EXPECT_EQ(l0.w_down.rows, 64);
  EXPECT_EQ(l0.w_down.cols, 172);
  EXPECT_EQ(l0.wk.row_bytes(), 64u * 4);
  EXPECT_TRUE(m->weights.rope_freq_factors.empty());
  ASSERT_NE(m->tokenizer, nullptr);
  EXPECT_EQ(m->tokenizer->vocab().size(), 512);
}

TEST(LoadModel, Stories260KLlama2c) {
  auto m = load_llama2c_model(kBin, kTok);
  EXPECT_EQ(m->format, "llama2.c");
  expect_stories_shape(m->config);
  EXPECT_EQ(m->config.context_length, 512);
  EXPECT_TRUE(m->config.tied_output);
  EXPECT_EQ(m->weights.output.data, m->weights.token_embedding.data);
  ASSERT_NE(m->tokenizer, nullptr);
  EXPECT_EQ(m->tokenizer->vocab().size(), 512);
}

TEST(LoadModel, PicksLoaderByMagicAndFindsTokenizer) {
  auto g = load_model(kGguf);
  EXPECT_EQ(g->format, "gguf");
  auto b = load_model(kBin);  // tok512.bin found beside the model
  EXPECT_EQ(b->format, "llama2.c");
  EXPECT_EQ(b->tokenizer->vocab().size(), 512);
}

bool same_bytes(const WeightView& a, const WeightView& b) {
  if (a.type != b.type || a.rows != b.rows || a.cols != b.cols) return false;
  return std::memcmp(a.data, b.data, a.rows * a.row_bytes()) == 0;
}

TEST(LoadModel, BothFormatsHoldIdenticalWeights) {
  auto g = load_gguf_model(kGguf);
  auto b = load_llama2c_model(kBin, kTok);
  const ModelWeights& gw = g->weights;
  const ModelWeights& bw = b->weights;
  EXPECT_TRUE(same_bytes(gw.token_embedding, bw.token_embedding));
  EXPECT_TRUE(same_bytes(gw.output, bw.output));
  // Norms are [dim] in both (rows 1).
  EXPECT_TRUE(same_bytes(gw.output_norm, bw.output_norm));
  for (int l = 0; l < 5; ++l) {
    SCOPED_TRACE(l);
    const LayerWeights& x = gw.layers[l];
    const LayerWeights& y = bw.layers[l];
    EXPECT_TRUE(same_bytes(x.attn_norm, y.attn_norm));
    EXPECT_TRUE(same_bytes(x.wq, y.wq));
    EXPECT_TRUE(same_bytes(x.wk, y.wk));
    EXPECT_TRUE(same_bytes(x.wv, y.wv));
    EXPECT_TRUE(same_bytes(x.wo, y.wo));
    EXPECT_TRUE(same_bytes(x.ffn_norm, y.ffn_norm));
    EXPECT_TRUE(same_bytes(x.w_gate, y.w_gate));
    EXPECT_TRUE(same_bytes(x.w_up, y.w_up));
    EXPECT_TRUE(same_bytes(x.w_down, y.w_down));
  }
}

TEST(LoadModel, TruncatedFilesAreErrors) {
  TempDir dir;
  const std::vector<char> gguf = read_bytes(kGguf);
  const std::vector<char> bin = read_bytes(kBin);
  for (size_t n :
       {size_t{0}, size_t{3}, size_t{20}, size_t{1000}, gguf.size() / 2, gguf.size() - 1}) {
    SCOPED_TRACE(n);
    const std::string p = dir.file("cut.gguf");
    write_bytes(p, gguf.data(), n);
    EXPECT_THROW(load_gguf_model(p), Error);
    EXPECT_THROW(load_model(p), Error);
  }
  fs::copy_file(kTok, dir.file("tok512.bin"));
  for (size_t n :
       {size_t{0}, size_t{27}, size_t{28}, size_t{1000}, bin.size() - 4, bin.size() - 1}) {
    SCOPED_TRACE(n);
    const std::string p = dir.file("cut.bin");
    write_bytes(p, bin.data(), n);
    const std::string msg = error_of([&] { load_llama2c_model(p, kTok); });
    EXPECT_NE(msg, "");
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
    EXPECT_THROW(load_model(p), Error);
  }
  // Trailing garbage is as suspicious as a missing tail.
  std::vector<char> longer = bin;
  longer.resize(bin.size() + 4);
  write_bytes(dir.file("long.bin"), longer.data(), longer.size());
  EXPECT_NE(error_of([&] { load_llama2c_model(dir.file("long.bin"), kTok); }).find("trailing"),
            std::string::npos);
}

TEST(LoadModel, Llama2cBadHeaderAndMissingTokenizer) {
  TempDir dir;
  std::vector<char> bin = read_bytes(kBin);
  int32_t n_heads = 7;  // 64 is not a multiple of 7
  std::memcpy(bin.data() + 12, &n_heads, 4);
  write_bytes(dir.file("bad.bin"), bin.data(), bin.size());
  EXPECT_NE(error_of([&] { load_llama2c_model(dir.file("bad.bin"), kTok); }).find("n_heads"),
            std::string::npos);

  fs::copy_file(kBin, dir.file("alone.bin"));
  const std::string msg = error_of([&] { load_model(dir.file("alone.bin")); });
  EXPECT_NE(msg.find("tok512.bin"), std::string::npos) << msg;
}

// A tiny llama GGUF: dim 32, 1 layer, 2 heads, 1 KV head, ffn 64, vocab 40.
struct TinyGguf {
  gguf::Writer w;

  explicit TinyGguf(const std::string& arch = "llama") {
    w.set_string("general.architecture", arch);
    w.set_uint32(arch + ".context_length", 128);
    w.set_uint32(arch + ".embedding_length", 32);
    w.set_uint32(arch + ".block_count", 1);
    w.set_uint32(arch + ".feed_forward_length", 64);
    w.set_uint32(arch + ".attention.head_count", 2);
    w.set_uint32(arch + ".attention.head_count_kv", 1);
    w.set_float32(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    for (int i = 3; i < 40; ++i) tokens.push_back("t" + std::to_string(i));
    w.set_string("tokenizer.ggml.model", "llama");
    w.set_string_array("tokenizer.ggml.tokens", tokens);
    w.set_float32_array("tokenizer.ggml.scores", std::vector<float>(40, 0.0f));
    std::vector<int32_t> types(40, 1);
    types[0] = 2;
    types[1] = types[2] = 3;
    w.set_int32_array("tokenizer.ggml.token_type", types);
    w.set_uint32("tokenizer.ggml.bos_token_id", 1);
    w.set_uint32("tokenizer.ggml.eos_token_id", 2);
    w.set_uint32("tokenizer.ggml.unknown_token_id", 0);
  }

  // Small values around `center`, stored in `type`.
  void tensor(const std::string& name, std::vector<int64_t> dims,
              gguf::TensorType type = gguf::TensorType::kF32, float center = 0.0f) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    const int64_t cols = dims[0];
    std::vector<float> src(n);
    for (int64_t i = 0; i < n; ++i)
      src[i] = center + 0.01f * static_cast<float>((i * 7) % 13) - 0.06f;
    w.add_tensor(name, type, dims, [src, type, cols](std::span<uint8_t> dst) {
      const size_t rb = gguf::row_bytes(type, cols);
      for (size_t r = 0; r * rb < dst.size(); ++r) {
        gguf::quantize_row(type, src.data() + r * cols, dst.data() + r * rb, cols);
      }
    });
  }

  // All tensors of a valid model, with `type` for the matrices.
  void all_tensors(gguf::TensorType type = gguf::TensorType::kF32, bool with_output = true) {
    tensor("token_embd.weight", {32, 40}, type);
    tensor("output_norm.weight", {32});
    if (with_output) tensor("output.weight", {32, 40}, type);
    tensor("blk.0.attn_norm.weight", {32});
    tensor("blk.0.attn_q.weight", {32, 32}, type);
    tensor("blk.0.attn_k.weight", {32, 16}, type);
    tensor("blk.0.attn_v.weight", {32, 16}, type);
    tensor("blk.0.attn_output.weight", {32, 32}, type);
    tensor("blk.0.ffn_norm.weight", {32});
    tensor("blk.0.ffn_gate.weight", {32, 64}, type);
    tensor("blk.0.ffn_up.weight", {32, 64}, type);
    tensor("blk.0.ffn_down.weight", {64, 32}, type);
  }
};

TEST(LoadModel, TinyGgufQuantizedAndTied) {
  TempDir dir;
  TinyGguf t;
  t.w.set_float32("llama.rope.freq_base", 500000.0f);
  t.all_tensors(gguf::TensorType::kQ8_0, /*with_output=*/false);
  t.tensor("rope_freqs.weight", {8}, gguf::TensorType::kF32, /*center=*/2.0f);
  const std::string p = dir.file("tiny.gguf");
  t.w.write(p);
  auto m = load_model(p);
  EXPECT_EQ(m->config.dim, 32);
  EXPECT_EQ(m->config.head_dim, 16);
  EXPECT_EQ(m->config.n_kv_heads, 1);
  EXPECT_EQ(m->config.n_vocab, 40);
  EXPECT_FLOAT_EQ(m->config.rope_theta, 500000.0f);
  EXPECT_FLOAT_EQ(m->config.rms_eps, 1e-6f);
  EXPECT_TRUE(m->config.tied_output);
  EXPECT_EQ(m->weights.output.data, m->weights.token_embedding.data);
  EXPECT_EQ(m->weights.layers[0].wq.type, gguf::TensorType::kQ8_0);
  ASSERT_EQ(m->weights.rope_freq_factors.size(), 8u);
  EXPECT_FLOAT_EQ(m->weights.rope_freq_factors[1], 2.01f);
}

TEST(LoadModel, GgufChatTemplate) {
  TempDir dir;
  const std::string jinja = "{% for message in messages %}{{ message['content'] }}{% endfor %}";
  TinyGguf with;
  with.w.set_string("tokenizer.chat_template", jinja);
  with.all_tensors();
  with.w.write(dir.file("chat.gguf"));
  EXPECT_EQ(load_model(dir.file("chat.gguf"))->tokenizer->vocab().chat_template, jinja);
  TinyGguf without;
  without.all_tensors();
  without.w.write(dir.file("plain.gguf"));
  EXPECT_EQ(load_model(dir.file("plain.gguf"))->tokenizer->vocab().chat_template, "");
}

TEST(LoadModel, GgufWrongArchitecture) {
  TempDir dir;
  TinyGguf t("gpt2");
  t.all_tensors();
  const std::string p = dir.file("gpt2.gguf");
  t.w.write(p);
  const std::string msg = error_of([&] { load_model(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("gpt2"), std::string::npos) << msg;
}

TEST(LoadModel, GgufWrongShapeNamesTensor) {
  TempDir dir;
  TinyGguf t;
  t.tensor("token_embd.weight", {32, 40});
  t.tensor("output_norm.weight", {32});
  t.tensor("blk.0.attn_norm.weight", {32});
  t.tensor("blk.0.attn_q.weight", {32, 32});
  t.tensor("blk.0.attn_k.weight", {32, 32});  // should be {32, 16}: one KV head
  const std::string p = dir.file("shape.gguf");
  t.w.write(p);
  const std::string msg = error_of([&] { load_model(p); });
  EXPECT_NE(msg.find("blk.0.attn_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 32]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 16]"), std::string::npos) << msg;
}

TEST(LoadModel, GgufMissingTensorAndKey) {
  TempDir dir;
  {
    TinyGguf t;
    t.all_tensors();
    // Drop a layer tensor by writing a model that claims two layers.
    t.w.set_uint32("llama.block_count", 2);
    t.w.write(dir.file("layers.gguf"));
  }
  EXPECT_NE(error_of([&] { load_model(dir.file("layers.gguf")); }).find("blk.1.attn_norm.weight"),
            std::string::npos);
  {
    gguf::Writer w;
    w.set_string("general.architecture", "llama");
    w.write(dir.file("nokeys.gguf"));
  }
  EXPECT_NE(error_of([&] { load_model(dir.file("nokeys.gguf")); }).find("llama.context_length"),
            std::string::npos);
}

TEST(ModelConfig, Llama3FreqFactors) {
  ModelConfig c;
  c.head_dim = c.rope_dim = 128;
  c.rope_theta = 500000;
  EXPECT_TRUE(llama3_rope_freq_factors(c).empty());
  c.rope_scaling.factor = 8;  // Llama 3.1: low 1, high 4, original 8192
  const std::vector<float> f = llama3_rope_freq_factors(c);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f.front(), 1.0f);  // the fastest rotations are kept
  EXPECT_EQ(f.back(), 8.0f);   // the slowest are stretched by the full factor
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
}

}  // namespace
}  // namespace chorus
