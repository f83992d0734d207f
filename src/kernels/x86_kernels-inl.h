// The code of the x86 kernel tables, written once. kernels_avx2.cc,
// kernels_avxvnni.cc and kernels_avx512vnni.cc each include it once inside
// their own anonymous namespace, compiled with their own instruction-set
// flags, after defining `X86Core`, what differs between them:
//
//   struct X86Core {
//     // true: u8 x s8 dots accumulate straight into i32 (vpdpbusd);
//     // false: vpmaddubsw into i16, then vpmaddwd to widen.
//     static constexpr bool kDpbusd;
//     // With kDpbusd: acc + the sums of 4 u8 x s8 products per i32 lane.
//     static __m256i dpbusd(__m256i acc, __m256i u, __m256i s);
//   };
//
// and then take their table from kernel_table_of(isa, name). The
// integer dot is the only difference: every float operation, and so every
// result's rounding, is the same code in each table (the integer sums are
// exact either way, so all three tables give the same bits). The one other
// difference follows from the flags: with AVX-512 (__AVX512F__) the W4A8
// loop also runs two row groups per pass on 512 bits (Lanes16), with the
// same float operations per lane.
//
// Integer products (W4A8, W8A8) multiply u8 by s8. The W4A8 product reads
// the pack-time interleaved layout (packed_matrix.h): one vector holds 4
// columns of each of 8 weight rows, so a broadcast of 4 activation bytes
// gives one lane per weight row: no transpose and no horizontal add at run
// time. The same loop serves one activation row (decode, memory-bound: one
// sequential stream with a software prefetch ahead) and many (batches,
// trees, prefill: up to 8 rows share each unpacked tile, and a group's tiles
// stay in cache for the next 8). Unpacking once into scratch instead, or 16
// weight rows per pass, measured slower with AVX2: the extra accumulators
// spill. With AVX-512's 32 registers 16 weight rows per pass (one 512-bit
// vector) and 8 activation rows fit; on a loaded 2-core Zen 4 that measured
// 1.1-1.2x faster at 16 and 512 rows and even at 8 (bench/README.md).
//
// Measured on Zen 3 (no AVX-512): maddubs and the i16 adds share three of
// the four vector pipes, loads issue two per cycle, vphaddw costs two
// cycles (hence no horizontal adds anywhere).
//
// Thresholds and tile sizes were tuned with bench/kernels_bench.cc.
// No include guard: included once per table file, on purpose. The
// includer defines X86Core in chorus::kernels's anonymous namespace first.
#include <immintrin.h>

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

// An empty asm that makes `v` opaque to the optimizer. Integer adds may be
// reassociated, and GCC turns the running i16 sums of gemm_tile into a tree
// over all 32 maddubs results, which then spill; pinning each partial sum
// keeps one accumulator register per activation row.
template <typename V>
inline void pin(V& v) {
  asm("" : "+x"(v));
}

// ---------------------------------------------------------------------------
// Small helpers.

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Lane mask for the first `count` (0..8) 32-bit lanes.
inline __m256i lane_mask(int64_t count) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), idx);
}

// Eight consecutive scales (or mins) starting at element i; `count` < 8
// reads only that many (the rest are 0) so a row's end is never overrun.
template <ScaleFormat F>
inline __m256 load_params(const uint8_t* base, int64_t i, int64_t count = 8) {
  if constexpr (F == ScaleFormat::kF16) {
    if (count >= 8) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + 2 * i)));
    alignas(16) uint16_t tmp[8] = {};
    std::memcpy(tmp, base + 2 * i, static_cast<size_t>(count) * 2);
    return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(tmp)));
  } else {
    const float* p = reinterpret_cast<const float*>(base) + i;
    if (count >= 8) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, lane_mask(count));
  }
}

inline __m256 load_f32(const float* p, int64_t count) {
  return count >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lane_mask(count));
}

// i32 sum of the 32 products of a block, spread over 8 lanes.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  if constexpr (X86Core::kDpbusd) return X86Core::dpbusd(_mm256_setzero_si256(), u, s);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// ---------------------------------------------------------------------------
// Activation quantization. Bit-identical to the generic table: the same
// float operations in the same order, and cvtps2dq rounds to nearest even
// like nearbyint.

