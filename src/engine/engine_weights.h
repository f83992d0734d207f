// The engine's copy of a model's weights, in the layouts its kernels read:
// each projection is packed once, at construction, from whatever GGUF type
// the file holds into f32, Int4Matrix or Int8Matrix (the choice rules are in
// engine_weights.cc). The token embedding is not copied: rows are looked up
// straight from the mapped file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/packed_matrix.h"
#include "model/model.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace chorus {

// What the caller asks for. kAuto keeps each tensor as close to its source
// as the fast kernels allow (see choose_format in engine_weights.cc).
enum class WeightFormat : uint8_t { kAuto, kInt4, kInt8, kF32 };
using OutputFormat = WeightFormat;

// What a packed matrix actually is.
enum class PackedFormat : uint8_t { kF32, kInt4, kInt8 };

std::string_view weight_format_name(WeightFormat format);
std::string_view packed_format_name(PackedFormat format);

// One projection [rows x cols]; exactly one of the three storages is filled.
struct PackedWeight {
  PackedFormat format = PackedFormat::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  AlignedBuffer<float> f32;  // row-major [rows x cols]
  Int4Matrix int4;
  Int8Matrix int8;

  bool quantized() const { return format != PackedFormat::kF32; }
  size_t bytes() const;
};

struct EngineLayerWeights {
  AlignedBuffer<float> attn_norm, ffn_norm;  // [dim]
  PackedWeight wq, wk, wv, wo;
  PackedWeight w_gate, w_up, w_down;
};

struct EngineWeights {
  WeightView token_embedding;  // points into the model (mapped file)
  std::vector<EngineLayerWeights> layers;
  AlignedBuffer<float> output_norm;  // [dim]
  PackedWeight output;               // [n_vocab x dim]

  size_t bytes() const;  // packed bytes (norms included, embedding excluded)
};

// Packs every projection of `model`, spreading tensors over the pool. For a
// memory-mapped GGUF model the file pages of each packed tensor are released
// afterwards, so the source is not resident twice. Throws Error for tensor
// types chorus cannot read.
EngineWeights pack_engine_weights(const Model& model, WeightFormat weights, OutputFormat output,
                                  ThreadPool& pool);

// y[t * ldy + r] = dot(row r of w, x_t) for t < n and r in [r0, r1). Float
// weights read x (row t at x + t * ldx); quantized ones read xq[t].
void matmul_rows(const kernels::KernelTable& k, const PackedWeight& w, const float* x, int64_t ldx,
                 const QuantizedActivations* xq, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1);

}  // namespace chorus
