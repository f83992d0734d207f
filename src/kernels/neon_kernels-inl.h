// The code of the Arm NEON kernel tables, written once.
// kernels_neon_dotprod.cc and kernels_neon_i8mm.cc each include it once
// inside their own anonymous namespace, compiled with their own
// instruction-set flags, after defining `NeonCore`, what differs between
// them:
//
//   struct NeonCore {
//     // true: W4A8 runs activation rows in pairs through SMMLA (Armv8.6
//     // I8MM); false: every row through SDOT (Armv8.2 dotprod).
//     static constexpr bool kMmla;
//     // With kMmla: acc + the 2x2 i32 matrix of a (2 rows of 8 s8) times
//     // the transpose of b (2 rows of 8 s8), lane 2i + j = a row i . b row j.
//     static int32x4_t mmla(int32x4_t acc, int8x16_t a, int8x16_t b);
//   };
//
// and then take their table from kernel_table_of(isa, name). The integer
// dot of the W4A8 tile is the only difference: every float operation, and
// so every result's rounding, is the same code in both tables (the integer
// sums are exact either way, so both give the same bits). W8A8 stays on
// SDOT in both: Q8_0's row layout would need an interleave per operand for
// SMMLA, about as many instructions as the SDOTs it saves.
//
// Integer products use SDOT (s8 x s8, four products per 32-bit lane):
//  - W4A8 reads the pack-time interleaved layout (packed_matrix.h): a tile is
//    one group of 8 weight rows x one block of 32 columns, four 32-byte
//    vectors; in vector p, 32-bit lane j holds columns 4p..4p+3 (low
//    nibbles) and 16+4p..16+4p+3 (high nibbles) of row j. So
//    vdotq_laneq_s32(acc, codes, act, p) on a 16-byte half (rows 0-3 or
//    4-7) multiplies those 4 columns of 4 rows by the 4 activation bytes of
//    lane p broadcast: one i32 lane per weight row, no transpose and no
//    horizontal add. Codes 0..15 are valid signed bytes. Each 32-byte
//    vector is unpacked once (AND, shift) and reused by up to 4
//    activation rows. With SMMLA, vectors 2q and 2q+1 zipped by 32-bit
//    lanes give 8 consecutive columns of 2 weight rows per register, which
//    meet 8 columns of 2 activation rows: 32 products per instruction
//    against SDOT's 16, so a pair of activation rows needs 16 SMMLAs per
//    tile instead of 32 SDOTs, for 8 zips per tile shared by all pairs and
//    4 per pair for its activations and 4 for its results. Calls of 1 or
//    3 rows stay on SDOT (see int4_group).
//  - W8A8: per block two SDOTs per activation row; the partial sums of four
//    blocks are folded into one vector with pairwise adds (one lane per
//    block) and scaled by the four blocks' scale products at once.
// Float ops are plain 4-lane loops with FMA; exp is the same Cephes
// polynomial as the x86 tables.
//
// Not tuned on hardware yet: tile sizes follow the AVX2 table's choices and
// the register budget (32 vector registers); tested under qemu
// (scripts/test_arm64.sh).
// No include guard: included once per table file, on purpose. The
// includer defines NeonCore in chorus::kernels's anonymous namespace first.
#include <arm_neon.h>

#if !defined(__ARM_FEATURE_DOTPROD)
#error "neon_kernels-inl.h needs -march=armv8.2-a+dotprod+fp16 (see CMakeLists.txt)"
#endif

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attend_impl.h"
#include "kernels/isa_tables.h"
#include "kernels/kernels.h"
#include "util/half.h"

#if defined(__clang__)
#define CHORUS_UNROLL _Pragma("unroll")
#else
#define CHORUS_UNROLL _Pragma("GCC unroll 16")
#endif

