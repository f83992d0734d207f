// chorus's own weight layouts for the fast path, repacked once at load:
//
// Int4Matrix: 4-bit unsigned quants in blocks of 32 columns, value =
//   scale * q + min. Symmetric sources (Q4_0: value = d * (q - 8)) become
//   min = -8 * d; asymmetric ones (Q4_1, Q4_K) keep their min, so all three
//   load without loss. Quants of a row are stored in chunks of 32 bytes that
//   hold 64 columns: byte j = column j (low nibble) | column 32 + j (high
//   nibble), so one 256-bit load feeds two blocks (an odd last block uses
//   a 16-byte half chunk laid out like a GGUF Q4 block: byte j = column j
//   (low nibble) | column 16 + j (high nibble)). Scales and mins live in their
//   own arrays [rows][blocks], f16 when the source's are f16 (Q4_0, Q4_1),
//   f32 when they are products that f16 cannot hold exactly (Q4_K).
//
// Int8Matrix: symmetric 8-bit quants in blocks of 32 (Q8_0's values), f16
//   scales in their own array; for the embedding and output head.
#pragma once

#include <cstdint>
#include <cstring>

#include "util/aligned_buffer.h"
#include "util/half.h"

namespace chorus {

constexpr int kQuantBlock = 32;

enum class ScaleFormat : uint8_t { kF16, kF32 };

struct Int4Matrix {
  int64_t rows = 0;
  int64_t cols = 0;  // multiple of kQuantBlock
  ScaleFormat scale_format = ScaleFormat::kF16;
  // Every min is exactly -8 * scale (Q4_0 sources): the mins array is left
  // empty and kernels derive mins from scales, a tenth less memory and
  // memory traffic.
  bool symmetric = false;
  AlignedBuffer<uint8_t> quants;   // rows * row_quant_bytes()
  AlignedBuffer<uint8_t> scales;   // rows * blocks() values of scale_format
  AlignedBuffer<uint8_t> mins;     // same shape as scales; empty when symmetric

  int64_t blocks() const { return cols / kQuantBlock; }
  int64_t row_quant_bytes() const { return cols / 2; }
  size_t scale_bytes() const { return scale_format == ScaleFormat::kF16 ? 2 : 4; }
  size_t bytes() const { return quants.bytes() + scales.bytes() + mins.bytes(); }

  // Scalar accessors (packing, tests, slow paths; the kernels read the arrays).
  const uint8_t* row_quants(int64_t r) const { return quants.data() + r * row_quant_bytes(); }
  float scale(int64_t r, int64_t b) const { return load_scale(scales.data(), r * blocks() + b); }
  float min(int64_t r, int64_t b) const {
    return symmetric ? -8.0f * scale(r, b) : load_scale(mins.data(), r * blocks() + b);
  }
  // The 32 codes (0..15) of block b of row r, in column order.
  void block_codes(int64_t r, int64_t b, uint8_t* codes) const {
    const uint8_t* chunk = row_quants(r) + 32 * (b / 2);
    if (b % 2 == 0 && b == blocks() - 1) {  // odd last block: half chunk
      for (int j = 0; j < kQuantBlock / 2; ++j) {
        codes[j] = chunk[j] & 0x0F;
        codes[j + kQuantBlock / 2] = chunk[j] >> 4;
      }
    } else {
      const int shift = (b % 2) * 4;
      for (int j = 0; j < kQuantBlock; ++j) codes[j] = (chunk[j] >> shift) & 0x0F;
    }
  }

 private:
  float load_scale(const uint8_t* base, int64_t i) const {
    if (scale_format == ScaleFormat::kF32) {
      float f;
      std::memcpy(&f, base + 4 * i, sizeof(f));
      return f;
    }
    uint16_t h;
    std::memcpy(&h, base + 2 * i, sizeof(h));
    return f16_to_f32(h);
  }
};

struct Int8Matrix {
  int64_t rows = 0;
  int64_t cols = 0;  // multiple of kQuantBlock
  AlignedBuffer<int8_t> quants;    // rows * cols
  AlignedBuffer<uint16_t> scales;  // f16, rows * blocks()

  int64_t blocks() const { return cols / kQuantBlock; }
  size_t bytes() const { return quants.bytes() + scales.bytes(); }

  const int8_t* row_quants(int64_t r) const { return quants.data() + r * cols; }
  float scale(int64_t r, int64_t b) const { return f16_to_f32(scales[r * blocks() + b]); }
};

// Activations quantized for the integer dot products: int8 per block of 32
// with an f32 scale, plus scale * sum(q) per block (what the min term of an
// Int4Matrix row multiplies). A view into caller-owned (arena) memory.
struct QuantizedActivations {
  int64_t cols = 0;
  int8_t* q = nullptr;      // [cols]
  float* scale = nullptr;   // [cols / 32]
  float* scaled_sum = nullptr;  // [cols / 32]: scale * sum of the block's q
};

}  // namespace chorus