void quantize_activations(const float* x, int64_t n, const QuantizedActivations& out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 lo = _mm256_set1_ps(-127.0f);
  const __m256 hi = _mm256_set1_ps(127.0f);
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* xb = x + b * kQK;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), amax);  // NaN lanes drop out
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float d = _mm_cvtss_f32(m4) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 s = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[k], idv), lo), hi);
      q[k] = _mm256_cvtps_epi32(s);
    }
    // Pack i32 -> i16 -> i8; packs interleave 128-bit lanes, undone by the
    // final permute.
    const __m256i q01 = _mm256_packs_epi32(q[0], q[1]);
    const __m256i q23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i q8 = _mm256_packs_epi16(q01, q23);
    q8 = _mm256_permutevar8x32_epi32(q8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.q + b * kQK), q8);
    const __m256i s32 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    out.scale[b] = d;
    out.scaled_sum[b] = d * static_cast<float>(_mm_cvtsi128_si32(s4));
  }
}

// ---------------------------------------------------------------------------
// W4A8 over interleaved row groups (packed_matrix.h): a group of 8 weight
// rows at a time, its tiles in storage order, so one pass streams the
// matrix front to back.

constexpr int kStreamPrefetch = 2048;  // bytes ahead in a weight stream
constexpr int kInt4ActTile = 8;        // activation rows per pass over a group
constexpr int kInt4ActPass = 64;       // activation rows per pass over the matrix, so they stay in L2

// Stores lanes [lo, hi) of v to out[lo..hi): a thread's slice of rows may
// end inside a group.
inline void store_lanes(float* out, __m256 v, int lo, int hi) {
  if (lo == 0 && hi == 8) {
    _mm256_storeu_ps(out, v);
    return;
  }
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, v);
  for (int j = lo; j < hi; ++j) out[j] = tmp[j];
}

// The W4A8 loop's vector width, the one thing its two shapes differ in:
// Lanes8 covers one row group (8 weight rows, one i32 or f32 lane each) per
// pass on 256 bits; Lanes16 (AVX-512 tables) two neighbouring groups on 512
// bits, lanes 0-7 group g and 8-15 group g + 1, so one vpdpbusd does 64
// multiply-adds and each activation broadcast serves 16 weight rows. Per
// lane the float operations are the same in both, so they give the same
// bits. p0 and p1 point at the two groups' tiles (or scales); Lanes8
// ignores p1.
struct Lanes8 {
  using I = __m256i;
  using F = __m256;
  static constexpr int kGroups = 1;
  static constexpr int kActTile = kInt4ActTile;
  static I codes(const uint8_t* p0, const uint8_t*) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p0)); }
  static I bytes(uint8_t v) { return _mm256_set1_epi8(static_cast<char>(v)); }
  static I low_nibbles(I v, I m) { return _mm256_and_si256(v, m); }
  static I high_nibbles(I v, I m) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), m); }
  static I broadcast4(const int8_t* a) { return _mm256_set1_epi32(load_i32(a)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I dpbusd(I acc, I u, I s) { return X86Core::dpbusd(acc, u, s); }
  static I add(I a, I b) { return _mm256_add_epi32(a, b); }
  static F to_float(I v) { return _mm256_cvtepi32_ps(v); }
  static F zero_f() { return _mm256_setzero_ps(); }
  static F broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  template <ScaleFormat SF>
  static F params(const uint8_t* p0, const uint8_t*, int64_t i) { return load_params<SF>(p0, i); }
  // Lanes [lo, hi) to out[lo..hi).
  static void store(float* out, F v, int lo, int hi) { store_lanes(out, v, lo, hi); }
};

#if defined(__AVX512F__)
struct Lanes16 {
  using I = __m512i;
  using F = __m512;
  static constexpr int kGroups = 2;
  // Activation rows per pass: with 8 the loop keeps its accumulators and
  // partial sums in the 32 registers (GCC 12 spills some with 12, and 12
  // measured no faster on Zen 4).
  static constexpr int kActTile = 8;
  static I codes(const uint8_t* p0, const uint8_t* p1) {
    const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(p0));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), _mm256_load_si256(reinterpret_cast<const __m256i*>(p1)), 1);
  }
  static I bytes(uint8_t v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  static I low_nibbles(I v, I m) { return _mm512_and_si512(v, m); }
  static I high_nibbles(I v, I m) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), m); }
  static I broadcast4(const int8_t* a) { return _mm512_set1_epi32(load_i32(a)); }
  static I zero() { return _mm512_setzero_si512(); }
  static I dpbusd(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I add(I a, I b) { return _mm512_add_epi32(a, b); }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
  static F zero_f() { return _mm512_setzero_ps(); }
  static F broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  template <ScaleFormat SF>
  static F params(const uint8_t* p0, const uint8_t* p1, int64_t i) {
    const __m256d lo = _mm256_castps_pd(load_params<SF>(p0, i)), hi = _mm256_castps_pd(load_params<SF>(p1, i));
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1));
  }
  // Lanes [lo, hi) of the pair (hi up to 16) to out[lo..hi).
  static void store(float* out, F v, int lo, int hi) {
    const __m512d d = _mm512_castps_pd(v);
    if (lo < 8) store_lanes(out, _mm256_castpd_ps(_mm512_castpd512_pd256(d)), lo, std::min(hi, 8));
    if (hi > 8) store_lanes(out + 8, _mm256_castpd_ps(_mm512_extractf64x4_pd(d, 1)), std::max(lo, 8) - 8, hi - 8);
  }
};
#endif