namespace chorus::kernels {
namespace {

constexpr int kQK = kQuantBlock;

// ---------------------------------------------------------------------------
// Small helpers.

// Four f16 values -> f32.
inline float32x4_t load_f16x4(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

// The 8 parameters (scales or mins) of one tile: rows 0-3 and rows 4-7.
template <ScaleFormat F>
inline void load_params8(const uint8_t* base, int64_t i, float32x4_t* lo, float32x4_t* hi) {
  if constexpr (F == ScaleFormat::kF16) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(reinterpret_cast<const uint16_t*>(base) + i));
    *lo = vcvt_f32_f16(vget_low_f16(h));
    *hi = vcvt_high_f32_f16(h);
  } else {
    const float* p = reinterpret_cast<const float*>(base) + i;
    *lo = vld1q_f32(p);
    *hi = vld1q_f32(p + 4);
  }
}

// ---------------------------------------------------------------------------
// Activation quantization. Bit-identical to the generic table: the same
// float operations in the same order; FMAXNM drops NaN lanes like std::max
// does, the clamp sends NaN to -127 like round_clamp127, and FCVTNS rounds
// to nearest even like nearbyint in the default rounding mode.

void quantize_activations(const float* x, int64_t n, const QuantizedActivations& out) {
  const float32x4_t lo = vdupq_n_f32(-127.0f);
  const float32x4_t hi = vdupq_n_f32(127.0f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    float32x4_t v[8];
    float32x4_t amax = vdupq_n_f32(0.0f);
    CHORUS_UNROLL for (int k = 0; k < 8; ++k) {
      v[k] = vld1q_f32(xb + 4 * k);
      amax = vmaxnmq_f32(amax, vabsq_f32(v[k]));
    }
    const float d = vmaxnmvq_f32(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32x4_t q[8];
    CHORUS_UNROLL for (int k = 0; k < 8; ++k) {
      q[k] = vcvtnq_s32_f32(vminnmq_f32(vmaxnmq_f32(vmulq_n_f32(v[k], id), lo), hi));
    }
    int8x16_t q8[2];
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
      const int16x8_t a = vcombine_s16(vqmovn_s32(q[4 * h]), vqmovn_s32(q[4 * h + 1]));
      const int16x8_t c = vcombine_s16(vqmovn_s32(q[4 * h + 2]), vqmovn_s32(q[4 * h + 3]));
      q8[h] = vcombine_s8(vqmovn_s16(a), vqmovn_s16(c));
    }
    vst1q_s8(out.q + b * kQK, q8[0]);
    vst1q_s8(out.q + b * kQK + 16, q8[1]);
    const int32x4_t s = vaddq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])),
                                  vaddq_s32(vaddq_s32(q[4], q[5]), vaddq_s32(q[6], q[7])));
    out.scale[b] = d;
    out.scaled_sum[b] = d * static_cast<float>(vaddvq_s32(s));
  }
}

// ---------------------------------------------------------------------------
// W4A8 on the interleaved layout (see the top): rows of one group, T
// activation rows at a time.

// Vector p of a tile (4 columns and their +16 partners of all 8 rows) times
// T activation rows: a[t][0] holds the row's columns 0..15 of the block,
// a[t][1] columns 16..31; lane P of each is the 4 activation bytes that
// meet vector P. acc[t][h][.] gets weight rows 4h..4h+3; with S = 2 the low
// and high nibbles go to separate accumulators (more independent SDOT
// chains when T is small).
template <int P, int T, int S>
inline void tile_vector_dot(const uint8_t* tile, const int8x16_t a[T][2], int32x4_t acc[T][2][S]) {
  const uint8x16_t mask = vdupq_n_u8(0x0F);
  const uint8x16_t raw0 = vld1q_u8(tile + 32 * P);
  const uint8x16_t raw1 = vld1q_u8(tile + 32 * P + 16);
  const int8x16_t lo[2] = {vreinterpretq_s8_u8(vandq_u8(raw0, mask)), vreinterpretq_s8_u8(vandq_u8(raw1, mask))};
  const int8x16_t hi[2] = {vreinterpretq_s8_u8(vshrq_n_u8(raw0, 4)), vreinterpretq_s8_u8(vshrq_n_u8(raw1, 4))};
  CHORUS_UNROLL for (int t = 0; t < T; ++t) {
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
      acc[t][h][0] = vdotq_laneq_s32(acc[t][h][0], lo[h], a[t][0], P);
      acc[t][h][S - 1] = vdotq_laneq_s32(acc[t][h][S - 1], hi[h], a[t][1], P);
    }
  }
}

