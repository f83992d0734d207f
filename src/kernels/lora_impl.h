// The plain LoRA expand, y[rows[g]][o0..o1) += B t_g, shared by the per-ISA
// tables: the generic table's whole kernel, and the ragged end of the
// vectorized ones' column tiles. Internal linkage on purpose: each table's
// file compiles it with its own instruction-set flags, and one shared
// (inline, linker-merged) copy could carry AVX2 code into the generic table.
// Internal to the kernels layer.
#pragma once

#include <cstdint>

#include "util/half.h"

namespace chorus::kernels {
namespace {

void lora_expand_plain(const uint16_t* bt, int rank, int64_t out, const float* t, int64_t ldt,
                       const int32_t* rows, int n, float* y, int64_t ldy, int64_t o0, int64_t o1) {
  for (int j = 0; j < rank; ++j) {
    const uint16_t* bj = bt + j * out;
    for (int g = 0; g < n; ++g) {
      const float tj = t[g * ldt + j];
      float* yr = y + rows[g] * ldy;
      for (int64_t o = o0; o < o1; ++o) yr[o] += tj * f16_to_f32(bj[o]);
    }
  }
}

}  // namespace
}  // namespace chorus::kernels
