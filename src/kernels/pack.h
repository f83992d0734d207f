// Repacking GGUF tensors into chorus's fast layouts (packed_matrix.h), once,
// at load or by `chorus quantize`.
#pragma once

#include <cstdint>

#include "gguf/types.h"
#include "kernels/packed_matrix.h"

namespace chorus::kernels {

// From Q4_0, Q4_1 or Q4_K: lossless (every weight dequantizes to exactly the
// value the source gives). From F32, F16, BF16 or Q8_0: quantized per block
// of 32 with a scale and min (the best-fitting asymmetric 4-bit grid).
// Throws Error for other types or cols not a multiple of 32.
Int4Matrix pack_int4(gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols);
bool is_lossless_int4_source(gguf::TensorType type);

// From Q8_0 losslessly; from any other readable type by symmetric 8-bit
// quantization per block of 32.
Int8Matrix pack_int8(gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols);

// Dequantizes row r of a packed matrix (for tests and embedding lookups).
void dequantize_row(const Int4Matrix& m, int64_t r, float* out);
void dequantize_row(const Int8Matrix& m, int64_t r, float* out);

}  // namespace chorus::kernels
