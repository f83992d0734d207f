// The body of KernelTable::attend and attend_f16, shared by the per-ISA
// tables: each includes this header and instantiates it with its own dot,
// axpy and softmax as template arguments, so the calls are direct and
// inline (the engine used to call them through the table once per cell and
// head, and on small heads the calls cost more than the arithmetic).
// Internal to the kernels layer.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace chorus::kernels {

// Cache is float or uint16_t (f16 bits). An f16 cell row is widened
// (exactly) into scratch first and then goes through the same dot/axpy as
// an f32 row, so both caches give the same bits for the same values;
// `widen` converts n f16 values to f32 (the table's fastest exact way).
template <float (*dot)(const float*, const float*, int64_t), void (*axpy)(float, const float*, float*, int64_t),
          void (*softmax)(float*, int64_t), typename Cache = float,
          void (*widen)(const uint16_t*, float*, int64_t) = nullptr>
inline void attend_heads(const Cache* keys, const Cache* values, int64_t stride, const int32_t* cells_a, int na,
                         const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q,
                         float* out, float* scores) {
  const int n = na + nb;
  float* scratch = scores + g * n;  // attend_f16's head_dim floats after the scores
  auto row = [&](const Cache* base, int32_t cell) -> const float* {
    if constexpr (std::is_same_v<Cache, float>) {
      return base + cell * stride;
    } else {
      widen(base + cell * stride, scratch, head_dim);
      return scratch;
    }
  };
  for (int h = 0; h < g; ++h) {
    const float* qh = q + h * head_dim;
    float* s = scores + h * n;
    for (int j = 0; j < na; ++j) s[j] = dot(qh, row(keys, cells_a[j]), head_dim) * scale;
    for (int j = 0; j < nb; ++j) s[na + j] = dot(qh, row(keys, cells_b[j]), head_dim) * scale;
    softmax(s, n);
    float* oh = out + h * head_dim;
    std::fill(oh, oh + head_dim, 0.0f);
    for (int j = 0; j < na; ++j) axpy(s[j], row(values, cells_a[j]), oh, head_dim);
    for (int j = 0; j < nb; ++j) axpy(s[na + j], row(values, cells_b[j]), oh, head_dim);
  }
}

}  // namespace chorus::kernels