// y lanes [lo, hi) of groups g .. g + W::kGroups - 1 for activation rows
// x[0..T). Per tile and activation row, the integer dot of the block's 32
// columns for each weight row, one i32 lane each:
//  - AVX2: 8 maddubs whose i16 sums add up without overflow (16 products
//    of 15 * 127 per lane stay below 32767), then one madd to widen;
//  - VNNI: 8 vpdpbusd straight into i32 (u8 codes x s8 activations, 4
//    products per lane and instruction);
// then three float ops for the scales and the min term; the unpack of a
// tile (3 ops per vector) is shared by the T rows. Only the first pass
// over a group prefetches: later ones find its tiles in L1/L2.
//
// A row's float arithmetic is the same for every T and width (one
// accumulator chain per lane: block b's scaled dot, then its min term), so
// its result never depends on how many rows share the call or which path
// ran it. Only the exact integer part differs: with few rows a second
// integer chain hides latencies, with more the rows themselves are
// independent chains, and registers run out.
template <typename W, ScaleFormat SF, int T>
void int4_group(const Int4Matrix& w, int64_t g, const QuantizedActivations* x, float* y, int64_t ldy, int lo,
                int hi, bool prefetch) {
  using I = typename W::I;
  using F = typename W::F;
  constexpr bool kTwoChains = T <= 2;
  const int64_t nb = w.blocks();
  const int64_t next = W::kGroups > 1 ? nb * kInt4TileBytes : 0;  // to group g + 1's tiles
  const uint8_t* tile = w.tile(g, 0);
  const size_t group_params = static_cast<size_t>(nb * kRowGroup) * w.scale_bytes();
  const size_t next_params = W::kGroups > 1 ? group_params : 0;
  const uint8_t* sp = w.scales.data() + g * group_params;
  const uint8_t* mp = w.symmetric ? nullptr : w.mins.data() + g * group_params;
  const I m4 = W::bytes(0x0F);
  F acc[T];
  CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[t] = W::zero_f();
  for (int64_t b = 0; b < nb; ++b, tile += kInt4TileBytes) {
    if (prefetch) {
      CHORUS_UNROLL for (int k = 0; k < W::kGroups; ++k) {
        _mm_prefetch(reinterpret_cast<const char*>(tile + k * next + kStreamPrefetch), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(tile + k * next + kStreamPrefetch + 64), _MM_HINT_T0);
      }
    }
    I p[T], p2[T];  // AVX2: i16 partial sums; VNNI: i32 sums
    CHORUS_UNROLL for (int q = 0; q < 4; ++q) {
      const I v = W::codes(tile + 32 * q, tile + next + 32 * q);
      const I wl = W::low_nibbles(v, m4);   // columns 4q..4q+3 of each row
      const I wh = W::high_nibbles(v, m4);  // columns 16+4q..16+4q+3
      CHORUS_UNROLL for (int t = 0; t < T; ++t) {
        const int8_t* a = x[t].q + b * kQK + 4 * q;
        const I al = W::broadcast4(a);
        const I ah = W::broadcast4(a + kQK / 2);
        if constexpr (X86Core::kDpbusd) {
          if constexpr (kTwoChains) {
            p[t] = W::dpbusd(q == 0 ? W::zero() : p[t], wl, al);
            p2[t] = W::dpbusd(q == 0 ? W::zero() : p2[t], wh, ah);
          } else {
            p[t] = W::dpbusd(W::dpbusd(q == 0 ? W::zero() : p[t], wl, al), wh, ah);
          }
        } else {  // AVX2, 256 bits only
          const I pl = _mm256_maddubs_epi16(wl, al);
          const I ph = _mm256_maddubs_epi16(wh, ah);
          if constexpr (kTwoChains) {
            p[t] = q == 0 ? pl : _mm256_add_epi16(p[t], pl);
            p2[t] = q == 0 ? ph : _mm256_add_epi16(p2[t], ph);
          } else {
            p[t] = q == 0 ? _mm256_add_epi16(pl, ph) : _mm256_add_epi16(_mm256_add_epi16(p[t], pl), ph);
            pin(p[t]);
          }
        }
      }
    }
    const F sw = W::template params<SF>(sp, sp + next_params, b * kRowGroup);
    const F mw = mp == nullptr ? W::mul(sw, W::set1(-8.0f)) : W::template params<SF>(mp, mp + next_params, b * kRowGroup);
    CHORUS_UNROLL for (int t = 0; t < T; ++t) {
      I d;
      if constexpr (X86Core::kDpbusd) {
        d = kTwoChains ? W::add(p[t], p2[t]) : p[t];
      } else {
        const __m256i ones = _mm256_set1_epi16(1);
        d = _mm256_madd_epi16(p[t], ones);
        if constexpr (kTwoChains) d = _mm256_add_epi32(d, _mm256_madd_epi16(p2[t], ones));
      }
      const F dot = W::to_float(d);
      acc[t] = W::fmadd(dot, W::mul(sw, W::broadcast(x[t].scale + b)), acc[t]);
      acc[t] = W::fmadd(mw, W::broadcast(x[t].scaled_sum + b), acc[t]);
    }
  }
  CHORUS_UNROLL for (int t = 0; t < T; ++t) W::store(y + t * ldy + g * kRowGroup, acc[t], lo, hi);
}

