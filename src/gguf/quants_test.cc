// Tests of the reference block codecs: hand-built blocks with known scales
// and codes for every format chorus reads, quantize -> dequantize error
// bounds, and the f16 / bf16 conversions at their edges.
#include "gguf/quants.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "util/error.h"
#include "util/half.h"

namespace chorus::gguf {
namespace {

// f16 bit patterns of a few exact values.
constexpr uint16_t kHalfQuarter = 0x3400;   // 0.25
constexpr uint16_t kHalfHalf = 0x3800;      // 0.5
constexpr uint16_t kHalfOne = 0x3C00;       // 1.0
constexpr uint16_t kHalfTwo = 0x4000;       // 2.0
constexpr uint16_t kHalfMinusOne = 0xBC00;  // -1.0

void put16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

std::vector<float> dequant(TensorType type, const std::vector<uint8_t>& block, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
  dequantize_row(type, block.data(), out.data(), n);
  return out;
}

TEST(Dequantize, Q4_0) {
  std::vector<uint8_t> b(18);
  put16(b, 0, kHalfHalf);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequant(TensorType::kQ4_0, b, 32);
  EXPECT_EQ(y[0], -4.0f);  // (0 - 8) * 0.5
  EXPECT_EQ(y[15], 3.5f);  // (15 - 8) * 0.5
  EXPECT_EQ(y[16], 3.5f);  // high nibble of byte 0 is 15
  EXPECT_EQ(y[31], -4.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f) << j;
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f) << j;
  }
}

TEST(Dequantize, Q4_1) {
  std::vector<uint8_t> b(20);
  put16(b, 0, kHalfQuarter);
  put16(b, 2, kHalfMinusOne);
  for (int j = 0; j < 16; ++j) b[4 + j] = static_cast<uint8_t>(j | ((j ^ 5) << 4));
  const std::vector<float> y = dequant(TensorType::kQ4_1, b, 32);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 2.75f);  // 15 * 0.25 - 1
  EXPECT_EQ(y[16], 0.25f);  // (0 ^ 5) * 0.25 - 1
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], j * 0.25f - 1.0f) << j;
    EXPECT_EQ(y[j + 16], (j ^ 5) * 0.25f - 1.0f) << j;
  }
}

TEST(Dequantize, Q5_0) {
  std::vector<uint8_t> b(22);
  put16(b, 0, kHalfTwo);
  const uint32_t qh = 0x00010001u | 0x80000000u;  // fifth bit of elements 0, 16, 31
  std::memcpy(b.data() + 2, &qh, 4);
  b[6 + 0] = 0x21;   // elements 0 (1) and 16 (2)
  b[6 + 15] = 0xF3;  // elements 15 (3) and 31 (15)
  const std::vector<float> y = dequant(TensorType::kQ5_0, b, 32);
  EXPECT_EQ(y[0], 2.0f);    // (1 | 16) - 16 = 1, * 2
  EXPECT_EQ(y[16], 4.0f);   // (2 | 16) - 16 = 2
  EXPECT_EQ(y[1], -32.0f);  // 0 - 16
  EXPECT_EQ(y[17], -32.0f);
  EXPECT_EQ(y[15], -26.0f);  // 3 - 16 = -13
  EXPECT_EQ(y[31], 30.0f);   // (15 | 16) - 16 = 15
}

TEST(Dequantize, Q5_1) {
  std::vector<uint8_t> b(24);
  put16(b, 0, kHalfHalf);
  put16(b, 2, kHalfOne);
  const uint32_t qh = 0x00020002u;  // elements 1 and 17
  std::memcpy(b.data() + 4, &qh, 4);
  b[8 + 1] = 0x4F;  // element 1 = 15 | 16 = 31, element 17 = 4 | 16 = 20
  b[8 + 2] = 0x37;  // element 2 = 7, element 18 = 3
  const std::vector<float> y = dequant(TensorType::kQ5_1, b, 32);
  EXPECT_EQ(y[0], 1.0f);   // 0 * 0.5 + 1
  EXPECT_EQ(y[1], 16.5f);  // 31 * 0.5 + 1
  EXPECT_EQ(y[17], 11.0f);
  EXPECT_EQ(y[2], 4.5f);
  EXPECT_EQ(y[18], 2.5f);
}