// The integer dots of block b's tile with T activation rows through SDOT:
// out[t][h] gets weight rows 4h..4h+3 of row t. 16 SDOTs per row.
template <int T, int S>
inline void tile_sdot(const uint8_t* tile, const QuantizedActivations* x, int64_t b, int32x4_t (*out)[2]) {
  int8x16_t a[T][2];
  int32x4_t isum[T][2][S];
  CHORUS_UNROLL for (int t = 0; t < T; ++t) {
    a[t][0] = vld1q_s8(x[t].q + b * kQK);
    a[t][1] = vld1q_s8(x[t].q + b * kQK + 16);
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
      CHORUS_UNROLL for (int k = 0; k < S; ++k) isum[t][h][k] = vdupq_n_s32(0);
    }
  }
  tile_vector_dot<0, T, S>(tile, a, isum);
  tile_vector_dot<1, T, S>(tile, a, isum);
  tile_vector_dot<2, T, S>(tile, a, isum);
  tile_vector_dot<3, T, S>(tile, a, isum);
  CHORUS_UNROLL for (int t = 0; t < T; ++t) {
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
      out[t][h] = S == 2 ? vaddq_s32(isum[t][h][0], isum[t][h][S - 1]) : isum[t][h][0];
    }
  }
}

// The integer dots of block b's tile with 2 * kPairs activation rows,
// in pairs, through SMMLA (NeonCore::kMmla): out as for tile_sdot.
// Register q of a pair holds columns 8q..8q+7 of both its rows (2 zips
// per 16 columns); zipping tile vectors 2c and 2c+1 by 32-bit lanes gives
// columns 8c..8c+7 (low nibbles) and 16+8c..16+8c+7 (high nibbles) of 2
// weight rows per register (8 zips per tile, shared by the pairs). Each
// 2x2 result (lane 2i + j: activation row i, weight row j) sums 4 SMMLAs,
// one per 8 columns; two 64-bit zips then give each activation row its 4
// weight-row lanes. 16 SMMLAs per pair.
template <int kPairs>
inline void tile_mmla(const uint8_t* tile, const QuantizedActivations* x, int64_t b, int32x4_t (*out)[2]) {
  int8x16_t am[kPairs][4];
  int32x4_t acc[kPairs][4];  // acc[p][k]: weight rows 2k, 2k+1 against pair p
  CHORUS_UNROLL for (int p = 0; p < kPairs; ++p) {
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
      const int64x2_t a0 = vreinterpretq_s64_s8(vld1q_s8(x[2 * p].q + b * kQK + 16 * h));
      const int64x2_t a1 = vreinterpretq_s64_s8(vld1q_s8(x[2 * p + 1].q + b * kQK + 16 * h));
      am[p][2 * h] = vreinterpretq_s8_s64(vzip1q_s64(a0, a1));
      am[p][2 * h + 1] = vreinterpretq_s8_s64(vzip2q_s64(a0, a1));
    }
    CHORUS_UNROLL for (int k = 0; k < 4; ++k) acc[p][k] = vdupq_n_s32(0);
  }
  const uint8x16_t mask = vdupq_n_u8(0x0F);
  CHORUS_UNROLL for (int c = 0; c < 2; ++c) {
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {  // weight rows 4h..4h+3
      // Zipped before the unpack: one zip serves both nibbles.
      const uint32x4_t raw0 = vreinterpretq_u32_u8(vld1q_u8(tile + 32 * (2 * c) + 16 * h));
      const uint32x4_t raw1 = vreinterpretq_u32_u8(vld1q_u8(tile + 32 * (2 * c + 1) + 16 * h));
      const uint8x16_t rows01 = vreinterpretq_u8_u32(vzip1q_u32(raw0, raw1));  // rows 4h, 4h+1
      const uint8x16_t rows23 = vreinterpretq_u8_u32(vzip2q_u32(raw0, raw1));  // rows 4h+2, 4h+3
      const int8x16_t w[2][2] = {  // [rows 4h, 4h+1 | 4h+2, 4h+3][low | high nibbles]
          {vreinterpretq_s8_u8(vandq_u8(rows01, mask)), vreinterpretq_s8_u8(vshrq_n_u8(rows01, 4))},
          {vreinterpretq_s8_u8(vandq_u8(rows23, mask)), vreinterpretq_s8_u8(vshrq_n_u8(rows23, 4))}};
      CHORUS_UNROLL for (int p = 0; p < kPairs; ++p) {
        CHORUS_UNROLL for (int r = 0; r < 2; ++r) {
          int32x4_t& s = acc[p][2 * h + r];
          s = NeonCore::mmla(NeonCore::mmla(s, am[p][c], w[r][0]), am[p][2 + c], w[r][1]);
        }
      }
    }
  }
  CHORUS_UNROLL for (int p = 0; p < kPairs; ++p) {
    CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
      const int64x2_t r01 = vreinterpretq_s64_s32(acc[p][2 * h]);
      const int64x2_t r23 = vreinterpretq_s64_s32(acc[p][2 * h + 1]);
      out[2 * p][h] = vreinterpretq_s32_s64(vzip1q_s64(r01, r23));
      out[2 * p + 1][h] = vreinterpretq_s32_s64(vzip2q_s64(r01, r23));
    }
  }
}