// The last m < T rows of a pass: int4_group with T = m, chosen by a
// compile-time walk down from T - 1.
template <typename W, ScaleFormat SF, int T>
void int4_group_tail(int m, const Int4Matrix& w, int64_t g, const QuantizedActivations* x, float* y,
                     int64_t ldy, int lo, int hi, bool prefetch) {
  if constexpr (T >= 1) {
    if (m == T) return int4_group<W, SF, T>(w, g, x, y, ldy, lo, hi, prefetch);
    int4_group_tail<W, SF, T - 1>(m, w, g, x, y, ldy, lo, hi, prefetch);
  }
}

// Activation rows t in [0, n) through groups g.., W::kActTile at a time.
template <typename W, ScaleFormat SF>
void int4_group_rows(const Int4Matrix& w, int64_t g, const QuantizedActivations* x, int n, float* y, int64_t ldy,
                     int lo, int hi) {
  int t = 0;
  for (; t + W::kActTile <= n; t += W::kActTile) {
    int4_group<W, SF, W::kActTile>(w, g, x + t, y + t * ldy, ldy, lo, hi, t == 0);
  }
  int4_group_tail<W, SF, W::kActTile - 1>(n - t, w, g, x + t, y + t * ldy, ldy, lo, hi, t == 0);
}

// Calls of at least this many rows take two groups per pass where the table
// has 512-bit vectors; with fewer the product is bound by the weights'
// stream, and one group at a time keeps it to one sequential stream.
constexpr int kTwoGroupMinRows = 4;

template <ScaleFormat SF>
void int4_matmul(const Int4Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  const int64_t g_end = (r1 + kRowGroup - 1) / kRowGroup;
  for (int t0 = 0; t0 < n; t0 += kInt4ActPass) {
    const int tn = std::min(kInt4ActPass, n - t0);
    int64_t g = r0 / kRowGroup;
    auto lanes = [&](int64_t groups) {
      const int lo = static_cast<int>(std::max<int64_t>(r0 - g * kRowGroup, 0));
      const int hi = static_cast<int>(std::min<int64_t>(r1 - g * kRowGroup, groups * kRowGroup));
      return std::pair{lo, hi};
    };
#if defined(__AVX512F__)
    if (tn >= kTwoGroupMinRows) {
      for (; g + 2 <= g_end; g += 2) {
        const auto [lo, hi] = lanes(2);
        int4_group_rows<Lanes16, SF>(w, g, x + t0, tn, y + t0 * ldy, ldy, lo, hi);
      }
    }
#endif
    for (; g < g_end; ++g) {
      const auto [lo, hi] = lanes(1);
      int4_group_rows<Lanes8, SF>(w, g, x + t0, tn, y + t0 * ldy, ldy, lo, hi);
    }
  }
}