TEST(Dequantize, Q8_0AndQ8_1) {
  std::vector<uint8_t> b0(34);
  put16(b0, 0, kHalfQuarter);
  for (int j = 0; j < 32; ++j) b0[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  const std::vector<float> y0 = dequant(TensorType::kQ8_0, b0, 32);
  EXPECT_EQ(y0[0], -32.0f);
  EXPECT_EQ(y0[31], 30.0f);  // 120 * 0.25
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y0[j], (j * 8 - 128) * 0.25f);

  std::vector<uint8_t> b1(36);
  put16(b1, 0, kHalfTwo);
  put16(b1, 2, 0x7BFF);  // s is not used to dequantize
  b1[4] = 0x7F;
  b1[5] = 0x81;  // -127
  const std::vector<float> y1 = dequant(TensorType::kQ8_1, b1, 32);
  EXPECT_EQ(y1[0], 254.0f);
  EXPECT_EQ(y1[1], -254.0f);
  EXPECT_EQ(y1[2], 0.0f);
}

// Q2_K: byte l of each 32-byte half holds four 2-bit codes; code k is element
// 32k + l of that half. Sub-block scale index: 8 * half + 2k + (l >= 16).
TEST(Dequantize, Q2_K) {
  std::vector<uint8_t> b(84);
  for (int is = 0; is < 16; ++is) b[is] = static_cast<uint8_t>((is % 15 + 1) | ((is % 4) << 4));
  for (int i = 0; i < 64; ++i) {
    const int l = i % 32;
    b[16 + i] = static_cast<uint8_t>((l % 4) | (((l + 1) % 4) << 2) | (((l + 2) % 4) << 4) | (((l + 3) % 4) << 6));
  }
  put16(b, 80, kHalfOne);
  put16(b, 82, kHalfHalf);
  const std::vector<float> y = dequant(TensorType::kQ2_K, b, 256);
  EXPECT_EQ(y[0], 0.0f);    // scale 1, min 0, code 0
  EXPECT_EQ(y[1], 1.0f);    // code 1
  EXPECT_EQ(y[16], -0.5f);  // sub-block 1: scale 2, min 1 * 0.5, code 0
  EXPECT_EQ(y[33], 5.0f);   // sub-block 2: scale 3 * code 2 - 2 * 0.5
  EXPECT_EQ(y[255], 0.5f);  // sub-block 15: scale 1 * code 2 - 3 * 0.5
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, k = (e % 128) / 32, l = e % 32;
    const int is = 8 * half + 2 * k + l / 16;
    const float expect = static_cast<float>(is % 15 + 1) * static_cast<float>((l + k) % 4) - 0.5f * (is % 4);
    EXPECT_EQ(y[e], expect) << e;
  }
}

// Q3_K: as Q2_K plus a third bit from hmask (clear = subtract 4) and 6-bit
// signed scales packed in 12 bytes.
TEST(Dequantize, Q3_K) {
  std::vector<uint8_t> b(110);
  // Scale j = j - 8 for j in 0..15 as stored (biased) value j + 24.
  uint8_t* packed = b.data() + 96;
  for (int j = 0; j < 16; ++j) {
    const int v = j + 24;  // 24..39: needs the high two bits
    if (j < 8) {
      packed[j] |= static_cast<uint8_t>(v & 0xF);
    } else {
      packed[j - 8] |= static_cast<uint8_t>((v & 0xF) << 4);
    }
    packed[8 + j % 4] |= static_cast<uint8_t>((v >> 4) << (2 * (j / 4)));
  }
  for (int i = 0; i < 64; ++i) b[32 + i] = 0xE4;                                       // codes 0, 1, 2, 3 for k = 0..3
  for (int l = 0; l < 32; ++l) b[l] = static_cast<uint8_t>(l % 2 == 0 ? 0xFF : 0x00);  // even l: no -4
  put16(b, 108, kHalfHalf);
  const std::vector<float> y = dequant(TensorType::kQ3_K, b, 256);
  EXPECT_EQ(y[0], 0.0f);     // scale -8, code 0
  EXPECT_EQ(y[1], 16.0f);    // scale -8, code 0 - 4: -8 * -4 * 0.5
  EXPECT_EQ(y[16], -0.0f);   // scale -7
  EXPECT_EQ(y[32], -3.0f);   // sub-block 2, scale -6, code 1: -6 * 1 * 0.5
  EXPECT_EQ(y[33], 9.0f);    // -6 * (1 - 4) * 0.5
  EXPECT_EQ(y[255], -3.5f);  // sub-block 15, scale 7, code 3 - 4
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, k = (e % 128) / 32, l = e % 32;
    const int scale = 8 * half + 2 * k + l / 16 - 8;
    const int code = k - (l % 2 == 0 ? 0 : 4);
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(scale) * static_cast<float>(code)) << e;
  }
}

