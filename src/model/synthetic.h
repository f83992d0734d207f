// Synthetic models: real LLaMA-family shapes filled with random weights, for
// measuring speed at sizes no downloadable model has here. Speed does not
// depend on weight values; the vocabulary is a real one so text round-trips.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gguf/types.h"
#include "model/config.h"

namespace chorus {

struct SyntheticShape {
  std::string name;
  std::string description;
  ModelConfig config;
  std::string vocab_file;  // which bundled vocabulary fits ("llama-spm" or "llama-bpe")
};

// Named shapes: tinyllama-1.1b, smollm2-135m, smollm2-360m, llama-3.2-1b,
// paper-1b, paper-3b, and tiny (a few layers, for tests).
const std::vector<SyntheticShape>& synthetic_shapes();
const SyntheticShape& find_synthetic_shape(const std::string& name);  // throws Error

struct SynthOptions {
  gguf::TensorType type = gguf::TensorType::kQ4_0;  // weight matrices
  // Embedding / output head type; llama.cpp's converters keep norms in F32.
  gguf::TensorType embedding_type = gguf::TensorType::kQ4_0;
  uint64_t seed = 1;
  std::string vocab_path;  // GGUF holding tokenizer.ggml.* keys to copy
};

// Writes a GGUF llama model of `shape` with random weights (scaled like a
// trained model's so activations stay finite). progress(done, total) per tensor.
void write_synthetic_model(const SyntheticShape& shape, const SynthOptions& options,
                           const std::string& out_path,
                           const std::function<void(size_t, size_t)>& progress = nullptr);

}  // namespace chorus
