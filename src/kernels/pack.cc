// Repacking of GGUF tensors into Int4Matrix / Int8Matrix (pack.h), and the
// scalar dequantization of packed rows. Lossless sources are decoded block by
// block into (scale, min, codes) and rewritten in our layout; float sources
// are fitted per block of 32.
#include "kernels/pack.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "gguf/quants.h"
#include "util/error.h"
#include "util/half.h"

namespace chorus::kernels {
namespace {

constexpr int kQK = kQuantBlock;
constexpr int kQKK = 256;  // elements per Q4_K super-block

// One block of 32 weights before it is written into the packed layout:
// value[j] = scale * codes[j] + min, codes in 0..15.
struct Block4 {
  float scale = 0.0f;
  float min = 0.0f;
  uint8_t codes[kQK] = {};
};

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return f16_to_f32(h);
}

// Q4 nibble order (element j low, j + 16 high) -> codes in column order.
void unpack_q4_nibbles(const uint8_t* qs, uint8_t* codes) {
  for (int j = 0; j < kQK / 2; ++j) {
    codes[j] = qs[j] & 0x0F;
    codes[j + kQK / 2] = qs[j] >> 4;
  }
}

void decode_q4_0(const uint8_t* src, Block4* out) {
  const float d = load_f16(src);
  out->scale = d;
  out->min = -8.0f * d;  // exact: d has an 11-bit mantissa
  unpack_q4_nibbles(src + 2, out->codes);
}

void decode_q4_1(const uint8_t* src, Block4* out) {
  out->scale = load_f16(src);
  out->min = load_f16(src + 2);
  unpack_q4_nibbles(src + 4, out->codes);
}

// A Q4_K super-block gives eight of our blocks. The products d * scale and
// dmin * min are formed exactly as the reference dequantizer forms them (and
// are exact in f32), so scale * q + min rounds to the very same float.
void decode_q4_k(const uint8_t* src, Block4* out) {
  const float d = load_f16(src);
  const float dmin = load_f16(src + 2);
  const uint8_t* sm = src + 4;
  const uint8_t* qs = src + 16;
  for (int j = 0; j < 8; ++j) {
    int sc = 0;
    int m = 0;
    gguf::scale_min_k4(j, sm, &sc, &m);
    out[j].scale = d * static_cast<float>(sc);
    out[j].min = -(dmin * static_cast<float>(m));
    const uint8_t* q = qs + 32 * (j / 2);
    const int shift = (j % 2) * 4;
    for (int l = 0; l < kQK; ++l) out[j].codes[l] = (q[l] >> shift) & 0x0F;
  }
}

// Rounds a fitted scale or min to what the matrix will store.
float round_param(float v, ScaleFormat format) {
  return format == ScaleFormat::kF16 ? f16_to_f32(f32_to_f16(v)) : v;
}

// Nearest integer in [lo, hi], halves away from zero (as ggml's roundf);
// written out because nearbyint is a slow library call on baseline x86-64.
int nearest_code(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;  // also NaN
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v + (v >= 0.0f ? 0.5f : -0.5f));
}

// Packing a float model fits millions of blocks, so the loops below are
// branch-free and keep 8 partial sums (float sums only vectorize when their
// order is spelt out).
constexpr int kLanes = 8;

// Clamp to [0, 15] as value selects, which vectorize (std::min and std::max
// return references and stay branches; see also -fno-trapping-math on this
// file in CMakeLists.txt).
inline float clamp_code(float v) {
  v = v > 0.0f ? v : 0.0f;
  return v < 15.0f ? v : 15.0f;
}

// Codes for x under a stored (scale, min); returns the squared error.
float assign_codes(const float* x, float scale, float min, uint8_t* codes) {
  const float inv = scale > 0.0f && scale < 1e30f ? 1.0f / scale : 0.0f;
  float diff[kQK];
  for (int j = 0; j < kQK; ++j) {
    const int q = static_cast<int>(clamp_code((x[j] - min) * inv) + 0.5f);
    codes[j] = static_cast<uint8_t>(q);
    diff[j] = scale * static_cast<float>(q) + min - x[j];
  }
  float err[kLanes] = {};
  for (int j0 = 0; j0 < kQK; j0 += kLanes) {
    for (int l = 0; l < kLanes; ++l) err[l] += diff[j0 + l] * diff[j0 + l];
  }
  float sum = 0.0f;
  for (const float e : err) sum += e;
  return sum;
}