// Rows [8g + lo, 8g + hi) of T activation rows. Per tile: the integer dots
// (tile_mmla for T = 2 or 4 in a table with SMMLA, else tile_sdot), then
// per activation row and 4 weight rows one convert and two FMAs (scale
// product and min term), the same float ops whichever instructions made
// the exact integer sums. For T = 4 everything live fits the 32 vector
// registers: 8 float and 8 integer accumulators, 8 activation vectors and
// one vector's codes (SDOT) or two zipped vectors' (SMMLA). T = 1 or 3
// stays on SDOT: at 3 rows a pair through SMMLA plus the odd row through
// SDOT measured 151 instructions per tile against SDOT's 132 (aarch64 GCC
// 12), the odd row needing the tile unpacked a second way.
template <ScaleFormat F, bool kSymmetric, int T>
void int4_group(const Int4Matrix& w, const QuantizedActivations* x, int64_t g, float* y, int64_t ldy, int lo,
                int hi) {
  constexpr bool kMmla = NeonCore::kMmla && T % 2 == 0;  // pairs of rows through SMMLA
  constexpr int S = T <= 2 ? 2 : 1;
  const int64_t nb = w.blocks();
  const uint8_t* tiles = w.tile(g, 0);
  const int64_t p0 = g * nb * kRowGroup;  // parameter index of the group's first tile
  float32x4_t acc[T][2];
  CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = vdupq_n_f32(0.0f);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* tile = tiles + b * kInt4TileBytes;
    int32x4_t isum[T][2];
    if constexpr (kMmla) {
      tile_mmla<T / 2>(tile, x, b, isum);
    } else {
      tile_sdot<T, S>(tile, x, b, isum);
    }
    float32x4_t sw[2], mw[2];
    load_params8<F>(w.scales.data(), p0 + b * kRowGroup, &sw[0], &sw[1]);
    if constexpr (kSymmetric) {
      mw[0] = vmulq_n_f32(sw[0], -8.0f);  // exact
      mw[1] = vmulq_n_f32(sw[1], -8.0f);
    } else {
      load_params8<F>(w.mins.data(), p0 + b * kRowGroup, &mw[0], &mw[1]);
    }
    CHORUS_UNROLL for (int t = 0; t < T; ++t) {
      const float sa = x[t].scale[b];
      const float ss = x[t].scaled_sum[b];
      CHORUS_UNROLL for (int h = 0; h < 2; ++h) {
        acc[t][h] = vfmaq_f32(acc[t][h], vcvtq_f32_s32(isum[t][h]), vmulq_n_f32(sw[h], sa));
        acc[t][h] = vfmaq_n_f32(acc[t][h], mw[h], ss);
      }
    }
  }
  CHORUS_UNROLL for (int t = 0; t < T; ++t) {
    float* yt = y + t * ldy + g * kRowGroup;
    if (lo == 0 && hi == kRowGroup) {
      vst1q_f32(yt, acc[t][0]);
      vst1q_f32(yt + 4, acc[t][1]);
    } else {
      float v[kRowGroup];
      vst1q_f32(v, acc[t][0]);
      vst1q_f32(v + 4, acc[t][1]);
      for (int j = lo; j < hi; ++j) yt[j] = v[j];
    }
  }
}

