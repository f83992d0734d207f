// chorus's own weight layouts for the fast path, repacked once at load:
//
// Int4Matrix: 4-bit unsigned quants in blocks of 32 columns, value =
//   scale * q + min. Symmetric sources (Q4_0: value = d * (q - 8)) become
//   min = -8 * d; asymmetric ones (Q4_1, Q4_K) keep their min, so all three
//   load without loss. Rows are interleaved at pack time in groups of
//   kRowGroup = 8, so that a product with several activation rows needs no
//   transpose at run time: one 256-bit vector holds 4 columns of each of
//   the 8 rows, and a broadcast of 4 activation bytes gives one lane per
//   weight row (x86 vpmaddubsw, Arm SDOT by lane). A tile (group g, block b)
//   is 128 bytes at (g * blocks + b) * 128: four 32-byte vectors; in vector
//   p, byte 4 * j + c holds in its low nibble the code of column 4p + c of
//   row 8g + j and in its high nibble that of column 16 + 4p + c (columns
//   relative to the block). A group's tiles follow each other, so a product
//   streams the matrix front to back. Scales and mins live in their own
//   arrays [group][block][8 rows], f16 when the source's are f16 (Q4_0,
//   Q4_1), f32 when they are products that f16 cannot hold exactly (Q4_K).
//   Rows past the end of the last group are zero codes with zero scale and
//   min, so kernels may compute whole groups.
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

constexpr int kRowGroup = 8;                                // weight rows per interleaved group
constexpr int kInt4TileBytes = kRowGroup * kQuantBlock / 2;  // one group x one block

struct Int4Matrix {
  int64_t rows = 0;
  int64_t cols = 0;  // multiple of kQuantBlock
  ScaleFormat scale_format = ScaleFormat::kF16;
  // Every min is exactly -8 * scale (Q4_0 sources): the mins array is left
  // empty and kernels derive mins from scales, a tenth less memory and
  // memory traffic.
  bool symmetric = false;
  AlignedBuffer<uint8_t> quants;  // groups() * blocks() tiles of kInt4TileBytes
  AlignedBuffer<uint8_t> scales;  // groups() * blocks() * kRowGroup values of scale_format
  AlignedBuffer<uint8_t> mins;    // same shape as scales; empty when symmetric

  // A zeroed matrix of the given shape, filled with set_block().
  static Int4Matrix allocate(int64_t rows, int64_t cols, ScaleFormat format, bool symmetric) {
    Int4Matrix m;
    m.rows = rows;
    m.cols = cols;
    m.scale_format = format;
    m.symmetric = symmetric;
    const auto params = static_cast<size_t>(m.groups() * m.blocks() * kRowGroup);
    m.quants = AlignedBuffer<uint8_t>(static_cast<size_t>(m.groups() * m.blocks()) * kInt4TileBytes);
    m.scales = AlignedBuffer<uint8_t>(params * m.scale_bytes());
    if (!symmetric) m.mins = AlignedBuffer<uint8_t>(params * m.scale_bytes());
    return m;
  }

  int64_t blocks() const { return cols / kQuantBlock; }
  int64_t groups() const { return (rows + kRowGroup - 1) / kRowGroup; }
  size_t scale_bytes() const { return scale_format == ScaleFormat::kF16 ? 2 : 4; }
  size_t bytes() const { return quants.bytes() + scales.bytes() + mins.bytes(); }

  // The tile of group g, block b; its 8 scales (mins) start at element
  // param_index(8 * g, b).
  const uint8_t* tile(int64_t g, int64_t b) const { return quants.data() + (g * blocks() + b) * kInt4TileBytes; }
  int64_t param_index(int64_t r, int64_t b) const {
    return ((r / kRowGroup) * blocks() + b) * kRowGroup + r % kRowGroup;
  }

  // Scalar accessors (packing, tests, slow paths; the kernels read the arrays).
  float scale(int64_t r, int64_t b) const { return load_param(scales.data(), param_index(r, b)); }
  float min(int64_t r, int64_t b) const {
    return symmetric ? -8.0f * scale(r, b) : load_param(mins.data(), param_index(r, b));
  }
  // The 32 codes (0..15) of block b of row r, in column order.
  void block_codes(int64_t r, int64_t b, uint8_t* codes) const {
    const uint8_t* t = tile(r / kRowGroup, b) + 4 * (r % kRowGroup);
    for (int c = 0; c < kQuantBlock / 2; ++c) {
      const uint8_t byte = t[32 * (c / 4) + c % 4];
      codes[c] = byte & 0x0F;
      codes[c + kQuantBlock / 2] = byte >> 4;
    }
  }
  // Stores block b of row r: 32 codes (0..15), its scale and min (the min
  // is ignored when symmetric). f16 parameters are rounded to nearest.
  void set_block(int64_t r, int64_t b, const uint8_t* codes, float scale, float min) {
    uint8_t* t = quants.data() + (r / kRowGroup * blocks() + b) * kInt4TileBytes + 4 * (r % kRowGroup);
    for (int c = 0; c < kQuantBlock / 2; ++c) {
      t[32 * (c / 4) + c % 4] = static_cast<uint8_t>((codes[c] & 0x0F) | (codes[c + kQuantBlock / 2] << 4));
    }
    store_param(scales.data(), param_index(r, b), scale);
    if (!symmetric) store_param(mins.data(), param_index(r, b), min);
  }

 private:
  float load_param(const uint8_t* base, int64_t i) const {
    if (scale_format == ScaleFormat::kF32) {
      float f;
      std::memcpy(&f, base + 4 * i, sizeof(f));
      return f;
    }
    uint16_t h;
    std::memcpy(&h, base + 2 * i, sizeof(h));
    return f16_to_f32(h);
  }
  void store_param(uint8_t* base, int64_t i, float v) const {
    if (scale_format == ScaleFormat::kF32) {
      std::memcpy(base + 4 * i, &v, sizeof(v));
    } else {
      const uint16_t h = f32_to_f16(v);
      std::memcpy(base + 2 * i, &h, sizeof(h));
    }
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
