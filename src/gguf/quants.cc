// Reference (scalar) block codecs of the GGUF tensor formats. Layouts and the
// order of float operations follow ggml's reference dequantizers, so results
// are bit-identical to llama.cpp's (built without FMA contraction); the fast
// kernels are tested against these. Blocks are read with memcpy because
// tensor data in a file carries no alignment guarantee beyond the byte.
#include "gguf/quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "util/error.h"
#include "util/half.h"

namespace chorus::gguf {
namespace {

constexpr int kQK = 32;    // elements per block of the 32-element formats
constexpr int kQKK = 256;  // elements per K-format super-block

float load_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return f16_to_f32(h);
}

void store_f16(uint8_t* p, float f) {
  const uint16_t h = f32_to_f16(f);
  std::memcpy(p, &h, sizeof(h));
}

float load_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, sizeof(f));
  return f;
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Float-to-int conversions for quantizers: clamp in float first, so NaN and
// infinities in the input give a valid code instead of undefined behaviour.
// Rounds to nearest, ties to even (ggml's nearest_int).
int round_clamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;  // also NaN
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::nearbyint(v));
}

// Rounds half away from zero (roundf), as ggml's Q8_0 quantizer does.
int round_away_clamp(float v, int lo, int hi) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(std::round(v));
}

// Truncates toward zero, as the (int8_t) casts of ggml's Q4 quantizers do.
int trunc_clamp(float v, int lo, int hi) {
  if (!(v > static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

// ---------------------------------------------------------------------------
// 32-element formats. In all of them element j of a block is in the low
// nibble (or byte) j and element j + 16 in the high nibble of byte j.

// Q4_0: f16 d, 16 bytes of nibbles; x = (q - 8) * d.
void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// Q4_1: f16 d, f16 m, nibbles; x = q * d + m.
void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// Q5_0: f16 d, 32 fifth bits (bit j of a little-endian u32 for element j),
// nibbles; x = (q - 16) * d.
void dequant_q5_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < kQK / 2; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1) << 4;
    const int hi1 = static_cast<int>((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | hi0) - 16) * d;
    y[j + kQK / 2] = static_cast<float>(((qs[j] >> 4) | hi1) - 16) * d;
  }
}

// Q5_1: f16 d, f16 m, fifth bits, nibbles; x = q * d + m.
void dequant_q5_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float m = load_f16(b + 2);
  const uint32_t qh = load_u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < kQK / 2; ++j) {
    const int hi0 = static_cast<int>((qh >> j) & 1) << 4;
    const int hi1 = static_cast<int>((qh >> (j + 16)) & 1) << 4;
    y[j] = static_cast<float>((qs[j] & 0x0F) | hi0) * d + m;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) | hi1) * d + m;
  }
}

// Q8_0: f16 d, 32 int8; x = q * d.
void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// Q8_1: f16 d, f16 s (d * sum of q, used by dot products only), 32 int8.
void dequant_q8_1(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// ---------------------------------------------------------------------------
// K formats: 256-element super-blocks split into 16 or 8 sub-blocks, each
// with its own small integer scale (and min) relative to f16 super-scales.

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], f16 d,
// f16 dmin. Each 128-element half uses 32 bytes of qs; 2-bit field k of byte
// l holds element 32k + l (l < 16 with sub-block 2k, l >= 16 with 2k + 1).
void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = load_f16(b + 80);
  const float dmin = load_f16(b + 82);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = qs + 32 * half;
    for (int k = 0; k < 4; ++k) {
      const int shift = 2 * k;
      for (int part = 0; part < 2; ++part) {
        const uint8_t sc = scales[8 * half + 2 * k + part];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        float* out = y + 128 * half + 32 * k + 16 * part;
        for (int l = 0; l < 16; ++l) {
          out[l] = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K: hmask[32], qs[64], scales[12], f16 d. Low 2 bits as in Q2_K; the
// third bit of element 32k + l (per half h) is bit 4h + k of hmask[l], and a
// clear bit means "subtract 4". Sixteen 6-bit signed scales (offset 32):
// low nibbles in bytes 0..7 (scales 0..7 low, 8..15 high nibble), high two
// bits of scale j in byte 8 + j % 4 at bit 2 * (j / 4).
void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* packed = b + 96;
  const float d = load_f16(b + 108);
  int scales[16];
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = (low | (high << 4)) - 32;
  }
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = qs + 32 * half;
    for (int k = 0; k < 4; ++k) {
      const int shift = 2 * k;
      const uint8_t mask = static_cast<uint8_t>(1u << (4 * half + k));
      for (int part = 0; part < 2; ++part) {
        const float dl = d * static_cast<float>(scales[8 * half + 2 * k + part]);
        float* out = y + 128 * half + 32 * k + 16 * part;
        for (int l = 0; l < 16; ++l) {
          const int i = 16 * part + l;
          const int v = ((q[i] >> shift) & 3) - ((hmask[i] & mask) ? 0 : 4);
          out[l] = dl * static_cast<float>(v);
        }
      }
    }
  }
}


