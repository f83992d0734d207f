// Reference (scalar, f32) conversion between the GGUF block formats and f32.
// These are the ground truth every fast kernel is tested against, and must
// match llama.cpp's dequantization bit for bit.
#pragma once

#include <cstdint>

#include "gguf/types.h"

namespace chorus::gguf {

// Dequantizes n elements (a multiple of the type's block size) starting at the
// beginning of a block. Throws Error for types chorus cannot read.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// Quantizes n elements into `dst` (row_bytes(type, n) bytes). Supported for
// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K (what `synth` and tests write);
// throws Error for others.
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);
bool can_quantize(TensorType type);

// Scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block, unpacked
// from its 12 bytes of 6-bit fields (llama.cpp's get_scale_min_k4); shared
// by the dequantizer and the INT4 repacker so both read the format alike.
void scale_min_k4(int j, const uint8_t* s, int* scale, int* min);

}  // namespace chorus::gguf
