// Rewriting a GGUF llama model with its matrices in another block type:
// what `chorus quantize` does, and how tests make the 4-bit files of the
// bundled model that the INT4 kernels run on. The output is a standard GGUF
// (llama.cpp loads it too).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "gguf/types.h"

namespace chorus::gguf {

struct QuantizeFileOptions {
  TensorType type = TensorType::kQ4_0;          // the layer matrices
  std::optional<TensorType> embedding_type;     // token_embd; default: type
  TensorType output_type = TensorType::kQ8_0;  // the output head
  bool allow_requantize = false;                // quantize tensors that already are
};

struct QuantizeFileReport {
  size_t bytes_in = 0;
  size_t bytes_out = 0;
};

// Matrices whose rows are not whole blocks of the target type keep their
// type (stories260K's 64 columns are no Q4_K block of 256, for instance).
// Throws Error for a type chorus cannot write, a model that is not llama,
// or an already quantized tensor without allow_requantize.
QuantizeFileReport quantize_file(const std::string& input, const std::string& output,
                                 const QuantizeFileOptions& options,
                                 const std::function<void(size_t, size_t)>& progress = nullptr);

}  // namespace chorus::gguf