// Q4_K: f16 d, f16 dmin, scales[12], qs[128]. Each 64 elements use 32 bytes:
// low nibbles are sub-block 2c, high nibbles sub-block 2c + 1;
// x = d * scale * q - dmin * min.
void dequant_q4_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {
    int sc = 0;
    int m = 0;
    scale_min_k4(2 * c, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    scale_min_k4(2 * c + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * c;
    for (int l = 0; l < 32; ++l) y[64 * c + l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[64 * c + 32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// Q5_K: as Q4_K plus qh[32] before qs: the fifth bit of element 64c + l is
// bit 2c of qh[l], of element 64c + 32 + l bit 2c + 1.
void dequant_q5_k(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int c = 0; c < 4; ++c) {
    int sc = 0;
    int m = 0;
    scale_min_k4(2 * c, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc);
    const float m1 = dmin * static_cast<float>(m);
    scale_min_k4(2 * c + 1, scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc);
    const float m2 = dmin * static_cast<float>(m);
    const uint8_t* ql = qs + 32 * c;
    const uint8_t u1 = static_cast<uint8_t>(1u << (2 * c));
    const uint8_t u2 = static_cast<uint8_t>(2u << (2 * c));
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    }
    for (int l = 0; l < 32; ++l) {
      y[64 * c + 32 + l] = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// Q6_K: ql[128] (low nibbles), qh[64] (high 2 bits), int8 scales[16], f16 d.
// Per 128-element half: ql[l] holds elements l (low) and l + 64 (high),
// ql[l + 32] elements l + 32 and l + 96; qh[l] has their high bits at 0, 4,
// 2, 6 respectively. x = d * scale * (q - 32), one scale per 16 elements.
void dequant_q6_k(const uint8_t* b, float* y) {
  const float d = load_f16(b + 208);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b + 64 * half;
    const uint8_t* qh = b + 128 + 32 * half;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192) + 8 * half;
    float* out = y + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

// Q8_K: f32 d, 256 int8, int16 bsums[16] (sums for dot products only).
void dequant_q8_k(const uint8_t* b, float* y) {
  const float d = load_f32(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < kQKK; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// ---------------------------------------------------------------------------
// Quantizers (ggml's reference rounding for Q8_0, Q4_0, Q4_1).

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  int8_t* qs = reinterpret_cast<int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) qs[j] = static_cast<int8_t>(round_away_clamp(x[j] * id, -127, 127));
}

// The scale maps the value of largest magnitude to -8, so the full range
// -8..7 is used on the side of that value.
void quant_q4_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < kQK; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  uint8_t* qs = b + 2;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = trunc_clamp(x[j] * id + 8.5f, 0, 15);
    const int q1 = trunc_clamp(x[j + kQK / 2] * id + 8.5f, 0, 15);
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void quant_q4_1(const float* x, uint8_t* b) {
  float min = x[0];
  float max = x[0];
  for (int j = 1; j < kQK; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const float d = (max - min) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(b, d);
  store_f16(b + 2, min);
  uint8_t* qs = b + 4;
  for (int j = 0; j < kQK / 2; ++j) {
    const int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 0, 15);
    const int q1 = trunc_clamp((x[j + kQK / 2] - min) * id + 0.5f, 0, 15);
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// Fits x ~ scale * q - offset with q in 0..nmax (offset >= 0) by weighted
// least squares over a sweep of candidate grids, keeping the fit with the
// smallest weighted squared error. Returns the scale; the offset in *offset.
float fit_scale_offset(const float* x, const float* w, int n, int nmax, uint8_t* q, float* offset) {
  float lo = x[0];
  float hi = x[0];
  float sum_w = 0.0f;
  float sum_x = 0.0f;
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  lo = std::min(lo, 0.0f);  // the offset only ever shifts down
  if (!(hi > lo)) {         // constant block (or NaN)
    std::fill(q, q + n, uint8_t{0});
    *offset = -lo;
    return 0.0f;
  }
  auto error_of = [&](float scale, float min, const uint8_t* l) {
    float err = 0.0f;
    for (int i = 0; i < n; ++i) {
      const float diff = scale * static_cast<float>(l[i]) + min - x[i];
      err += w[i] * diff * diff;
    }
    return err;
  };
  float iscale = static_cast<float>(nmax) / (hi - lo);
  float best_scale = 1.0f / iscale;
  float best_min = lo;
  for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(round_clamp(iscale * (x[i] - lo), 0, nmax));
  float best_err = error_of(best_scale, best_min, q);

  uint8_t trial[kQKK];
  for (int step = 0; step <= 20; ++step) {
    iscale = (static_cast<float>(nmax) - 1.0f + 0.1f * static_cast<float>(step)) / (hi - lo);
    float sum_l = 0.0f;
    float sum_l2 = 0.0f;
    float sum_xl = 0.0f;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * (x[i] - lo), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * static_cast<float>(l);
      sum_l2 += w[i] * static_cast<float>(l * l);
      sum_xl += w[i] * static_cast<float>(l) * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0.0f)) continue;
    float scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (min > 0.0f) {  // an offset above zero cannot be stored; refit without it
      min = 0.0f;
      scale = sum_xl / sum_l2;
    }
    const float err = error_of(scale, min, trial);
    if (err < best_err) {
      best_err = err;
      best_scale = scale;
      best_min = min;
      std::copy(trial, trial + n, q);
    }
  }
  *offset = -best_min;
  return best_scale;
}

// Q4_K: fit (scale, min) per 32-element sub-block, quantize those to 6 bits
// against the block maxima, then requantize every element with the scales
// as they will be decoded.
void quant_q4_k(const float* x, uint8_t* b) {
  float scales[8];
  float mins[8];
  uint8_t codes[kQKK];
  float weights[32];
  float max_scale = 0.0f;
  float max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0.0f;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);  // favour large values
    scales[j] = fit_scale_offset(xs, weights, 32, 15, codes + 32 * j, &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }

  uint8_t* packed = b + 4;
  std::memset(packed, 0, 12);
  const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < 8; ++j) {
    const int ls = round_clamp(inv_scale * scales[j], 0, 63);
    const int lm = round_clamp(inv_min * mins[j], 0, 63);
    if (j < 4) {
      packed[j] = static_cast<uint8_t>(ls);
      packed[j + 4] = static_cast<uint8_t>(lm);
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  store_f16(b, max_scale / 63.0f);
  store_f16(b + 2, max_min / 63.0f);

  const float d = load_f16(b);
  const float dmin = load_f16(b + 2);
  for (int j = 0; j < 8; ++j) {
    int sc = 0;
    int m = 0;
    scale_min_k4(j, packed, &sc, &m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      codes[32 * j + l] = dl != 0.0f ? static_cast<uint8_t>(round_clamp((x[32 * j + l] + ml) / dl, 0, 15)) : 0;
    }
  }
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      qs[32 * c + l] = static_cast<uint8_t>(codes[64 * c + l] | (codes[64 * c + 32 + l] << 4));
    }
  }
}

using DequantBlock = void (*)(const uint8_t* block, float* out);
using QuantBlock = void (*)(const float* in, uint8_t* block);

DequantBlock dequant_fn(TensorType type) {
  switch (type) {
    case TensorType::kQ4_0: return dequant_q4_0;
    case TensorType::kQ4_1: return dequant_q4_1;
    case TensorType::kQ5_0: return dequant_q5_0;
    case TensorType::kQ5_1: return dequant_q5_1;
    case TensorType::kQ8_0: return dequant_q8_0;
    case TensorType::kQ8_1: return dequant_q8_1;
    case TensorType::kQ2_K: return dequant_q2_k;
    case TensorType::kQ3_K: return dequant_q3_k;
    case TensorType::kQ4_K: return dequant_q4_k;
    case TensorType::kQ5_K: return dequant_q5_k;
    case TensorType::kQ6_K: return dequant_q6_k;
    case TensorType::kQ8_K: return dequant_q8_k;
    default: return nullptr;
  }
}

QuantBlock quant_fn(TensorType type) {
  switch (type) {
    case TensorType::kQ4_0: return quant_q4_0;
    case TensorType::kQ4_1: return quant_q4_1;
    case TensorType::kQ8_0: return quant_q8_0;
    case TensorType::kQ4_K: return quant_q4_k;
    default: return nullptr;
  }
}

const TypeTraits& checked_traits(TensorType type, int64_t n, std::string_view verb) {
  const TypeTraits& t = type_traits(type);
  check(n >= 0 && n % t.block_size == 0, "", "cannot {} {} elements of {}: not a whole number of {}-element blocks",
        verb, n, t.name, t.block_size);
  return t;
}

}  // namespace

// Eight 6-bit scales and eight 6-bit mins in 12 bytes (Q4_K, Q5_K): for
// sub-blocks 0..3 the low 6 bits of bytes j and j + 4; for 4..7 a nibble of
// byte j + 4 plus the top two bits of bytes j - 4 (scale) and j (min).
void scale_min_k4(int j, const uint8_t* s, int* scale, int* min) {
  if (j < 4) {
    *scale = s[j] & 63;
    *min = s[j + 4] & 63;
  } else {
    *scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const TypeTraits& t = checked_traits(type, n, "dequantize");
  if (!t.supported) throw Error("", fmt::format("cannot dequantize tensors of type {}", t.name));
  if (n == 0) return;
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (type) {
    case TensorType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(p + 2 * i);
      return;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, sizeof(h));
        dst[i] = bf16_to_f32(h);
      }
      return;
    default: break;
  }
  const DequantBlock fn = dequant_fn(type);  // non-null for every supported block type
  const int64_t blocks = n / t.block_size;
  for (int64_t i = 0; i < blocks; ++i) fn(p + i * static_cast<int64_t>(t.block_bytes), dst + i * t.block_size);
}

bool can_quantize(TensorType type) {
  return type == TensorType::kF32 || type == TensorType::kF16 || type == TensorType::kBF16 || quant_fn(type) != nullptr;
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  const TypeTraits& t = checked_traits(type, n, "quantize");
  if (!can_quantize(type)) throw Error("", fmt::format("cannot quantize to type {}", t.name));
  if (n == 0) return;
  uint8_t* p = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); return;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) store_f16(p + 2 * i, src[i]);
      return;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, sizeof(h));
      }
      return;
    default: break;
  }
  const QuantBlock fn = quant_fn(type);
  const int64_t blocks = n / t.block_size;
  for (int64_t i = 0; i < blocks; ++i) fn(src + i * t.block_size, p + i * static_cast<int64_t>(t.block_bytes));
}

}  // namespace chorus::gguf