template <ScaleFormat F, bool kSymmetric>
void int4_matmul(const Int4Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  for (int64_t g = r0 / kRowGroup; g * kRowGroup < r1; ++g) {
    const int lo = static_cast<int>(std::max<int64_t>(r0 - g * kRowGroup, 0));
    const int hi = static_cast<int>(std::min<int64_t>(r1 - g * kRowGroup, kRowGroup));
    // The group's tiles (blocks x 128 bytes) stay in L1/L2 across the
    // passes over activation rows.
    int t = 0;
    for (; t + 4 <= n; t += 4) int4_group<F, kSymmetric, 4>(w, x + t, g, y + t * ldy, ldy, lo, hi);
    switch (n - t) {
      case 3: int4_group<F, kSymmetric, 3>(w, x + t, g, y + t * ldy, ldy, lo, hi); break;
      case 2: int4_group<F, kSymmetric, 2>(w, x + t, g, y + t * ldy, ldy, lo, hi); break;
      case 1: int4_group<F, kSymmetric, 1>(w, x + t, g, y + t * ldy, ldy, lo, hi); break;
      default: break;
    }
  }
}

void matmul_int4(const Int4Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (n <= 0 || r1 <= r0) return;
  if (w.scale_format == ScaleFormat::kF16) {
    w.symmetric ? int4_matmul<ScaleFormat::kF16, true>(w, x, n, y, ldy, r0, r1)
                : int4_matmul<ScaleFormat::kF16, false>(w, x, n, y, ldy, r0, r1);
  } else {
    w.symmetric ? int4_matmul<ScaleFormat::kF32, true>(w, x, n, y, ldy, r0, r1)
                : int4_matmul<ScaleFormat::kF32, false>(w, x, n, y, ldy, r0, r1);
  }
}

// ---------------------------------------------------------------------------
// W8A8: one weight row at a time, up to 4 activation rows sharing each
// loaded block; four blocks per step so their sums fill one vector.

template <int T>
void int8_row(const Int8Matrix& w, const QuantizedActivations* x, float* y, int64_t ldy, int64_t r) {
  const int64_t nb = w.blocks();
  const int8_t* wq = w.row_quants(r);
  const uint16_t* ws = w.scales.data() + r * nb;
  float32x4_t acc[T];
  CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[t] = vdupq_n_f32(0.0f);
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const float32x4_t sw = load_f16x4(ws + b);
    int8x16_t wv[8];
    CHORUS_UNROLL for (int k = 0; k < 8; ++k) wv[k] = vld1q_s8(wq + b * kQK + 16 * k);
    CHORUS_UNROLL for (int t = 0; t < T; ++t) {
      const int8_t* q = x[t].q + b * kQK;
      int32x4_t s[4];
      CHORUS_UNROLL for (int k = 0; k < 4; ++k) {
        s[k] = vdotq_s32(vdupq_n_s32(0), wv[2 * k], vld1q_s8(q + 32 * k));
        s[k] = vdotq_s32(s[k], wv[2 * k + 1], vld1q_s8(q + 32 * k + 16));
      }
      // Lane k = the integer sum of block b + k.
      const int32x4_t sums = vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3]));
      acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(sums), vmulq_f32(sw, vld1q_f32(x[t].scale + b)));
    }
  }
  float tail[T] = {};
  for (; b < nb; ++b) {  // the last nb % 4 blocks
    const float sw = f16_to_f32(ws[b]);
    const int8x16_t w0 = vld1q_s8(wq + b * kQK);
    const int8x16_t w1 = vld1q_s8(wq + b * kQK + 16);
    CHORUS_UNROLL for (int t = 0; t < T; ++t) {
      const int8_t* q = x[t].q + b * kQK;
      const int32x4_t s = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(q)), w1, vld1q_s8(q + 16));
      tail[t] += sw * x[t].scale[b] * static_cast<float>(vaddvq_s32(s));
    }
  }
  CHORUS_UNROLL for (int t = 0; t < T; ++t) y[t * ldy + r] = vaddvq_f32(acc[t]) + tail[t];
}

