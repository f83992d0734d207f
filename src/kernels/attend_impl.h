// The body of KernelTable::attend, shared by the per-ISA tables: each
// includes this header and instantiates it with its own dot, axpy and
// softmax as template arguments, so the calls are direct and inline (the
// engine used to call them through the table once per cell and head, and on
// small heads the calls cost more than the arithmetic). Internal to the
// kernels layer.
#pragma once

#include <algorithm>
#include <cstdint>

namespace chorus::kernels {

template <float (*dot)(const float*, const float*, int64_t), void (*axpy)(float, const float*, float*, int64_t),
          void (*softmax)(float*, int64_t)>
inline void attend_heads(const float* keys, const float* values, int64_t stride, const int32_t* cells_a, int na,
                         const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q,
                         float* out, float* scores) {
  const int n = na + nb;
  for (int h = 0; h < g; ++h) {
    const float* qh = q + h * head_dim;
    float* s = scores + h * n;
    for (int j = 0; j < na; ++j) s[j] = dot(qh, keys + cells_a[j] * stride, head_dim) * scale;
    for (int j = 0; j < nb; ++j) s[na + j] = dot(qh, keys + cells_b[j] * stride, head_dim) * scale;
    softmax(s, n);
    float* oh = out + h * head_dim;
    std::fill(oh, oh + head_dim, 0.0f);
    for (int j = 0; j < na; ++j) axpy(s[j], values + cells_a[j] * stride, oh, head_dim);
    for (int j = 0; j < nb; ++j) axpy(s[na + j], values + cells_b[j] * stride, oh, head_dim);
  }
}

}  // namespace chorus::kernels