// The 12-byte scale/min packing shared by Q4_K and Q5_K.
void pack_scale_min(uint8_t* s, const int* scales, const int* mins) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      s[j] = static_cast<uint8_t>(scales[j]);
      s[j + 4] = static_cast<uint8_t>(mins[j]);
    } else {
      s[j + 4] = static_cast<uint8_t>((scales[j] & 0xF) | ((mins[j] & 0xF) << 4));
      s[j - 4] |= static_cast<uint8_t>((scales[j] >> 4) << 6);
      s[j] |= static_cast<uint8_t>((mins[j] >> 4) << 6);
    }
  }
}

constexpr int kScales[8] = {1, 2, 63, 17, 33, 48, 5, 60};
constexpr int kMins[8] = {0, 63, 1, 16, 31, 32, 47, 3};

TEST(Dequantize, Q4_K) {
  std::vector<uint8_t> b(144);
  put16(b, 0, kHalfHalf);
  put16(b, 2, kHalfQuarter);
  pack_scale_min(b.data() + 4, kScales, kMins);
  for (int i = 0; i < 128; ++i) b[16 + i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  const std::vector<float> y = dequant(TensorType::kQ4_K, b, 256);
  EXPECT_EQ(y[0], 0.0f);            // 0.5 * 1 * 0 - 0.25 * 0
  EXPECT_EQ(y[32], -0.75f);         // sub-block 1: 0.5 * 2 * 15 - 0.25 * 63
  EXPECT_EQ(y[64 + 3], 94.25f);     // sub-block 2: 0.5 * 63 * 3 - 0.25 * 1
  EXPECT_EQ(y[255], 0.0f - 0.75f);  // sub-block 7: code 15 - 15 = 0 -> 0 - 0.25 * 3
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, byte = (e / 64) * 32 + e % 32;
    const int code = sub % 2 == 0 ? byte % 16 : 15 - byte % 16;
    EXPECT_EQ(y[e], 0.5f * kScales[sub] * code - 0.25f * kMins[sub]) << e;
  }
}

TEST(Dequantize, Q5_K) {
  std::vector<uint8_t> b(176);
  put16(b, 0, kHalfQuarter);
  put16(b, 2, kHalfOne);
  pack_scale_min(b.data() + 4, kScales, kMins);
  for (int l = 0; l < 32; ++l) b[16 + l] = static_cast<uint8_t>(l % 2 == 0 ? 0x55 : 0xAA);  // fifth bits
  for (int i = 0; i < 128; ++i) b[48 + i] = static_cast<uint8_t>(0x9 | (0x6 << 4));
  const std::vector<float> y = dequant(TensorType::kQ5_K, b, 256);
  // Even l: 0x55 sets the fifth bit of the low-nibble sub-blocks (0, 2, 4, 6).
  EXPECT_EQ(y[0], 0.25f * 1 * 25);           // code 9 + 16
  EXPECT_EQ(y[1], 0.25f * 1 * 9);            // odd l: 0xAA, no bit for sub-block 0
  EXPECT_EQ(y[32], 0.25f * 2 * 6 - 63.0f);   // sub-block 1, even l: no bit
  EXPECT_EQ(y[33], 0.25f * 2 * 22 - 63.0f);  // odd l: bit set
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, l = e % 32;
    const bool high = (sub % 2 == 0) == (l % 2 == 0);
    const int code = (sub % 2 == 0 ? 9 : 6) + (high ? 16 : 0);
    EXPECT_EQ(y[e], 0.25f * kScales[sub] * code - 1.0f * kMins[sub]) << e;
  }
}