void matmul_int8(const Int8Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    int t = 0;
    for (; t + 4 <= n; t += 4) int8_row<4>(w, x + t, y + t * ldy, ldy, r);
    switch (n - t) {
      case 3: int8_row<3>(w, x + t, y + t * ldy, ldy, r); break;
      case 2: int8_row<2>(w, x + t, y + t * ldy, ldy, r); break;
      case 1: int8_row<1>(w, x + t, y + t * ldy, ldy, r); break;
      default: break;
    }
  }
}

// ---------------------------------------------------------------------------
// f32 matrix products and vector ops.

template <int R, int T>
void f32_rows(const float* w, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r) {
  float32x4_t acc[R][T];
  CHORUS_UNROLL for (int i = 0; i < R; ++i) {
    CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[i][t] = vdupq_n_f32(0.0f);
  }
  const float* wr[R];
  for (int i = 0; i < R; ++i) wr[i] = w + (r + i) * cols;
  int64_t c = 0;
  for (; c + 4 <= cols; c += 4) {
    float32x4_t xv[T];
    CHORUS_UNROLL for (int t = 0; t < T; ++t) xv[t] = vld1q_f32(x + t * ldx + c);
    CHORUS_UNROLL for (int i = 0; i < R; ++i) {
      const float32x4_t wv = vld1q_f32(wr[i] + c);
      CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[i][t] = vfmaq_f32(acc[i][t], wv, xv[t]);
    }
  }
  CHORUS_UNROLL for (int i = 0; i < R; ++i) {
    CHORUS_UNROLL for (int t = 0; t < T; ++t) {
      float sum = vaddvq_f32(acc[i][t]);
      for (int64_t k = c; k < cols; ++k) sum += wr[i][k] * x[t * ldx + k];
      y[t * ldy + r + i] = sum;
    }
  }
}

template <int T>
void f32_rows_range(const float* w, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0,
                    int64_t r1) {
  constexpr int kRows = T <= 2 ? 4 : 2;
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) f32_rows<kRows, T>(w, cols, x, ldx, y, ldy, r);
  for (; r < r1; ++r) f32_rows<1, T>(w, cols, x, ldx, y, ldy, r);
}

void matmul_f32(const float* w, int64_t cols, const float* x, int64_t ldx, int n, float* y, int64_t ldy,
                int64_t r0, int64_t r1) {
  constexpr int64_t kGroup = 16;  // weight rows re-read from cache by each tile of activation rows
  for (int64_t g = r0; g < r1; g += kGroup) {
    const int64_t g1 = std::min(r1, g + kGroup);
    int t = 0;
    for (; t + 4 <= n; t += 4) f32_rows_range<4>(w, cols, x + t * ldx, ldx, y + t * ldy, ldy, g, g1);
    switch (n - t) {
      case 3: f32_rows_range<3>(w, cols, x + t * ldx, ldx, y + t * ldy, ldy, g, g1); break;
      case 2: f32_rows_range<2>(w, cols, x + t * ldx, ldx, y + t * ldy, ldy, g, g1); break;
      case 1: f32_rows_range<1>(w, cols, x + t * ldx, ldx, y + t * ldy, ldy, g, g1); break;
      default: break;
    }
  }
}