void matmul_int4(const Int4Matrix& w, const QuantizedActivations* x, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  if (n <= 0 || r1 <= r0) return;
  w.scale_format == ScaleFormat::kF16 ? int4_matmul<ScaleFormat::kF16>(w, x, n, y, ldy, r0, r1)
                                      : int4_matmul<ScaleFormat::kF32>(w, x, n, y, ldy, r0, r1);
}

// ---------------------------------------------------------------------------
// W8A8: signed weights, so maddubs gets |w| and the activations with w's
// sign. Pair sums reach 2 * 128 * 127, so each block widens on its own.

// Like int4_row_stream: one weight row at a time with a software prefetch,
// up to 4 activation rows sharing each loaded block.
// Block k of each 8 goes to accumulator k % kAcc whatever T is, so a row's
// sum never depends on how many rows share the call.
template <int T>
void int8_row(const Int8Matrix& w, const QuantizedActivations* x, float* y, int64_t ldy, int64_t r) {
  constexpr int kAcc = 2;  // independent FMA chains per row
  const int64_t nb = w.blocks();
  const int8_t* q = w.row_quants(r);
  const uint8_t* scales = reinterpret_cast<const uint8_t*>(w.scales.data());
  __m256 acc[T][kAcc];
  CHORUS_UNROLL for (int t = 0; t < T; ++t) {
    CHORUS_UNROLL for (int k = 0; k < kAcc; ++k) acc[t][k] = _mm256_setzero_ps();
  }
  alignas(32) float prod[T][8];
  for (int64_t b = 0; b < nb; b += 8) {
    const int64_t count = std::min<int64_t>(8, nb - b);
    for (int k = 0; k < 4; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(q + b * kQK + kStreamPrefetch + 64 * k), _MM_HINT_T0);
    }
    const __m256 s = load_params<ScaleFormat::kF16>(scales, r * nb + b, count);
    CHORUS_UNROLL for (int t = 0; t < T; ++t) {
      _mm256_store_ps(prod[t], _mm256_mul_ps(s, load_f32(x[t].scale + b, count)));
    }
    // Block b + k into accumulator j (a constant once unrolled, so the
    // accumulators stay in registers).
    auto block = [&](int64_t k, int j) {
      const int64_t col = (b + k) * kQK;
      const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + col));
      const __m256i wabs = _mm256_sign_epi8(wv, wv);
      CHORUS_UNROLL for (int t = 0; t < T; ++t) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].q + col));
        acc[t][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_u8s8(wabs, _mm256_sign_epi8(a, wv))),
                                    _mm256_broadcast_ss(&prod[t][k]), acc[t][j]);
      }
    };
    if (count == 8) {
      CHORUS_UNROLL for (int k = 0; k < 8; ++k) block(k, k % kAcc);
    } else {
      for (int64_t k = 0; k < count; ++k) block(k, 0);
    }
  }
  CHORUS_UNROLL for (int t = 0; t < T; ++t) {
    __m256 sum = acc[t][0];
    for (int k = 1; k < kAcc; ++k) sum = _mm256_add_ps(sum, acc[t][k]);
    y[t * ldy + r] = hsum(sum);
  }
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
  __m256 acc[R][T];
  CHORUS_UNROLL for (int i = 0; i < R; ++i) {
    CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
  }
  const float* wr[R];
  for (int i = 0; i < R; ++i) wr[i] = w + (r + i) * cols;
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    __m256 xv[T];
    CHORUS_UNROLL for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + t * ldx + c);
    CHORUS_UNROLL for (int i = 0; i < R; ++i) {
      const __m256 wv = _mm256_loadu_ps(wr[i] + c);
      CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
  if (c < cols) {
    const __m256i mask = lane_mask(cols - c);
    __m256 xv[T];
    CHORUS_UNROLL for (int t = 0; t < T; ++t) xv[t] = _mm256_maskload_ps(x + t * ldx + c, mask);
    CHORUS_UNROLL for (int i = 0; i < R; ++i) {
      const __m256 wv = _mm256_maskload_ps(wr[i] + c, mask);
      CHORUS_UNROLL for (int t = 0; t < T; ++t) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
  CHORUS_UNROLL for (int i = 0; i < R; ++i) {
    CHORUS_UNROLL for (int t = 0; t < T; ++t) y[t * ldy + r + i] = hsum(acc[i][t]);
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
  constexpr int64_t kGroup = 16;
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
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    CHORUS_UNROLL for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k), _mm256_loadu_ps(b + i + 8 * k), acc[k]);
    }
  }
  for (; i + 8 <= n; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
  if (i < n) {
    const __m256i mask = lane_mask(n - i);
    acc[1] = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, mask), _mm256_maskload_ps(b + i, mask), acc[1]);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  const float ss = dot(x, x, n);
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const __m256 sv = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(sv, _mm256_loadu_ps(x + i))));
  }
  for (; i < n; ++i) out[i] = weight[i] * (scale * x[i]);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// e^x to ~2 ulp (Cephes' expf: x = k ln2 + r, |r| <= ln2 / 2, degree-6