// Best asymmetric 4-bit grid for one block: start from the min/max grid and
// from slightly narrower and wider ones, refit scale and min to each
// assignment by least squares, and keep the lowest squared error measured
// with the parameters as stored (rounded to f16 when the matrix is f16).
void fit_block4(const float* xin, ScaleFormat format, Block4* out) {
  float x[kQK];
  for (int j = 0; j < kQK; ++j) {
    // Non-finite inputs cannot be represented; clamp them so the rest of
    // the block still gets a sensible grid.
    const float v = xin[j];
    x[j] = std::isnan(v) ? 0.0f : std::clamp(v, -3.0e38f, 3.0e38f);
  }
  float lo = x[0];
  float hi = x[0];
  for (int j = 1; j < kQK; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
  }
  out->min = round_param(lo, format);
  out->scale = 0.0f;
  float best = assign_codes(x, 0.0f, out->min, out->codes);
  if (!(hi > lo)) return;

  uint8_t trial[kQK];
  auto consider = [&](float scale, float min) {
    scale = round_param(scale, format);
    min = round_param(min, format);
    if (!(scale > 0.0f) || !std::isfinite(scale) || !std::isfinite(min)) return;
    const float err = assign_codes(x, scale, min, trial);
    if (err < best) {
      best = err;
      out->scale = scale;
      out->min = min;
      std::memcpy(out->codes, trial, kQK);
    }
  };
  consider((hi - lo) / 15.0f, lo);  // the plain min/max grid
  for (const float levels : {15.0f, 14.5f, 15.5f}) {
    // Least squares for x ~ scale * q + min over this grid's codes.
    const float iscale = levels / (hi - lo);
    float q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = static_cast<float>(static_cast<int>(clamp_code((x[j] - lo) * iscale) + 0.5f));
    float lq[kLanes] = {}, lqq[kLanes] = {}, lx[kLanes] = {}, lqx[kLanes] = {};
    for (int j0 = 0; j0 < kQK; j0 += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        lq[l] += q[j0 + l];
        lqq[l] += q[j0 + l] * q[j0 + l];
        lx[l] += x[j0 + l];
        lqx[l] += q[j0 + l] * x[j0 + l];
      }
    }
    float sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int l = 0; l < kLanes; ++l) {
      sq += lq[l];
      sqq += lqq[l];
      sx += lx[l];
      sqx += lqx[l];
    }
    const float det = kQK * sqq - sq * sq;
    if (!(det > 0.0f)) continue;
    consider((kQK * sqx - sq * sx) / det, (sqq * sx - sq * sqx) / det);
  }
}

void check_shape(const char* where, gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols) {
  check(rows >= 0 && cols > 0 && cols % kQuantBlock == 0, where,
        "cannot pack a {} x {} matrix: columns must be a positive multiple of {}", rows, cols, kQuantBlock);
  const gguf::TypeTraits& t = gguf::type_traits(type);
  check(cols % t.block_size == 0, where, "cannot pack {} rows of {} columns: not whole {}-element blocks", t.name,
        cols, t.block_size);
  check(data != nullptr || rows == 0, where, "no tensor data");
}

// Fills an Int4Matrix from per-row decoded blocks; decode(r, blocks_out)
// produces the row's blocks.
template <typename DecodeRow>
Int4Matrix build_int4(int64_t rows, int64_t cols, ScaleFormat format, bool symmetric,
                      DecodeRow decode) {
  Int4Matrix m = Int4Matrix::allocate(rows, cols, format, symmetric);
  const int64_t blocks = m.blocks();
  std::vector<Block4> row_blocks(static_cast<size_t>(blocks));
  for (int64_t r = 0; r < rows; ++r) {
    decode(r, row_blocks.data());
    for (int64_t b = 0; b < blocks; ++b) {
      const Block4& blk = row_blocks[static_cast<size_t>(b)];
      m.set_block(r, b, blk.codes, blk.scale, blk.min);
    }
  }
  return m;
}

bool holds_in_f16(float v) { return std::bit_cast<uint32_t>(f16_to_f32(f32_to_f16(v))) == std::bit_cast<uint32_t>(v); }

}  // namespace

bool is_lossless_int4_source(gguf::TensorType type) {
  return type == gguf::TensorType::kQ4_0 || type == gguf::TensorType::kQ4_1 || type == gguf::TensorType::kQ4_K;
}