// Q6_K: per 128-element half, ql[l] = elements l (low) and l + 64 (high),
// ql[l + 32] = elements l + 32 and l + 96, qh[l] holds their top bits at
// 0, 4, 2, 6; signed 8-bit scale per 16 elements.
TEST(Dequantize, Q6_K) {
  std::vector<uint8_t> b(210);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      // 6-bit codes for elements l, l+32, l+64, l+96 of this half.
      const int c0 = l, c1 = 63 - l, c2 = (l * 3) % 64, c3 = 32;
      b[64 * half + l] = static_cast<uint8_t>((c0 & 0xF) | ((c2 & 0xF) << 4));
      b[64 * half + l + 32] = static_cast<uint8_t>((c1 & 0xF) | ((c3 & 0xF) << 4));
      b[128 + 32 * half + l] = static_cast<uint8_t>((c0 >> 4) | ((c1 >> 4) << 2) | ((c2 >> 4) << 4) | ((c3 >> 4) << 6));
    }
  }
  for (int i = 0; i < 16; ++i) b[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(i % 2 == 0 ? -(i + 1) : i + 1));
  put16(b, 208, kHalfHalf);
  const std::vector<float> y = dequant(TensorType::kQ6_K, b, 256);
  EXPECT_EQ(y[0], 0.5f * -1 * (0 - 32));    // 16
  EXPECT_EQ(y[17], 0.5f * 2 * (17 - 32));   // -15
  EXPECT_EQ(y[32], 0.5f * -3 * (63 - 32));  // -46.5
  EXPECT_EQ(y[96], 0.0f);                   // code 32
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, r = e % 128, l = r % 32, quarter = r / 32;
    const int code = quarter == 0 ? l : quarter == 1 ? 63 - l : quarter == 2 ? (l * 3) % 64 : 32;
    const int scale_index = e / 16;
    const int scale = scale_index % 2 == 0 ? -(scale_index + 1) : scale_index + 1;
    EXPECT_EQ(y[e], 0.5f * static_cast<float>(scale) * static_cast<float>(code - 32)) << e << " half " << half;
  }
}

TEST(Dequantize, Q8_K) {
  std::vector<uint8_t> b(292);
  const float d = 0.125f;
  std::memcpy(b.data(), &d, 4);
  for (int j = 0; j < 256; ++j) b[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 128));
  const std::vector<float> y = dequant(TensorType::kQ8_K, b, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], (j - 128) * 0.125f);
}

TEST(Dequantize, MultipleBlocksAdvance) {
  std::vector<uint8_t> b(34 * 3);
  for (int blk = 0; blk < 3; ++blk) {
    put16(b, 34 * blk, f32_to_f16(static_cast<float>(blk + 1)));
    for (int j = 0; j < 32; ++j) b[34 * blk + 2 + j] = static_cast<uint8_t>(j);
  }
  const std::vector<float> y = dequant(TensorType::kQ8_0, b, 96);
  EXPECT_EQ(y[31], 31.0f);
  EXPECT_EQ(y[32 + 5], 10.0f);
  EXPECT_EQ(y[64 + 31], 93.0f);
}

TEST(Dequantize, RejectsPartialBlocksAndUnsupportedTypes) {
  std::vector<uint8_t> b(256);
  float out[64];
  EXPECT_THROW(dequantize_row(TensorType::kQ4_0, b.data(), out, 31), Error);
  EXPECT_THROW(dequantize_row(TensorType::kQ4_K, b.data(), out, 32), Error);
  EXPECT_THROW(dequantize_row(TensorType::kIQ2_XXS, b.data(), out, 256), Error);
  EXPECT_THROW(dequantize_row(TensorType::kIQ2_XXS, b.data(), out, 0), Error);
  dequantize_row(TensorType::kQ4_K, nullptr, nullptr, 0);  // empty rows are fine
  EXPECT_THROW(dequantize_row(static_cast<TensorType>(77), b.data(), out, 32), Error);
}

