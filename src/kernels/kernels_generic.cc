// The portable kernel table: plain C++ the compiler may vectorize for the
// baseline of the target. It runs on any CPU (the fallback where the CPU
// lacks what the other tables need), so it favours clarity, but keeps the
// loop orders that matter: a weight block is decoded once and reused for
// every activation row.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attend_impl.h"
#include "kernels/isa_tables.h"
#include "kernels/reference_ops.h"
#include "util/half.h"

namespace chorus::kernels {
namespace {

constexpr int kQK = kQuantBlock;

int round_clamp127(float v) {
  if (!(v >= -127.0f)) return -127;  // also NaN
  if (v > 127.0f) return 127;
  return static_cast<int>(std::nearbyint(v));  // ties to even, like cvtps2dq
}

void quantize_activations(const float* x, int64_t n, const QuantizedActivations& out) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int q = round_clamp127(xb[j] * id);
      out.q[b * kQK + j] = static_cast<int8_t>(q);
      sum += q;
    }
    out.scale[b] = d;
    out.scaled_sum[b] = d * static_cast<float>(sum);
  }
}

// Sum of codes[j] * q[j] over a block, written so compilers vectorize it.
int32_t block_dot(const uint8_t* codes, const int8_t* q) {
  int32_t sum = 0;
  for (int j = 0; j < kQK; ++j) sum += static_cast<int32_t>(codes[j]) * static_cast<int32_t>(q[j]);
  return sum;
}

// The codes of one tile (a group of kRowGroup rows x one block), row-major
// [row][column].
void tile_codes(const uint8_t* tile, uint8_t codes[kRowGroup][kQK]) {
  for (int p = 0; p < 4; ++p) {
    for (int j = 0; j < kRowGroup; ++j) {
      for (int c = 0; c < 4; ++c) {
        const uint8_t byte = tile[32 * p + 4 * j + c];
        codes[j][4 * p + c] = byte & 0x0F;
        codes[j][kQK / 2 + 4 * p + c] = byte >> 4;
      }
    }
  }
}

void matmul_int4(const Int4Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  const int64_t blocks = w.blocks();
  constexpr int kActRows = 8;  // activation rows sharing each decoded tile
  uint8_t codes[kRowGroup][kQK];
  float acc[kActRows][kRowGroup];
  for (int64_t g = r0 / kRowGroup; g * kRowGroup < r1; ++g) {
    const int64_t lo = std::max(r0, g * kRowGroup);
    const int64_t hi = std::min(r1, (g + 1) * kRowGroup);
    for (int t0 = 0; t0 < n; t0 += kActRows) {
      const int tn = std::min(kActRows, n - t0);
      for (int t = 0; t < tn; ++t) std::fill(acc[t], acc[t] + kRowGroup, 0.0f);
      for (int64_t b = 0; b < blocks; ++b) {
        tile_codes(w.tile(g, b), codes);
        for (int64_t r = lo; r < hi; ++r) {
          const int j = static_cast<int>(r - g * kRowGroup);
          const float s = w.scale(r, b);
          const float m = w.min(r, b);
          for (int t = 0; t < tn; ++t) {
            const QuantizedActivations& xt = x[t0 + t];
            const int32_t isum = block_dot(codes[j], xt.q + b * kQK);
            acc[t][j] += s * xt.scale[b] * static_cast<float>(isum) + m * xt.scaled_sum[b];
          }
        }
      }
      for (int t = 0; t < tn; ++t) {
        for (int64_t r = lo; r < hi; ++r) y[(t0 + t) * ldy + r] = acc[t][r - g * kRowGroup];
      }
    }
  }
}

void matmul_int8(const Int8Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  const int64_t blocks = w.blocks();
  for (int64_t r = r0; r < r1; ++r) {
    const int8_t* wq = w.row_quants(r);
    for (int t = 0; t < n; ++t) {
      float acc = 0.0f;
      for (int64_t b = 0; b < blocks; ++b) {
        const int8_t* q = x[t].q + b * kQK;
        int32_t isum = 0;
        for (int j = 0; j < kQK; ++j) isum += wq[b * kQK + j] * q[j];
        acc += w.scale(r, b) * x[t].scale[b] * static_cast<float>(isum);
      }
      y[t * ldy + r] = acc;
    }
  }
}

// The portable dot product is the reference one: it is already written so
// the compiler vectorizes it.
float dot(const float* a, const float* b, int64_t n) { return ref::dot(a, b, n); }

void matmul_f32(const float* w, int64_t cols, const float* x, int64_t ldx, int n, float* y, int64_t ldy,
                int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    for (int t = 0; t < n; ++t) y[t * ldy + r] = dot(w + r * cols, x + t * ldx, cols);
  }
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = weight[i] * (scale * x[i]);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float max_val = *std::max_element(x, x + n);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max_val);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void lora_shrink(const uint16_t* a, int rank, int64_t in, const float* x, int64_t ldx,
                 const int32_t* rows, int n, float scale, float* t, int64_t ldt) {
  for (int j = 0; j < rank; ++j) {
    const uint16_t* aj = a + j * in;
    for (int g = 0; g < n; ++g) {
      const float* xr = x + rows[g] * ldx;
      float acc = 0.0f;
      for (int64_t c = 0; c < in; ++c) acc += f16_to_f32(aj[c]) * xr[c];
      t[g * ldt + j] = scale * acc;
    }
  }
}

void lora_expand(const uint16_t* bt, int rank, int64_t out, const float* t, int64_t ldt, const int32_t* rows,
                 int n, float* y, int64_t ldy, int64_t o0, int64_t o1) {
  for (int j = 0; j < rank; ++j) {
    const uint16_t* bj = bt + j * out;
    for (int g = 0; g < n; ++g) {
      const float tj = t[g * ldt + j];
      float* yr = y + rows[g] * ldy;
      for (int64_t o = o0; o < o1; ++o) yr[o] += tj * f16_to_f32(bj[o]);
    }
  }
}

void attend(const float* keys, const float* values, int64_t stride, const int32_t* cells_a, int na,
            const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q, float* out,
            float* scores) {
  attend_heads<dot, axpy, softmax>(keys, values, stride, cells_a, na, cells_b, nb, head_dim, g, scale, q, out,
                                   scores);
}

void widen_f16(const uint16_t* h, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(h[i]);
}

void attend_f16(const uint16_t* keys, const uint16_t* values, int64_t stride, const int32_t* cells_a, int na,
                const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q, float* out,
                float* scores) {
  attend_heads<dot, axpy, softmax, uint16_t, widen_f16>(keys, values, stride, cells_a, na, cells_b, nb, head_dim,
                                                         g, scale, q, out, scores);
}

}  // namespace
}  // namespace chorus::kernels

#include "kernels/kernel_table_of-inl.h"

namespace chorus::kernels {

const KernelTable& generic_kernel_table() {
  static constexpr KernelTable table = kernel_table_of(Isa::kGeneric, "generic");
  return table;
}

}  // namespace chorus::kernels
