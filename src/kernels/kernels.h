// The fast kernels, chosen once at start-up for the CPU at hand (runtime
// dispatch): a table of function pointers per instruction set. Every entry
// has a plain f32 reference in reference_ops.h it is tested against, on every
// instruction set the test machine can run (available_kernel_tables()).
//
// Matrix products compute, for activation rows t in [0, n) and weight rows r
// in [r0, r1):  y[t * ldy + r] = dot(W row r, x_t)
// so callers split [0, rows) across threads and all threads share y.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "kernels/packed_matrix.h"

namespace chorus::kernels {

enum class Isa { kGeneric, kAvx2, kAvxVnni, kAvx512Vnni, kNeonDotprod, kNeonI8mm };

struct KernelTable {
  Isa isa;
  std::string_view name;  // "generic", "avx2", ...

  // Quantizes x[0..n) (n a multiple of 32) into `out` (out.cols == n).
  void (*quantize_activations)(const float* x, int64_t n, const QuantizedActivations& out);

  void (*matmul_int4)(const Int4Matrix& w, const QuantizedActivations* x, int n, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
  void (*matmul_int8)(const Int8Matrix& w, const QuantizedActivations* x, int n, float* y,
                      int64_t ldy, int64_t r0, int64_t r1);
  // Row-major f32 weights [rows x cols]; x_t = x + t * ldx.
  void (*matmul_f32)(const float* w, int64_t cols, const float* x, int64_t ldx, int n, float* y,
                     int64_t ldy, int64_t r0, int64_t r1);

  void (*rmsnorm)(float* out, const float* x, const float* weight, int64_t n, float eps);
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float a, const float* x, float* y, int64_t n);  // y += a * x
  void (*softmax)(float* x, int64_t n);
  void (*silu_mul)(float* gate, const float* up, int64_t n);  // gate = silu(gate) * up

  // Masked attention of g query heads sharing one KV head (grouped-query
  // attention) over the cells a row may see, listed as two runs of cell
  // indices (committed cells, then in-step ancestors). Cell c's key is at
  // keys + c * stride, its value at values + c * stride (head_dim floats).
  // For head h < g: out_h = softmax(scale * K q_h) V, with q_h = q + h *
  // head_dim, out_h = out + h * head_dim; scores holds g * (na + nb) floats.
  void (*attend)(const float* keys, const float* values, int64_t stride, const int32_t* cells_a, int na,
                 const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q,
                 float* out, float* scores);
  // `attend` over an f16 cache (IEEE half bits): the same bits `attend`
  // gives over an f32 cache holding the same values, since each value is
  // widened exactly at load and then goes through attend's float ops.
  // scores holds g * (na + nb) + head_dim floats (the tail is scratch).
  void (*attend_f16)(const uint16_t* keys, const uint16_t* values, int64_t stride, const int32_t* cells_a,
                     int na, const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q,
                     float* out, float* scores);

  // LoRA, SGMV-style: one adapter's pair applied to a group of n activation
  // rows (indices rows[g] into x and y). Adapter matrices are f16.
  // Shrink: t[g * ldt + j] = scale * dot(A row j, x_rows[g]) for j < rank,
  // with A [rank x in] and x_r = x + r * ldx.
  void (*lora_shrink)(const uint16_t* a, int rank, int64_t in, const float* x, int64_t ldx,
                      const int32_t* rows, int n, float scale, float* t, int64_t ldt);
  // Expand: y_rows[g][o] += sum_j t[g * ldt + j] * Bt[j * out + o] for o in
  // [o0, o1), with Bt = B transposed [rank x out] and y_r = y + r * ldy.
  void (*lora_expand)(const uint16_t* bt, int rank, int64_t out, const float* t, int64_t ldt,
                      const int32_t* rows, int n, float* y, int64_t ldy, int64_t o0, int64_t o1);
};

// The best table this CPU supports (CHORUS_ISA=generic|avx2|... overrides,
// for comparisons).
const KernelTable& best_kernel_table();
// Every table this CPU can run, generic first.
std::vector<const KernelTable*> available_kernel_tables();
std::string_view isa_name(Isa isa);

}  // namespace chorus::kernels