// ---------------------------------------------------------------------------
// f16 / bf16.

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

TEST(Half, F16Exact) {
  EXPECT_EQ(f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7BFF), 65504.0f);                  // largest finite
  EXPECT_EQ(f16_to_f32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(bits(f16_to_f32(0x8000)), 0x80000000u);         // -0
  EXPECT_EQ(f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7C01)));  // signalling pattern is still NaN
}

TEST(Half, F16RoundTripAllPatterns) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << h;
    } else {
      ASSERT_EQ(f32_to_f16(f), h) << h;
    }
  }
}

TEST(Half, F32ToF16Rounding) {
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);  // below the halfway point to 65536
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // ties to even -> inf
  EXPECT_EQ(f32_to_f16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-1e10f), 0xFC00);
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie, even stays
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie, odd rounds up
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);             // exactly half the smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp ties to even
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -30)), 0x8000);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  const uint16_t nan = f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
}

TEST(Half, Bf16) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC040), -3.0f);
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));  // subnormal
  EXPECT_EQ(bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7FC0)));
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x00010000u)), 0x0001);  // subnormal kept
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);    // max float rounds to inf
  const uint16_t nan = f32_to_bf16(std::bit_cast<float>(0x7F800001u));  // NaN with low payload only
  EXPECT_TRUE(std::isnan(bf16_to_f32(nan)));
}

TEST(Half, RowsOfF16AndBf16) {
  const std::vector<float> x = {0.0f, -1.5f, 65504.0f, std::ldexp(1.0f, -24), 3.140625f, -0.0f, 1e-3f, 7.0f};
  std::vector<uint8_t> buf(x.size() * 2);
  std::vector<float> y(x.size());
  quantize_row(TensorType::kF16, x.data(), buf.data(), 8);
  dequantize_row(TensorType::kF16, buf.data(), y.data(), 8);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], f16_to_f32(f32_to_f16(x[i]))) << i;
  EXPECT_EQ(y[2], 65504.0f);
  EXPECT_EQ(y[4], 3.140625f);
  quantize_row(TensorType::kBF16, x.data(), buf.data(), 8);
  dequantize_row(TensorType::kBF16, buf.data(), y.data(), 8);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], bf16_to_f32(f32_to_bf16(x[i]))) << i;
  EXPECT_EQ(y[1], -1.5f);
  EXPECT_EQ(y[7], 7.0f);
}

// ---------------------------------------------------------------------------
// Quantize -> dequantize.

std::vector<float> random_row(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<float> round_trip(TensorType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_bytes(type, n));
  quantize_row(type, x.data(), q.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(type, q.data(), y.data(), n);
  return y;
}

// Root-mean-square error relative to the RMS of the input.
double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(Quantize, ErrorBounds) {
  const std::vector<float> x = random_row(4096, 7);
  // Measured on 64K Gaussian samples: f16 2.1e-4, bf16 1.7e-3, q8_0 0.0053,
  // q4_0 0.086, q4_1 0.078, q4_K 0.071; the bounds leave about 25% margin.
  EXPECT_LT(relative_rms_error(x, round_trip(TensorType::kF16, x)), 2.7e-4);
  EXPECT_LT(relative_rms_error(x, round_trip(TensorType::kBF16, x)), 2.2e-3);
  EXPECT_EQ(relative_rms_error(x, round_trip(TensorType::kF32, x)), 0.0);
  EXPECT_LT(relative_rms_error(x, round_trip(TensorType::kQ8_0, x)), 0.0067);
  EXPECT_LT(relative_rms_error(x, round_trip(TensorType::kQ4_0, x)), 0.108);
  EXPECT_LT(relative_rms_error(x, round_trip(TensorType::kQ4_1, x)), 0.098);
  EXPECT_LT(relative_rms_error(x, round_trip(TensorType::kQ4_K, x)), 0.089);
}

TEST(Quantize, PerElementBounds) {
  const std::vector<float> x = random_row(1024, 11, 3.0f);
  const std::vector<float> q8 = round_trip(TensorType::kQ8_0, x);
  const std::vector<float> q4 = round_trip(TensorType::kQ4_0, x);
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = 32 * b + j;
      // Half a step plus the f16 rounding of the scale.
      EXPECT_LE(std::fabs(q8[i] - x[i]), amax / 127 * 0.5f + amax * 1e-3f) << i;
      // Q4_0 maps the signed maximum to -8, so the other side saturates at 7
      // steps: a full step of error there.
      EXPECT_LE(std::fabs(q4[i] - x[i]), amax / 8 + amax * 2e-3f) << i;
    }
  }
}

