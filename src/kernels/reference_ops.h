// Plain scalar f32 operators of the LLaMA forward pass, written to be read
// and checked by eye (the shape of llama2.c's run.c). They are the ground
// truth every SIMD kernel is tested against; they know nothing of the model's
// graph and take raw pointers, types and sizes.
#pragma once

#include <cstdint>

#include "gguf/types.h"

namespace chorus::ref {

// out[i] = weight[i] * x[i] / sqrt(mean(x^2) + eps). out may alias x.
void rmsnorm(float* out, const float* x, const float* weight, int n, float eps);

// In-place softmax over x[0..n).
void softmax(float* x, int n);

// In-place x * sigmoid(x).
void silu(float* x, int n);

// Sum of a[i] * b[i].
float dot(const float* a, const float* b, int64_t n);

// Attention of one query head over a list of cells: out = softmax(scale *
// K q) V, where cell cells[j]'s key is keys + cells[j] * stride (likewise
// values). The kernels' `attend` takes g heads and two runs of cells.
void attend(const float* keys, const float* values, int64_t stride, const int32_t* cells, int n,
            int head_dim, float scale, const float* q, float* out);

// The LoRA delta of one row: y += scale * B (A x), with A [rank x in] and
// Bt = B transposed [rank x out], both f16 (how the engine's adapter slots
// hold them).
void lora_apply(const uint16_t* a, const uint16_t* bt, int rank, int64_t in, int64_t out,
                float scale, const float* x, float* y);

// Rotary position embedding as GGUF llama weights expect it: pairs
// (2i, 2i+1) of each head are rotated by pos * freq_scale * theta^(-2i/rope_dim)
// / freq_factors[i], for 2i < rope_dim; dimensions past rope_dim are left
// alone. freq_factors may be null (llama3 context scaling otherwise).
struct RopeParams {
  int head_dim = 0;
  int rope_dim = 0;
  float theta = 10000.0f;
  float freq_scale = 1.0f;
  const float* freq_factors = nullptr;  // [rope_dim / 2] or null
};
void rope(float* vec, int n_heads, int pos, const RopeParams& p);

// out[r] = dot(row r of W, x) for a row-major [rows x cols] matrix stored in
// GGUF type `type`; each row is dequantized to f32 before the dot product.
void matvec(float* out, gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols,
            const float* x);

// Dequantizes row r of a [rows x cols] matrix stored in `type` into out[0..cols).
void dequantize_matrix_row(float* out, gguf::TensorType type, const uint8_t* data, int64_t cols,
                           int64_t r);

}  // namespace chorus::ref
