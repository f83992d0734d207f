// llama2.c checkpoint importer (karpathy/llama2.c run.c "version 0" format):
// a 7 x int32 header followed by f32 arrays, used in place from a map.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "model/model.h"
#include "model/vocab.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace chorus {
namespace {

struct Llama2cHeader {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};
static_assert(sizeof(Llama2cHeader) == 28);

ModelConfig config_from_header(const Llama2cHeader& h, const std::string& path) {
  check(h.dim > 0 && h.hidden_dim > 0 && h.n_layers > 0 && h.n_heads > 0 && h.n_kv_heads > 0 &&
            h.vocab_size != 0 && h.vocab_size != INT32_MIN && h.seq_len > 0,
        path,
        "not a llama2.c checkpoint: header dim={} hidden_dim={} n_layers={} n_heads={} "
        "n_kv_heads={} vocab_size={} seq_len={}",
        h.dim, h.hidden_dim, h.n_layers, h.n_heads, h.n_kv_heads, h.vocab_size, h.seq_len);
  check(h.dim % h.n_heads == 0, path, "dim {} is not a multiple of n_heads {}", h.dim, h.n_heads);
  ModelConfig c;
  c.name = std::filesystem::path(path).stem().string();
  c.n_vocab = std::abs(h.vocab_size);
  c.dim = h.dim;
  c.n_layers = h.n_layers;
  c.n_heads = h.n_heads;
  c.n_kv_heads = h.n_kv_heads;
  c.head_dim = h.dim / h.n_heads;
  c.ffn_dim = h.hidden_dim;
  c.context_length = h.seq_len;
  c.rope_dim = c.head_dim;
  c.rope_theta = 10000.0f;  // fixed in run.c
  c.rms_eps = 1e-5f;        // fixed in run.c
  // A negative vocab_size is how export.py marks a separate classifier.
  c.tied_output = h.vocab_size > 0;
  validate_config(c, path);
  return c;
}

// Hands out consecutive f32 arrays of the checkpoint as weight views.
class Cursor {
 public:
  explicit Cursor(const uint8_t* base) : p_(base) {}

  WeightView take(std::string name, int64_t rows, int64_t cols) {
    WeightView w;
    w.name = std::move(name);
    w.type = gguf::TensorType::kF32;
    w.rows = rows;
    w.cols = cols;
    w.data = p_;
    p_ += rows * cols * static_cast<int64_t>(sizeof(float));
    return w;
  }
  void skip(int64_t n_floats) { p_ += n_floats * static_cast<int64_t>(sizeof(float)); }

 private:
  const uint8_t* p_;
};

std::string default_tokenizer_path(const std::string& model_path, int n_vocab) {
  const std::filesystem::path dir = std::filesystem::path(model_path).parent_path();
  const std::filesystem::path plain = dir / "tokenizer.bin";
  if (std::filesystem::exists(plain)) return plain.string();
  const std::filesystem::path sized = dir / fmt::format("tok{}.bin", n_vocab);
  check(std::filesystem::exists(sized), model_path,
        "no tokenizer given and neither {} nor {} exists", plain.string(), sized.string());
  return sized.string();
}

}  // namespace

std::unique_ptr<Model> load_llama2c_model(const std::string& path,
                                          const std::string& tokenizer_path) {
  auto map = std::make_shared<MappedFile>(path);
  check(map->size() >= sizeof(Llama2cHeader), path,
        "truncated: {} bytes is shorter than the 28-byte llama2.c header", map->size());
  Llama2cHeader h;
  std::memcpy(&h, map->data(), sizeof(h));

  auto model = std::make_unique<Model>();
  model->path = path;
  model->format = "llama2.c";
  model->file_bytes = map->size();
  model->config = config_from_header(h, path);
  const ModelConfig& c = model->config;

  // validate_config bounds every factor, so these products fit in int64.
  const int64_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), ffn = c.ffn_dim;
  const int64_t vocab = c.n_vocab, layers = c.n_layers;
  const int64_t per_layer = 2 * dim + dim * q_dim + 2 * dim * kv_dim + q_dim * dim + 3 * dim * ffn;
  const int64_t rope_table = static_cast<int64_t>(c.context_length) * c.head_dim / 2;
  const int64_t n_floats =
      vocab * dim + layers * per_layer + dim + 2 * rope_table + (c.tied_output ? 0 : vocab * dim);
  const uint64_t want_bytes = sizeof(Llama2cHeader) + static_cast<uint64_t>(n_floats) * 4;
  check(map->size() >= want_bytes, path, "truncated: its header implies {} bytes, the file has {}",
        want_bytes, map->size());
  check(map->size() == want_bytes, path,
        "{} unexpected trailing bytes after the weights (expected {} bytes in all)",
        map->size() - want_bytes, want_bytes);

  // run.c's order: every layer's array of one kind is stored together.
  Cursor cur(map->data() + sizeof(Llama2cHeader));
  ModelWeights& w = model->weights;
  w.layers.resize(c.n_layers);
  auto per_layer_views = [&](WeightView LayerWeights::*field, const char* suffix, int64_t rows,
                             int64_t cols) {
    for (int l = 0; l < c.n_layers; ++l) {
      w.layers[l].*field = cur.take(fmt::format("blk.{}.{}", l, suffix), rows, cols);
    }
  };
  w.token_embedding = cur.take("token_embd.weight", vocab, dim);
  per_layer_views(&LayerWeights::attn_norm, "attn_norm.weight", 1, dim);
  per_layer_views(&LayerWeights::wq, "attn_q.weight", q_dim, dim);
  per_layer_views(&LayerWeights::wk, "attn_k.weight", kv_dim, dim);
  per_layer_views(&LayerWeights::wv, "attn_v.weight", kv_dim, dim);
  per_layer_views(&LayerWeights::wo, "attn_output.weight", dim, q_dim);
  per_layer_views(&LayerWeights::ffn_norm, "ffn_norm.weight", 1, dim);
  per_layer_views(&LayerWeights::w_gate, "ffn_gate.weight", ffn, dim);  // w1
  per_layer_views(&LayerWeights::w_down, "ffn_down.weight", dim, ffn);  // w2
  per_layer_views(&LayerWeights::w_up, "ffn_up.weight", ffn, dim);      // w3
  w.output_norm = cur.take("output_norm.weight", 1, dim);
  cur.skip(2 * rope_table);  // precomputed freq_cis tables, unused since run.c v1
  w.output = c.tied_output ? w.token_embedding : cur.take("output.weight", vocab, dim);

  const std::string tok_path =
      tokenizer_path.empty() ? default_tokenizer_path(path, c.n_vocab) : tokenizer_path;
  model->tokenizer = std::make_unique<Tokenizer>(load_llama2c_vocab(tok_path, c.n_vocab));
  model->storage = std::move(map);
  return model;
}

}  // namespace chorus