float dot(const float* a, const float* b, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    CHORUS_UNROLL for (int k = 0; k < 4; ++k) {
      acc[k] = vfmaq_f32(acc[k], vld1q_f32(a + i + 4 * k), vld1q_f32(b + i + 4 * k));
    }
  }
  for (; i + 4 <= n; i += 4) acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
  float sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  const float ss = dot(x, x, n);
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    vst1q_f32(out + i, vmulq_f32(vld1q_f32(weight + i), vmulq_n_f32(vld1q_f32(x + i), scale)));
  }
  for (; i < n; ++i) out[i] = weight[i] * (scale * x[i]);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
  for (; i < n; ++i) y[i] += a * x[i];
}

// e^x to ~2 ulp (Cephes' expf: x = k ln2 + r, |r| <= ln2 / 2, degree-6
// polynomial in r, then scale by 2^k), as in the AVX2 table. Inputs below
// -87.3 give 0 (the true value would be subnormal), above 88 they saturate at
// e^88; NaN stays NaN.
inline float32x4_t exp_ps(float32x4_t x) {
  const uint32x4_t too_small = vcltq_f32(x, vdupq_n_f32(-87.3f));
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.0f));
  const float32x4_t k = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  float32x4_t r = vfmsq_n_f32(x, k, 0.693359375f);
  r = vfmsq_n_f32(r, k, -2.12194440e-4f);
  float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
  p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
  p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
  p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
  p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(k), vdupq_n_s32(127)), 23);
  const float32x4_t e = vmulq_f32(p, vreinterpretq_f32_s32(bits));
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(e), too_small));
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const int64_t main = n / 4 * 4;
  float max_val = -INFINITY;
  if (main > 0) {
    float32x4_t mv = vdupq_n_f32(-INFINITY);
    for (int64_t i = 0; i < main; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
    max_val = vmaxvq_f32(mv);
  }
  for (int64_t i = main; i < n; ++i) max_val = std::max(max_val, x[i]);
  const float32x4_t maxv = vdupq_n_f32(max_val);
  float32x4_t sum = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < main; i += 4) {
    const float32x4_t e = exp_ps(vsubq_f32(vld1q_f32(x + i), maxv));
    vst1q_f32(x + i, e);
    sum = vaddq_f32(sum, e);
  }
  if (main < n) {  // the tail through one padded vector, so it gets the same exp
    float tmp[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    std::memcpy(tmp, x + main, static_cast<size_t>(n - main) * sizeof(float));
    const float32x4_t e = exp_ps(vsubq_f32(vld1q_f32(tmp), maxv));  // padding lanes give 0
    vst1q_f32(tmp, e);
    std::memcpy(x + main, tmp, static_cast<size_t>(n - main) * sizeof(float));
    sum = vaddq_f32(sum, e);
  }
  const float inv = 1.0f / vaddvq_f32(sum);
  int64_t i = 0;
  for (; i < main; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

void silu_mul(float* gate, const float* up, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    const float32x4_t e = exp_ps(vnegq_f32(g));
    vst1q_f32(gate + i, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), vld1q_f32(up + i)));
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// LoRA shrink, four activation rows at a time so each converted f16 vector
// of A feeds four products.
void lora_shrink(const uint16_t* a, int rank, int64_t in, const float* x, int64_t ldx,
                 const int32_t* rows, int n, float scale, float* t, int64_t ldt) {
  const int64_t main = in / 8 * 8;
  for (int j = 0; j < rank; ++j) {
    const uint16_t* aj = a + j * in;
    for (int g0 = 0; g0 < n; g0 += 4) {
      const int m = std::min(4, n - g0);
      const float* xr[4];
      for (int k = 0; k < 4; ++k) xr[k] = x + rows[g0 + std::min(k, m - 1)] * ldx;
      float32x4_t acc[4][2];
      for (int k = 0; k < 4; ++k) acc[k][0] = acc[k][1] = vdupq_n_f32(0.0f);
      for (int64_t c = 0; c < main; c += 8) {
        const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(aj + c));
        const float32x4_t a0 = vcvt_f32_f16(vget_low_f16(h));
        const float32x4_t a1 = vcvt_high_f32_f16(h);
        CHORUS_UNROLL for (int k = 0; k < 4; ++k) {
          acc[k][0] = vfmaq_f32(acc[k][0], a0, vld1q_f32(xr[k] + c));
          acc[k][1] = vfmaq_f32(acc[k][1], a1, vld1q_f32(xr[k] + c + 4));
        }
      }
      for (int k = 0; k < m; ++k) {
        float sum = vaddvq_f32(vaddq_f32(acc[k][0], acc[k][1]));
        for (int64_t c = main; c < in; ++c) sum += f16_to_f32(aj[c]) * xr[k][c];
        t[(g0 + k) * ldt + j] = scale * sum;
      }
    }
  }
}