// polynomial in r, then scale by 2^k). Inputs below -87.3 give 0 (the true
// value would be subnormal), above 88 they saturate at e^88.
inline __m256 exp_ps(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.0f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(too_small, _mm256_mul_ps(p, _mm256_castsi256_ps(bits)));
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const int64_t tail = n % 8;
  const int64_t main = n - tail;
  const __m256i mask = lane_mask(tail);
  __m256 mv = _mm256_set1_ps(-INFINITY);
  for (int64_t i = 0; i < main; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
  float max_val = -INFINITY;
  {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, mv);
    for (const float v : lanes) max_val = std::max(max_val, v);
    for (int64_t i = main; i < n; ++i) max_val = std::max(max_val, x[i]);
  }
  const __m256 maxv = _mm256_set1_ps(max_val);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < main; i += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), maxv));
    _mm256_storeu_ps(x + i, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (tail != 0) {
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + main, mask), maxv)),
                                   _mm256_castsi256_ps(mask));
    _mm256_maskstore_ps(x + main, mask, e);
    sum = _mm256_add_ps(sum, e);
  }
  const __m256 inv = _mm256_set1_ps(1.0f / hsum(sum));
  for (int64_t i = 0; i < main; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  if (tail != 0) _mm256_maskstore_ps(x + main, mask, _mm256_mul_ps(_mm256_maskload_ps(x + main, mask), inv));
}

void silu_mul(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_ps(_mm256_xor_ps(g, sign));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
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
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
      for (int64_t c = 0; c < main; c += 8) {
        const __m256 av = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(aj + c)));
        for (int k = 0; k < 4; ++k) acc[k] = _mm256_fmadd_ps(av, _mm256_loadu_ps(xr[k] + c), acc[k]);
      }
      for (int k = 0; k < m; ++k) {
        float sum = hsum(acc[k]);
        for (int64_t c = main; c < in; ++c) sum += f16_to_f32(aj[c]) * xr[k][c];
        t[(g0 + k) * ldt + j] = scale * sum;
      }
    }
  }
}

// LoRA expand over column tiles of 32: a tile of B^T is converted to f32 once
// (for up to 64 ranks at a time) and reused by every row of the group. A
// ragged tile at the end of the range takes the same path with masked loads
// and stores, so every output column gets the same chain of FMAs wherever
// the caller's range (a thread's slice) starts and ends.
void lora_expand(const uint16_t* bt, int rank, int64_t out, const float* t, int64_t ldt,
                 const int32_t* rows, int n, float* y, int64_t ldy, int64_t o0, int64_t o1) {
  constexpr int kTile = 32, kRanks = 64, kVecs = kTile / 8;
  alignas(32) float tile[kRanks][kTile];
  for (int64_t o = o0; o < o1; o += kTile) {
    const int64_t width = std::min<int64_t>(kTile, o1 - o);
    __m256i mask[kVecs];
    int64_t count[kVecs];
    for (int k = 0; k < kVecs; ++k) {
      count[k] = std::clamp<int64_t>(width - 8 * k, 0, 8);
      mask[k] = lane_mask(count[k]);
    }
    for (int j0 = 0; j0 < rank; j0 += kRanks) {
      const int nr = std::min(kRanks, rank - j0);
      for (int j = 0; j < nr; ++j) {
        const uint8_t* src = reinterpret_cast<const uint8_t*>(bt + (j0 + j) * out + o);
        for (int k = 0; k < kVecs; ++k) {
          _mm256_store_ps(&tile[j][8 * k], load_params<ScaleFormat::kF16>(src, 8 * k, count[k]));
        }
      }
      for (int g = 0; g < n; ++g) {
        float* yr = y + rows[g] * ldy + o;
        const float* tg = t + g * ldt + j0;
        __m256 acc[kVecs];
        for (int k = 0; k < kVecs; ++k) acc[k] = _mm256_maskload_ps(yr + 8 * k, mask[k]);
        for (int j = 0; j < nr; ++j) {
          const __m256 tj = _mm256_set1_ps(tg[j]);
          for (int k = 0; k < kVecs; ++k) acc[k] = _mm256_fmadd_ps(tj, _mm256_load_ps(&tile[j][8 * k]), acc[k]);
        }
        for (int k = 0; k < kVecs; ++k) _mm256_maskstore_ps(yr + 8 * k, mask[k], acc[k]);
      }
    }
  }
}

