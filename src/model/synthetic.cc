#include "model/synthetic.h"

#include <cmath>
#include <string>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "util/error.h"

namespace chorus {
namespace {

ModelConfig make_config(int dim, int layers, int heads, int kv_heads, int ffn, int vocab,
                        int ctx, float theta, bool tied, int head_dim = 0) {
  ModelConfig c;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = head_dim ? head_dim : dim / heads;
  c.rope_dim = c.head_dim;
  c.ffn_dim = ffn;
  c.n_vocab = vocab;
  c.context_length = ctx;
  c.rope_theta = theta;
  c.tied_output = tied;
  return c;
}

// Cheap, reproducible pseudo-normal numbers: the sum of uniforms is close
// enough for weights whose only job is to keep activations in range.
class WeightRng {
 public:
  explicit WeightRng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next() {
    float sum = 0;
    for (int i = 0; i < 4; ++i) sum += uniform();
    return (sum - 2.0f) * 1.7320508f;  // variance of the sum of 4 U(0,1) is 1/3
  }

 private:
  float uniform() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return static_cast<float>(s_ >> 40) * (1.0f / 16777216.0f);
  }
  uint64_t s_;
};

struct TensorPlan {
  std::string name;
  gguf::TensorType type;
  int64_t cols, rows;
  float stddev;  // 0 = all ones (norm weights)
};

std::vector<TensorPlan> plan_tensors(const ModelConfig& c, const SynthOptions& o) {
  using gguf::TensorType;
  const float s_in = 1.0f / std::sqrt(static_cast<float>(c.dim));
  const float s_ffn = 1.0f / std::sqrt(static_cast<float>(c.ffn_dim));
  std::vector<TensorPlan> plan;
  plan.push_back({"token_embd.weight", o.embedding_type, c.dim, c.n_vocab, 1.0f});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    plan.push_back({b + "attn_norm.weight", TensorType::kF32, c.dim, 1, 0});
    plan.push_back({b + "attn_q.weight", o.type, c.dim, c.q_dim(), s_in});
    plan.push_back({b + "attn_k.weight", o.type, c.dim, c.kv_dim(), s_in});
    plan.push_back({b + "attn_v.weight", o.type, c.dim, c.kv_dim(), s_in});
    plan.push_back({b + "attn_output.weight", o.type, c.q_dim(), c.dim, s_in});
    plan.push_back({b + "ffn_norm.weight", TensorType::kF32, c.dim, 1, 0});
    plan.push_back({b + "ffn_gate.weight", o.type, c.dim, c.ffn_dim, s_in});
    plan.push_back({b + "ffn_up.weight", o.type, c.dim, c.ffn_dim, s_in});
    plan.push_back({b + "ffn_down.weight", o.type, c.ffn_dim, c.dim, s_ffn});
  }
  plan.push_back({"output_norm.weight", TensorType::kF32, c.dim, 1, 0});
  if (!c.tied_output) plan.push_back({"output.weight", o.embedding_type, c.dim, c.n_vocab, s_in});
  return plan;
}

void copy_tokenizer(const gguf::Reader& vocab, int n_vocab, gguf::Writer& w) {
  for (const auto& [key, value] : vocab.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) w.set(key, value);
  }
  // Shapes whose vocabulary is larger than the bundled one get padding
  // tokens, marked unused so they never come out of the tokenizer.
  auto tokens = vocab.get_string_array("tokenizer.ggml.tokens");
  const int have = static_cast<int>(tokens.size());
  check(have <= n_vocab, vocab.path(), "vocabulary has {} tokens, the shape only {}", have, n_vocab);
  if (have == n_vocab) return;
  std::vector<float> scores;
  if (vocab.has("tokenizer.ggml.scores")) {
    for (double s : vocab.get_float_array("tokenizer.ggml.scores")) scores.push_back(static_cast<float>(s));
  }
  std::vector<int32_t> types;
  for (int64_t t : vocab.get_int_array("tokenizer.ggml.token_type")) types.push_back(static_cast<int32_t>(t));
  for (int i = have; i < n_vocab; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    if (!scores.empty()) scores.push_back(-1e9f);
    types.push_back(5);  // unused
  }
  w.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
  if (!scores.empty()) w.set_float32_array("tokenizer.ggml.scores", std::move(scores));
  w.set_int32_array("tokenizer.ggml.token_type", std::move(types));
}

}  // namespace