TEST(Quantize, Q8_0MatchesReferenceRounding) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16) * 0.5f;  // amax 8 -> d = 8/127
  x[31] = -8.0f;
  std::vector<uint8_t> q(34);
  quantize_row(TensorType::kQ8_0, x.data(), q.data(), 32);
  uint16_t d;
  std::memcpy(&d, q.data(), 2);
  EXPECT_EQ(d, f32_to_f16(8.0f / 127.0f));
  const int8_t* qs = reinterpret_cast<const int8_t*>(q.data() + 2);
  EXPECT_EQ(qs[0], -127);
  EXPECT_EQ(qs[16], 0);
  EXPECT_EQ(qs[17], 8);  // 0.5 * 127/8 = 7.94
  EXPECT_EQ(qs[31], -127);
}

TEST(Quantize, Q4_0UsesTheSignedMaximum) {
  std::vector<float> x(32, 0.0f);
  x[3] = -4.0f;  // largest magnitude: maps to code 0
  x[4] = 3.5f;
  x[20] = 1.0f;
  std::vector<uint8_t> q(18);
  quantize_row(TensorType::kQ4_0, x.data(), q.data(), 32);
  std::vector<float> y(32);
  dequantize_row(TensorType::kQ4_0, q.data(), y.data(), 32);
  EXPECT_EQ(y[3], -4.0f);
  EXPECT_EQ(y[4], 3.5f);
  EXPECT_EQ(y[20], 1.0f);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(q[2 + 3] & 0xF, 0);
}

TEST(Quantize, ExactlyRepresentableRowsSurvive) {
  // Codes times a power-of-two scale are exact in Q4_1 and Q4_K.
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>((i * 7) % 16) * 0.25f;
  const std::vector<float> q41 = round_trip(TensorType::kQ4_1, x);
  for (int i = 0; i < 256; ++i) EXPECT_EQ(q41[i], x[i]) << i;
  const std::vector<float> q4k = round_trip(TensorType::kQ4_K, x);
  EXPECT_LT(relative_rms_error(x, q4k), 0.02);
}

TEST(Quantize, ZeroAndConstantBlocks) {
  for (TensorType t : {TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ4_K}) {
    const std::vector<float> zeros(256, 0.0f);
    for (float v : round_trip(t, zeros)) EXPECT_EQ(v, 0.0f) << type_name(t);
    const std::vector<float> fives(256, 5.0f);
    for (float v : round_trip(t, fives)) EXPECT_NEAR(v, 5.0f, 0.05f) << type_name(t);
  }
}

TEST(Quantize, NonFiniteInputsStayDefined) {
  // Garbage in, but no undefined behaviour (checked under UBSan) and no throw.
  std::vector<float> x = random_row(256, 3);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  x[41] = -std::numeric_limits<float>::infinity();
  for (TensorType t : {TensorType::kQ8_0, TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ4_K}) {
    EXPECT_NO_THROW(round_trip(t, x)) << type_name(t);
  }
}

TEST(Quantize, CanQuantizeList) {
  for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0, TensorType::kQ4_0,
                       TensorType::kQ4_1, TensorType::kQ4_K}) {
    EXPECT_TRUE(can_quantize(t)) << type_name(t);
  }
  for (TensorType t : {TensorType::kQ5_0, TensorType::kQ6_K, TensorType::kQ8_K, TensorType::kIQ4_XS}) {
    EXPECT_FALSE(can_quantize(t)) << type_name(t);
    std::vector<float> x(256);
    std::vector<uint8_t> q(1024);
    EXPECT_THROW(quantize_row(t, x.data(), q.data(), 256), Error);
  }
}

}  // namespace
}  // namespace chorus::gguf