// Eight values of a cache row as f32: an f32 cache as is, an f16 one
// widened by vcvtph2ps (exact). Everything after the load is the same float
// code for both, so an f16 cache gives the bits of an f32 cache holding the
// same values.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// A cell's score is the 8-lane sum of its products q * K (HD vectors),
// reduced as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): the order
// the horizontal-add tree of scores8 gives, so a cell's score is the same
// bits whether it is scored in a run of 8 or alone. Which cells fall in a
// run of 8 depends on how the caller splits its cells into committed and
// in-step ones, which must not change the result.
template <int HD, typename Cache>
inline __m256 cell_products(const __m256* qv, const Cache* k) {
  __m256 acc = _mm256_mul_ps(qv[0], load8(k));
  CHORUS_UNROLL for (int v = 1; v < HD; ++v) acc = _mm256_fmadd_ps(qv[v], load8(k + 8 * v), acc);
  return acc;
}

inline float hsum_tree(__m256 v) {
  const __m256 h = _mm256_hadd_ps(v, v);  // (l0+l1, l2+l3, ..) per 128-bit half
  const __m256 h2 = _mm256_hadd_ps(h, h);
  return _mm256_cvtss_f32(_mm256_add_ps(h2, _mm256_permute2f128_ps(h2, h2, 0x01)));
}