Int4Matrix pack_int4(gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols) {
  using gguf::TensorType;
  constexpr const char* kWhere = "pack_int4";
  const bool fitted = type == TensorType::kF32 || type == TensorType::kF16 || type == TensorType::kBF16 ||
                      type == TensorType::kQ8_0;
  check(is_lossless_int4_source(type) || fitted, kWhere,
        "cannot pack tensors of type {} as int4 (supported: q4_0, q4_1, q4_K, q8_0, f32, f16, bf16)",
        gguf::type_name(type));
  check_shape(kWhere, type, data, rows, cols);
  const size_t src_row_bytes = gguf::row_bytes(type, cols);
  const int64_t blocks = cols / kQK;

  if (type == TensorType::kQ4_0 || type == TensorType::kQ4_1) {
    const size_t block_bytes = gguf::type_traits(type).block_bytes;
    auto decode = [&](int64_t r, Block4* out) {
      const uint8_t* src = data + r * src_row_bytes;
      for (int64_t b = 0; b < blocks; ++b) {
        if (type == TensorType::kQ4_0) {
          decode_q4_0(src + b * block_bytes, &out[b]);
        } else {
          decode_q4_1(src + b * block_bytes, &out[b]);
        }
      }
    };
    // f16 holds Q4_0's -8 * d unless d is near the top of the f16 range;
    // then the whole matrix keeps f32 parameters to stay lossless.
    ScaleFormat format = ScaleFormat::kF16;
    if (type == TensorType::kQ4_0) {
      for (int64_t r = 0; r < rows && format == ScaleFormat::kF16; ++r) {
        const uint8_t* src = data + r * src_row_bytes;
        for (int64_t b = 0; b < blocks; ++b) {
          if (!holds_in_f16(-8.0f * load_f16(src + b * block_bytes))) {
            format = ScaleFormat::kF32;
            break;
          }
        }
      }
    }
    return build_int4(rows, cols, format, type == TensorType::kQ4_0, decode);
  }

  if (type == TensorType::kQ4_K) {
    auto decode = [&](int64_t r, Block4* out) {
      const uint8_t* src = data + r * src_row_bytes;
      for (int64_t sb = 0; sb < cols / kQKK; ++sb) decode_q4_k(src + sb * 144, out + 8 * sb);
    };
    return build_int4(rows, cols, ScaleFormat::kF32, false, decode);
  }

  // Float sources: f16 parameters unless the values exceed what f16 holds.
  std::vector<float> row(static_cast<size_t>(cols));
  float amax = 0.0f;
  for (int64_t r = 0; r < rows; ++r) {
    gguf::dequantize_row(type, data + r * src_row_bytes, row.data(), cols);
    for (const float v : row) {
      if (std::isfinite(v)) amax = std::max(amax, std::fabs(v));
    }
  }
  const ScaleFormat format = amax <= 30000.0f ? ScaleFormat::kF16 : ScaleFormat::kF32;
  auto decode = [&](int64_t r, Block4* out) {
    gguf::dequantize_row(type, data + r * src_row_bytes, row.data(), cols);
    for (int64_t b = 0; b < blocks; ++b) fit_block4(row.data() + b * kQK, format, &out[b]);
  };
  return build_int4(rows, cols, format, false, decode);
}

Int8Matrix pack_int8(gguf::TensorType type, const uint8_t* data, int64_t rows, int64_t cols) {
  using gguf::TensorType;
  constexpr const char* kWhere = "pack_int8";
  const gguf::TypeTraits& traits = gguf::type_traits(type);
  check(traits.supported, kWhere, "cannot pack tensors of type {} as int8: chorus cannot read them", traits.name);
  check_shape(kWhere, type, data, rows, cols);
  Int8Matrix m;
  m.rows = rows;
  m.cols = cols;
  const int64_t blocks = m.blocks();
  m.quants = AlignedBuffer<int8_t>(static_cast<size_t>(rows * cols));
  m.scales = AlignedBuffer<uint16_t>(static_cast<size_t>(rows * blocks));
  const size_t src_row_bytes = gguf::row_bytes(type, cols);

  if (type == TensorType::kQ8_0) {
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* src = data + r * src_row_bytes;
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* blk = src + b * 34;
        std::memcpy(&m.scales[static_cast<size_t>(r * blocks + b)], blk, 2);
        std::memcpy(m.quants.data() + r * cols + b * kQK, blk + 2, kQK);
      }
    }
    return m;
  }

  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    gguf::dequantize_row(type, data + r * src_row_bytes, row.data(), cols);
    for (int64_t b = 0; b < blocks; ++b) {
      const float* x = row.data() + b * kQK;
      float amax = 0.0f;
      for (int j = 0; j < kQK; ++j) {
        if (std::isfinite(x[j])) amax = std::max(amax, std::fabs(x[j]));
      }
      // Quantize against the scale as stored, clamped to the f16 range.
      uint16_t h = f32_to_f16(amax / 127.0f);
      if ((h & 0x7c00) == 0x7c00) h = 0x7bff;  // largest finite f16
      const float d = f16_to_f32(h);
      m.scales[static_cast<size_t>(r * blocks + b)] = h;
      int8_t* q = m.quants.data() + r * cols + b * kQK;
      const float inv = d > 0.0f ? 1.0f / d : 0.0f;
      for (int j = 0; j < kQK; ++j) q[j] = static_cast<int8_t>(nearest_code(x[j] * inv, -127, 127));
    }
  }
  return m;
}

void dequantize_row(const Int4Matrix& m, int64_t r, float* out) {
  const int64_t blocks = m.blocks();
  uint8_t codes[kQK];
  for (int64_t b = 0; b < blocks; ++b) {
    m.block_codes(r, b, codes);
    const float s = m.scale(r, b);
    const float mn = m.min(r, b);
    // s * q is exact for every lossless source, so this rounds once, like
    // the GGUF reference dequantizers.
    for (int j = 0; j < kQK; ++j) out[b * kQK + j] = s * static_cast<float>(codes[j]) + mn;
  }
}

void dequantize_row(const Int8Matrix& m, int64_t r, float* out) {
  const int8_t* q = m.row_quants(r);
  for (int64_t b = 0; b < m.blocks(); ++b) {
    const float d = m.scale(r, b);
    for (int j = 0; j < kQK; ++j) out[b * kQK + j] = static_cast<float>(q[b * kQK + j]) * d;
  }
}

}  // namespace chorus::kernels
