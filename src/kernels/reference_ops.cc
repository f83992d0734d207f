// Scalar reference operators; see reference_ops.h.
#include "kernels/reference_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gguf/quants.h"
#include "util/half.h"

namespace chorus::ref {

void rmsnorm(float* out, const float* x, const float* weight, int n, float eps) {
  float ss = 0.0f;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) out[i] = weight[i] * (scale * x[i]);
}

void softmax(float* x, int n) {
  float max_val = x[0];
  for (int i = 1; i < n; ++i) max_val = std::max(max_val, x[i]);
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_val);
    sum += x[i];
  }
  for (int i = 0; i < n; ++i) x[i] /= sum;
}

void attend(const float* keys, const float* values, int64_t stride, const int32_t* cells, int n,
            int head_dim, float scale, const float* q, float* out) {
  std::vector<float> scores(static_cast<size_t>(n));
  for (int j = 0; j < n; ++j) scores[j] = dot(q, keys + cells[j] * stride, head_dim) * scale;
  softmax(scores.data(), n);
  for (int d = 0; d < head_dim; ++d) {
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) sum += scores[j] * values[cells[j] * stride + d];
    out[d] = sum;
  }
}

void silu(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

float dot(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums let the compiler vectorize the loop
  // without -ffast-math; the reference is still a plain f32 dot product.
  constexpr int kLanes = 8;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float sum = 0.0f;
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void rope(float* vec, int n_heads, int pos, const RopeParams& p) {
  for (int i = 0; i < p.rope_dim / 2; ++i) {
    // The angle is formed in double so that long positions keep precision;
    // only the final rotation is f32.
    double angle = pos * static_cast<double>(p.freq_scale) *
                   std::pow(static_cast<double>(p.theta), -2.0 * i / p.rope_dim);
    if (p.freq_factors != nullptr) angle /= p.freq_factors[i];
    const float c = static_cast<float>(std::cos(angle));
    const float s = static_cast<float>(std::sin(angle));
    for (int h = 0; h < n_heads; ++h) {
      float* v = vec + static_cast<int64_t>(h) * p.head_dim + 2 * i;
      const float v0 = v[0];
      const float v1 = v[1];
      v[0] = v0 * c - v1 * s;
      v[1] = v0 * s + v1 * c;
    }
  }
}

void dequantize_matrix_row(float* out, gguf::TensorType type, const uint8_t* data, int64_t cols,
                           int64_t r) {
  const size_t row_bytes = gguf::row_bytes(type, cols);
  gguf::dequantize_row(type, data + r * row_bytes, out, cols);
}

void matvec(float* out, gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols,
            const float* x) {
  if (type == gguf::TensorType::kF32) {
    const float* w = reinterpret_cast<const float*>(data);
    for (int64_t r = 0; r < rows; ++r) out[r] = dot(w + r * cols, x, cols);
    return;
  }
  // One scratch row per thread, grown to the widest matrix seen.
  thread_local std::vector<float> row;
  if (static_cast<int64_t>(row.size()) < cols) row.resize(cols);
  const size_t row_bytes = gguf::row_bytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    gguf::dequantize_row(type, data + r * row_bytes, row.data(), cols);
    out[r] = dot(row.data(), x, cols);
  }
}

void lora_apply(const uint16_t* a, const uint16_t* bt, int rank, int64_t in, int64_t out,
                float scale, const float* x, float* y) {
  for (int j = 0; j < rank; ++j) {
    double t = 0.0;
    for (int64_t c = 0; c < in; ++c) t += static_cast<double>(f16_to_f32(a[j * in + c])) * x[c];
    const float tj = static_cast<float>(t) * scale;
    for (int64_t o = 0; o < out; ++o) y[o] += tj * f16_to_f32(bt[j * out + o]);
  }
}

}  // namespace chorus::ref