// Scores of 8 cells at once: cell j's sum lands in lane j.
template <int HD, typename Cache>
inline __m256 scores8(const __m256* qv, const Cache* keys, int64_t stride, const int32_t* cells) {
  __m256 p[8];
  CHORUS_UNROLL for (int j = 0; j < 8; ++j) p[j] = cell_products<HD>(qv, keys + cells[j] * stride);
  const __m256 t0 = _mm256_hadd_ps(p[0], p[1]), t1 = _mm256_hadd_ps(p[2], p[3]);
  const __m256 t2 = _mm256_hadd_ps(p[4], p[5]), t3 = _mm256_hadd_ps(p[6], p[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// One run of cells into s[0..n): 8 at a time, then one by one.
template <int HD, typename Cache>
inline void score_run(const __m256* qv, const Cache* keys, int64_t stride, const int32_t* cells, int n,
                      __m256 scale, float* s) {
  int j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(scores8<HD>(qv, keys, stride, cells + j), scale));
  for (; j < n; ++j) s[j] = hsum_tree(cell_products<HD>(qv, keys + cells[j] * stride)) * _mm256_cvtss_f32(scale);
}

// out += sum_j s[j] V_j over one run of cells, in registers with two sets
// of accumulators so that FMA latency does not bind on small heads. Cell j
// of the row's whole list (committed cells, then in-step ones) goes to set
// j % 2, so the sums are in position order per set wherever the list is
// split into runs; `first` is the index of the run's first cell there.
template <int HD, typename Cache>
inline void value_run(const Cache* values, int64_t stride, const int32_t* cells, int n, const float* s, int first,
                      __m256* acc0, __m256* acc1) {
  int j = 0;
  if (n > 0 && first % 2 == 1) {  // an odd cell first: it goes to set 1
    const Cache* v1 = values + cells[0] * stride;
    const __m256 s1 = _mm256_broadcast_ss(s);
    CHORUS_UNROLL for (int v = 0; v < HD; ++v) acc1[v] = _mm256_fmadd_ps(s1, load8(v1 + 8 * v), acc1[v]);
    j = 1;
  }
  for (; j + 2 <= n; j += 2) {
    const Cache* v0 = values + cells[j] * stride;
    const Cache* v1 = values + cells[j + 1] * stride;
    const __m256 s0 = _mm256_broadcast_ss(s + j), s1 = _mm256_broadcast_ss(s + j + 1);
    CHORUS_UNROLL for (int v = 0; v < HD; ++v) {
      acc0[v] = _mm256_fmadd_ps(s0, load8(v0 + 8 * v), acc0[v]);
      acc1[v] = _mm256_fmadd_ps(s1, load8(v1 + 8 * v), acc1[v]);
    }
  }
  if (j < n) {
    const Cache* v0 = values + cells[j] * stride;
    const __m256 s0 = _mm256_broadcast_ss(s + j);
    CHORUS_UNROLL for (int v = 0; v < HD; ++v) acc0[v] = _mm256_fmadd_ps(s0, load8(v0 + 8 * v), acc0[v]);
  }
}

// Heads whose size is a multiple of 8 floats, up to 128 (HD vectors).
template <int HD, typename Cache>
void attend_vec(const Cache* keys, const Cache* values, int64_t stride, const int32_t* cells_a, int na,
                const int32_t* cells_b, int nb, int g, float scale, const float* q, float* out, float* scores) {
  const int n = na + nb;
  const __m256 sv = _mm256_set1_ps(scale);
  for (int h = 0; h < g; ++h) {
    __m256 qv[HD];
    CHORUS_UNROLL for (int v = 0; v < HD; ++v) qv[v] = _mm256_loadu_ps(q + h * HD * 8 + 8 * v);
    float* s = scores + h * n;
    score_run<HD>(qv, keys, stride, cells_a, na, sv, s);
    score_run<HD>(qv, keys, stride, cells_b, nb, sv, s + na);
    softmax(s, n);
    __m256 acc0[HD], acc1[HD];
    CHORUS_UNROLL for (int v = 0; v < HD; ++v) acc0[v] = acc1[v] = _mm256_setzero_ps();
    value_run<HD>(values, stride, cells_a, na, s, 0, acc0, acc1);
    value_run<HD>(values, stride, cells_b, nb, s + na, na, acc0, acc1);
    CHORUS_UNROLL for (int v = 0; v < HD; ++v) _mm256_storeu_ps(out + h * HD * 8 + 8 * v, _mm256_add_ps(acc0[v], acc1[v]));
  }
}

// An f16 row widened for the shared loop of other head sizes.
void widen_f16(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, load8(h + i));
  for (; i < n; ++i) out[i] = f16_to_f32(h[i]);
}

template <typename Cache>
void attend_cache(const Cache* keys, const Cache* values, int64_t stride, const int32_t* cells_a, int na,
                  const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q, float* out,
                  float* scores) {
  switch (head_dim) {
    case 8: return attend_vec<1>(keys, values, stride, cells_a, na, cells_b, nb, g, scale, q, out, scores);
    case 16: return attend_vec<2>(keys, values, stride, cells_a, na, cells_b, nb, g, scale, q, out, scores);
    case 32: return attend_vec<4>(keys, values, stride, cells_a, na, cells_b, nb, g, scale, q, out, scores);
    case 64: return attend_vec<8>(keys, values, stride, cells_a, na, cells_b, nb, g, scale, q, out, scores);
    case 128: return attend_vec<16>(keys, values, stride, cells_a, na, cells_b, nb, g, scale, q, out, scores);
    default: break;
  }
  // Other head sizes: the shared loop over this table's dot/axpy/softmax.
  attend_heads<dot, axpy, softmax, Cache, widen_f16>(keys, values, stride, cells_a, na, cells_b, nb, head_dim, g,
                                                     scale, q, out, scores);
}

void attend(const float* keys, const float* values, int64_t stride, const int32_t* cells_a, int na,
            const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q, float* out,
            float* scores) {
  attend_cache(keys, values, stride, cells_a, na, cells_b, nb, head_dim, g, scale, q, out, scores);
}

void attend_f16(const uint16_t* keys, const uint16_t* values, int64_t stride, const int32_t* cells_a, int na,
                const int32_t* cells_b, int nb, int head_dim, int g, float scale, const float* q, float* out,
                float* scores) {
  attend_cache(keys, values, stride, cells_a, na, cells_b, nb, head_dim, g, scale, q, out, scores);
}

}  // namespace
}  // namespace chorus::kernels

#include "kernels/kernel_table_of-inl.h"