const std::vector<SyntheticShape>& synthetic_shapes() {
  static const std::vector<SyntheticShape> shapes = [] {
    std::vector<SyntheticShape> s;
    s.push_back({"tinyllama-1.1b", "TinyLlama 1.1B (GQA 32/4)",
                 make_config(2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, false), "llama-spm"});
    s.push_back({"smollm2-135m", "SmolLM2 135M (tied embeddings)",
                 make_config(576, 30, 9, 3, 1536, 49152, 8192, 100000.0f, true), "llama-spm"});
    s.push_back({"smollm2-360m", "SmolLM2 360M (tied embeddings)",
                 make_config(960, 32, 15, 5, 2560, 49152, 8192, 100000.0f, true), "llama-spm"});
    {
      SyntheticShape l3{"llama-3.2-1b", "Llama 3.2 1B (BPE vocabulary, llama3 rope scaling)",
                        make_config(2048, 16, 32, 8, 8192, 128256, 131072, 500000.0f, true), "llama-bpe"};
      l3.config.rope_scaling = {32.0f, 1.0f, 4.0f, 8192};
      s.push_back(l3);
    }
    s.push_back({"paper-1b", "the paper's 1B (MHA, hidden 1440)",
                 make_config(1440, 28, 18, 18, 3840, 96000, 4096, 10000.0f, false), "llama-spm"});
    s.push_back({"paper-3b", "the paper's 3B (GQA 24/4, head dim 128)",
                 make_config(3072, 30, 24, 4, 8192, 105900, 4096, 500000.0f, false, 128), "llama-spm"});
    s.push_back({"tiny", "a few small layers, for tests",
                 make_config(128, 2, 4, 2, 256, 32000, 512, 10000.0f, false), "llama-spm"});
    for (auto& shape : s) shape.config.name = "synthetic " + shape.name;
    return s;
  }();
  return shapes;
}

const SyntheticShape& find_synthetic_shape(const std::string& name) {
  std::string known;
  for (const auto& s : synthetic_shapes()) {
    if (s.name == name) return s;
    known += (known.empty() ? "" : ", ") + s.name;
  }
  throw Error("--shape", fmt::format("unknown shape '{}' (known: {})", name, known));
}

void write_synthetic_model(const SyntheticShape& shape, const SynthOptions& options,
                           const std::string& out_path,
                           const std::function<void(size_t, size_t)>& progress) {
  const ModelConfig& c = shape.config;
  for (auto t : {options.type, options.embedding_type}) {
    check(gguf::can_quantize(t), "--type", "chorus cannot write {} tensors", gguf::type_name(t));
    const int64_t block = gguf::type_traits(t).block_size;
    check(c.dim % block == 0 && c.ffn_dim % block == 0 && c.q_dim() % block == 0, "--type",
          "{} needs row lengths divisible by {} (shape {})", gguf::type_name(t), block, shape.name);
  }
  const auto vocab = gguf::Reader::open(options.vocab_path);

  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", c.name);
  w.set_uint32("general.file_type", options.type == gguf::TensorType::kQ4_0 ? 2 : 0);
  w.set_uint32("llama.context_length", c.context_length);
  w.set_uint32("llama.embedding_length", c.dim);
  w.set_uint32("llama.block_count", c.n_layers);
  w.set_uint32("llama.feed_forward_length", c.ffn_dim);
  w.set_uint32("llama.attention.head_count", c.n_heads);
  w.set_uint32("llama.attention.head_count_kv", c.n_kv_heads);
  w.set_uint32("llama.attention.key_length", c.head_dim);
  w.set_uint32("llama.attention.value_length", c.head_dim);
  w.set_uint32("llama.rope.dimension_count", c.rope_dim);
  w.set_float32("llama.rope.freq_base", c.rope_theta);
  w.set_float32("llama.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.set_uint32("llama.vocab_size", c.n_vocab);
  // llama3 frequency scaling travels as a tensor of per-frequency divisors,
  // the way llama.cpp's converter writes it.
  const std::vector<float> rope_freqs = llama3_rope_freq_factors(c);
  if (!rope_freqs.empty()) {
    w.add_tensor("rope_freqs.weight", gguf::TensorType::kF32, {static_cast<int64_t>(rope_freqs.size())},
                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(rope_freqs.data()),
                                          rope_freqs.size() * sizeof(float)));
  }
  copy_tokenizer(vocab, c.n_vocab, w);

  uint64_t tensor_seed = options.seed;
  for (const TensorPlan& t : plan_tensors(c, options)) {
    const uint64_t seed = tensor_seed++;
    // Norm weights are vectors: GGUF gives them one dimension.
    std::vector<int64_t> dims = t.rows == 1 ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.cols, t.rows};
    w.add_tensor(t.name, t.type, std::move(dims), [t, seed](std::span<uint8_t> dst) {
      WeightRng rng(seed);
      std::vector<float> row(t.cols);
      const size_t rb = gguf::row_bytes(t.type, t.cols);
      for (int64_t r = 0; r < t.rows; ++r) {
        for (auto& v : row) v = t.stddev == 0 ? 1.0f : rng.next() * t.stddev;
        gguf::quantize_row(t.type, row.data(), dst.data() + r * rb, t.cols);
      }
    });
  }
  w.write(out_path, progress);
}

}  // namespace chorus
