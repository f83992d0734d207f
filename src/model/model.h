// A loaded model: config, vocabulary and weight views. Weights point into the
// memory-mapped model file (GGUF, or llama2.c whose f32 arrays are used in place).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "model/config.h"
#include "model/tokenizer.h"

namespace chorus {

// A 2-D weight matrix stored row-major in one GGUF tensor type:
// `rows` rows of `cols` elements each (cols = GGUF dims[0]).
struct WeightView {
  std::string name;
  gguf::TensorType type = gguf::TensorType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;

  size_t row_bytes() const;
  const uint8_t* row(int64_t r) const { return data + r * row_bytes(); }
};

struct LayerWeights {
  WeightView attn_norm;            // [dim]
  WeightView wq, wk, wv, wo;       // q: [q_dim x dim], k/v: [kv_dim x dim], o: [dim x q_dim]
  WeightView ffn_norm;             // [dim]
  WeightView w_gate, w_up, w_down; // gate/up: [ffn x dim], down: [dim x ffn]
};

struct ModelWeights {
  WeightView token_embedding;  // [n_vocab x dim]
  std::vector<LayerWeights> layers;
  WeightView output_norm;      // [dim]
  WeightView output;           // [n_vocab x dim]; same data as the embedding when tied
  // Divisor of each of the rope_dim / 2 rotation frequencies (llama3 context
  // scaling, from rope_freqs.weight or config.rope_scaling); empty = none.
  std::vector<float> rope_freq_factors;
};

struct Model {
  std::string path;
  std::string format;  // "gguf" or "llama2.c"
  ModelConfig config;
  ModelWeights weights;
  std::unique_ptr<Tokenizer> tokenizer;
  size_t file_bytes = 0;
  std::shared_ptr<const void> storage;  // keeps the mapped file alive
};

// Loads a GGUF model (general.architecture = llama), validating every shape.
std::unique_ptr<Model> load_gguf_model(const std::string& path);
// Imports a llama2.c checkpoint and its tokenizer.bin.
std::unique_ptr<Model> load_llama2c_model(const std::string& path, const std::string& tokenizer_path);
// Picks the loader from the file's magic; tokenizer_path is for llama2.c
// files (default: tokenizer.bin / tok<vocab>.bin beside the model).
std::unique_ptr<Model> load_model(const std::string& path, const std::string& tokenizer_path = "");

}  // namespace chorus
