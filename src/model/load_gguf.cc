// GGUF model loader: reads the llama.* hyperparameters, checks every tensor
// against them and builds weight views that point into the mapped file.
#include <fmt/ranges.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "model/model.h"
#include "model/vocab.h"
#include "util/error.h"

namespace chorus {
namespace {

std::string dims_string(const std::vector<int64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// Reads an integer hyperparameter that must fit an int.
int get_int_key(const gguf::Reader& r, const std::string& key) {
  const uint64_t v = r.get_uint(key);
  check(v <= (1u << 30), r.path(), "key '{}' = {} is out of range", key, v);
  return static_cast<int>(v);
}

std::optional<int> find_int_key(const gguf::Reader& r, const std::string& key) {
  if (!r.has(key)) return std::nullopt;
  return get_int_key(r, key);
}

class TensorBinder {
 public:
  explicit TensorBinder(const gguf::Reader& r) : r_(r) {}

  // A [rows x cols] matrix (GGUF dims {cols, rows}).
  WeightView matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return bind(name, {cols, rows});
  }
  WeightView vector(const std::string& name, int64_t n) const { return bind(name, {n}); }

 private:
  WeightView bind(const std::string& name, const std::vector<int64_t>& want) const {
    const gguf::TensorInfo* t = r_.find_tensor(name);
    const std::string where = fmt::format("{}: tensor '{}'", r_.path(), name);
    check(t != nullptr, r_.path(), "missing tensor '{}'", name);
    check(t->dims == want, where, "shape {} does not match the config, expected {}",
          dims_string(t->dims), dims_string(want));
    const gguf::TypeTraits& traits = gguf::type_traits(t->type);
    check(traits.supported, where, "tensor type {} is not supported", traits.name);
    check(t->cols() % traits.block_size == 0, where,
          "row length {} is not a multiple of the {} block size {}", t->cols(), traits.name,
          traits.block_size);
    WeightView w;
    w.name = name;
    w.type = t->type;
    w.cols = t->cols();
    w.rows = t->rows();
    w.data = t->data;
    return w;
  }

  const gguf::Reader& r_;
};

ModelConfig read_config(const gguf::Reader& r) {
  const std::string& path = r.path();
  ModelConfig c;
  c.architecture = r.get_string("general.architecture");
  check(c.architecture == "llama", path,
        "general.architecture is '{}'; chorus runs 'llama' models only", c.architecture);
  if (auto type = r.find_string("general.type"); type && *type != "model") {
    throw Error(path, fmt::format("general.type is '{}', not a model (LoRA adapters are loaded "
                                  "separately)",
                                  *type));
  }
  c.name = r.find_string("general.name").value_or("");
  c.context_length = get_int_key(r, "llama.context_length");
  c.dim = get_int_key(r, "llama.embedding_length");
  c.n_layers = get_int_key(r, "llama.block_count");
  c.ffn_dim = get_int_key(r, "llama.feed_forward_length");
  c.n_heads = get_int_key(r, "llama.attention.head_count");
  c.n_kv_heads = find_int_key(r, "llama.attention.head_count_kv").value_or(c.n_heads);
  c.rms_eps = static_cast<float>(r.get_float("llama.attention.layer_norm_rms_epsilon"));
  c.rope_theta = static_cast<float>(r.find_float("llama.rope.freq_base").value_or(10000.0));

  check(c.n_heads > 0, path, "llama.attention.head_count is 0");
  if (auto key_length = find_int_key(r, "llama.attention.key_length")) {
    c.head_dim = *key_length;
  } else {
    check(c.dim % c.n_heads == 0, path, "embedding_length {} is not a multiple of head_count {}",
          c.dim, c.n_heads);
    c.head_dim = c.dim / c.n_heads;
  }
  if (auto value_length = find_int_key(r, "llama.attention.value_length")) {
    check(*value_length == c.head_dim, path,
          "attention.value_length {} differs from key_length {} (not supported)", *value_length,
          c.head_dim);
  }
  c.rope_dim = find_int_key(r, "llama.rope.dimension_count").value_or(c.head_dim);

  // Linear position interpolation, as llama.cpp reads it (old files used
  // rope.scale_linear). llama3-style scaling arrives as rope_freqs.weight.
  const std::string scaling = r.find_string("llama.rope.scaling.type").value_or("");
  std::optional<double> factor = r.find_float("llama.rope.scaling.factor");
  if (!factor) factor = r.find_float("llama.rope.scale_linear");
  if (scaling == "yarn" || scaling == "longrope") {
    throw Error(path, fmt::format("rope scaling type '{}' is not supported", scaling));
  }
  check(scaling.empty() || scaling == "none" || scaling == "linear", path,
        "unknown rope scaling type '{}'", scaling);
  if (scaling != "none" && factor && *factor != 0.0) {
    check(*factor > 0 && std::isfinite(*factor), path, "rope scaling factor {} must be > 0",
          *factor);
    c.rope_freq_scale = static_cast<float>(1.0 / *factor);
  }
  if (auto original = find_int_key(r, "llama.rope.scaling.original_context_length")) {
    c.rope_scaling.original_context = *original;
  }

  if (auto n_vocab = find_int_key(r, "llama.vocab_size")) {
    c.n_vocab = *n_vocab;
  } else if (r.has("tokenizer.ggml.tokens")) {
    c.n_vocab = static_cast<int>(r.get_string_array("tokenizer.ggml.tokens").size());
  } else if (const gguf::TensorInfo* emb = r.find_tensor("token_embd.weight");
             emb && emb->dims.size() == 2) {
    c.n_vocab = static_cast<int>(emb->dims[1]);
  }
  c.tied_output = r.find_tensor("output.weight") == nullptr;
  validate_config(c, path);
  return c;
}

std::vector<float> read_rope_freqs(const gguf::Reader& r, const ModelConfig& c) {
  const gguf::TensorInfo* t = r.find_tensor("rope_freqs.weight");
  if (t == nullptr) return {};
  const std::string where = fmt::format("{}: tensor 'rope_freqs.weight'", r.path());
  const std::vector<int64_t> want = {c.rope_dim / 2};
  check(t->dims == want, where, "shape {} does not match the config, expected {}",
        dims_string(t->dims), dims_string(want));
  check(t->type == gguf::TensorType::kF32 || t->type == gguf::TensorType::kF16 ||
            t->type == gguf::TensorType::kBF16,
        where, "type {} is not a float type", gguf::type_name(t->type));
  std::vector<float> factors(want[0]);
  gguf::dequantize_row(t->type, t->data, factors.data(), want[0]);
  for (float f : factors) {
    check(std::isfinite(f) && f > 0, where, "frequency factor {} must be > 0", f);
  }
  return factors;
}

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path) {
  auto reader = std::make_shared<gguf::Reader>(gguf::Reader::open(path));
  const gguf::Reader& r = *reader;

  auto model = std::make_unique<Model>();
  model->path = path;
  model->format = "gguf";
  model->file_bytes = r.file_size();
  model->config = read_config(r);
  const ModelConfig& c = model->config;

  const TensorBinder bind(r);
  ModelWeights& w = model->weights;
  w.token_embedding = bind.matrix("token_embd.weight", c.n_vocab, c.dim);
  w.output_norm = bind.vector("output_norm.weight", c.dim);
  w.output = c.tied_output ? w.token_embedding : bind.matrix("output.weight", c.n_vocab, c.dim);
  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    LayerWeights& lw = w.layers[l];
    lw.attn_norm = bind.vector(p + "attn_norm.weight", c.dim);
    lw.wq = bind.matrix(p + "attn_q.weight", c.q_dim(), c.dim);
    lw.wk = bind.matrix(p + "attn_k.weight", c.kv_dim(), c.dim);
    lw.wv = bind.matrix(p + "attn_v.weight", c.kv_dim(), c.dim);
    lw.wo = bind.matrix(p + "attn_output.weight", c.dim, c.q_dim());
    lw.ffn_norm = bind.vector(p + "ffn_norm.weight", c.dim);
    lw.w_gate = bind.matrix(p + "ffn_gate.weight", c.ffn_dim, c.dim);
    lw.w_up = bind.matrix(p + "ffn_up.weight", c.ffn_dim, c.dim);
    lw.w_down = bind.matrix(p + "ffn_down.weight", c.dim, c.ffn_dim);
  }
  w.rope_freq_factors = read_rope_freqs(r, c);
  if (w.rope_freq_factors.empty()) w.rope_freq_factors = llama3_rope_freq_factors(c);

  Vocab vocab = load_vocab(r);
  check(vocab.size() <= c.n_vocab, path,
        "the tokenizer has {} tokens but the model only {} embeddings", vocab.size(), c.n_vocab);
  model->tokenizer = std::make_unique<Tokenizer>(std::move(vocab));
  model->storage = std::move(reader);
  return model;
}

}  // namespace chorus