// LoRA expand over column tiles of 32: a tile of B^T is converted to f32 once
// (for up to 64 ranks at a time) and reused by every row of the group. A
// ragged tile at the end of the range goes through the same FMAs on a
// zero-padded copy, so every output column gets the same chain of FMAs
// wherever the caller's range (a thread's slice) starts and ends.
void lora_expand(const uint16_t* bt, int rank, int64_t out, const float* t, int64_t ldt,
                 const int32_t* rows, int n, float* y, int64_t ldy, int64_t o0, int64_t o1) {
  constexpr int kTile = 32, kRanks = 64;
  alignas(16) float tile[kRanks][kTile];
  for (int64_t o = o0; o < o1; o += kTile) {
    const int width = static_cast<int>(std::min<int64_t>(kTile, o1 - o));
    for (int j0 = 0; j0 < rank; j0 += kRanks) {
      const int nr = std::min(kRanks, rank - j0);
      for (int j = 0; j < nr; ++j) {
        // A full tile is read in place; only a ragged one goes through a
        // zero-padded copy.
        const uint16_t* src = bt + (j0 + j) * out + o;
        alignas(16) uint16_t padded[kTile] = {};
        if (width < kTile) {
          std::memcpy(padded, src, static_cast<size_t>(width) * sizeof(uint16_t));
          src = padded;
        }
        for (int c = 0; c < kTile; c += 8) {
          const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(src + c));
          vst1q_f32(&tile[j][c], vcvt_f32_f16(vget_low_f16(h)));
          vst1q_f32(&tile[j][c + 4], vcvt_high_f32_f16(h));
        }
      }
      for (int g = 0; g < n; ++g) {
        float* yr = y + rows[g] * ldy + o;
        const float* tg = t + g * ldt + j0;
        alignas(16) float ybuf[kTile] = {};
        float* yt = width == kTile ? yr : ybuf;
        if (width < kTile) std::memcpy(ybuf, yr, static_cast<size_t>(width) * sizeof(float));
        float32x4_t acc[8];
        CHORUS_UNROLL for (int k = 0; k < 8; ++k) acc[k] = vld1q_f32(yt + 4 * k);
        for (int j = 0; j < nr; ++j) {
          const float tj = tg[j];
          CHORUS_UNROLL for (int k = 0; k < 8; ++k) acc[k] = vfmaq_n_f32(acc[k], vld1q_f32(&tile[j][4 * k]), tj);
        }
        CHORUS_UNROLL for (int k = 0; k < 8; ++k) vst1q_f32(yt + 4 * k, acc[k]);
        if (width < kTile) std::memcpy(yr, ybuf, static_cast<size_t>(width) * sizeof(float));
      }
    }
  }
}

void attend(const float* keys, const float* values, int64_t stride, const int32_t* cells_a, int na,
            const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q, float* out,
            float* scores) {
  attend_heads<dot, axpy, softmax>(keys, values, stride, cells_a, na, cells_b, nb, head_dim, g, scale, q, out,
                                   scores);
}

// An f16 cache row widened 8 values at a time (exact), for attend_f16.
void widen_f16(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t v = vreinterpretq_f16_u16(vld1q_u16(h + i));
    vst1q_f32(out + i, vcvt_f32_f16(vget_low_f16(v)));
    vst1q_f32(out + i + 4, vcvt_high_f32_f16(v));
  }
  for (; i < n; ++i) out[i] = f16_to_f32(h[i]);
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
