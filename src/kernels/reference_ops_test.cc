// Reference operators against values worked out by hand.
#include "kernels/reference_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "util/half.h"

namespace chorus::ref {
namespace {

TEST(ReferenceOps, RmsnormScalesByRootMeanSquare) {
  const float x[4] = {1, 2, 3, 4};
  const float w[4] = {1, 1, 1, 2};
  float out[4];
  rmsnorm(out, x, w, 4, 0.0f);
  const float s = 1.0f / std::sqrt(7.5f);  // mean of 1 + 4 + 9 + 16
  EXPECT_FLOAT_EQ(out[0], 1 * s);
  EXPECT_FLOAT_EQ(out[1], 2 * s);
  EXPECT_FLOAT_EQ(out[2], 3 * s);
  EXPECT_FLOAT_EQ(out[3], 8 * s);

  // eps keeps a zero vector finite; in place is allowed.
  float z[2] = {0, 0};
  const float ones[2] = {1, 1};
  rmsnorm(z, z, ones, 2, 1e-5f);
  EXPECT_EQ(z[0], 0.0f);
  EXPECT_EQ(z[1], 0.0f);
}

TEST(ReferenceOps, Softmax) {
  float x[3] = {0, std::log(2.0f), std::log(3.0f)};
  softmax(x, 3);
  EXPECT_FLOAT_EQ(x[0], 1.0f / 6);
  EXPECT_FLOAT_EQ(x[1], 2.0f / 6);
  EXPECT_FLOAT_EQ(x[2], 3.0f / 6);

  float big[2] = {1000, 1000};  // no overflow: the max is subtracted first
  softmax(big, 2);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
  EXPECT_FLOAT_EQ(big[1], 0.5f);
}

TEST(ReferenceOps, Silu) {
  float x[3] = {0, 1, -1};
  silu(x, 3);
  EXPECT_FLOAT_EQ(x[0], 0.0f);
  EXPECT_NEAR(x[1], 0.7310586f, 1e-6);
  EXPECT_NEAR(x[2], -0.2689414f, 1e-6);
}

TEST(ReferenceOps, DotHandlesTails) {
  std::vector<float> a(11), b(11, 1.0f);
  for (int i = 0; i < 11; ++i) a[i] = i + 1;
  EXPECT_EQ(dot(a.data(), b.data(), 11), 66.0f);
  EXPECT_EQ(dot(a.data(), b.data(), 0), 0.0f);
}

TEST(ReferenceOps, RopeRotatesInterleavedPairs) {
  // head_dim 4: pair (0,1) turns by pos * 1 rad, pair (2,3) by
  // pos * 10000^(-2/4) = pos * 0.01 rad.
  float v[8] = {1, 0, 0, 1, 2, 0, 0, 2};  // two heads
  RopeParams p;
  p.head_dim = 4;
  p.rope_dim = 4;
  p.theta = 10000;
  rope(v, 2, 1, p);
  for (int h = 0; h < 2; ++h) {
    const float m = h + 1.0f;
    EXPECT_NEAR(v[4 * h + 0], m * std::cos(1.0f), 1e-6);
    EXPECT_NEAR(v[4 * h + 1], m * std::sin(1.0f), 1e-6);
    EXPECT_NEAR(v[4 * h + 2], -m * std::sin(0.01f), 1e-6);
    EXPECT_NEAR(v[4 * h + 3], m * std::cos(0.01f), 1e-6);
  }
}

TEST(ReferenceOps, RopePositionZeroIsIdentity) {
  float v[4] = {0.5f, -1.5f, 2.5f, 3.5f};
  const float orig[4] = {0.5f, -1.5f, 2.5f, 3.5f};
  RopeParams p;
  p.head_dim = 4;
  p.rope_dim = 4;
  rope(v, 1, 0, p);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(v[i], orig[i]);
}

TEST(ReferenceOps, RopePartialDimsAndScaling) {
  // rope_dim 2 of head_dim 4: only the first pair turns, by pos * 1 rad.
  float v[4] = {1, 0, 7, 9};
  RopeParams p;
  p.head_dim = 4;
  p.rope_dim = 2;
  rope(v, 1, 3, p);
  EXPECT_NEAR(v[0], std::cos(3.0f), 1e-6);
  EXPECT_NEAR(v[1], std::sin(3.0f), 1e-6);
  EXPECT_EQ(v[2], 7.0f);
  EXPECT_EQ(v[3], 9.0f);

  // freq_scale 0.5 at pos 4 and a factor of 2 on pair (2,3): angles
  // 4 * 0.5 * 1 = 2 rad and 4 * 0.5 * 0.01 / 2 = 0.01 rad.
  const float factors[2] = {1, 2};
  float u[4] = {1, 0, 1, 0};
  p.rope_dim = 4;
  p.freq_scale = 0.5f;
  p.freq_factors = factors;
  rope(u, 1, 4, p);
  EXPECT_NEAR(u[0], std::cos(2.0f), 1e-6);
  EXPECT_NEAR(u[1], std::sin(2.0f), 1e-6);
  EXPECT_NEAR(u[2], std::cos(0.01f), 1e-6);
  EXPECT_NEAR(u[3], std::sin(0.01f), 1e-6);
}

TEST(ReferenceOps, MatvecF32) {
  const float w[6] = {1, 2, 3, 4, 5, 6};  // [2 x 3]
  const float x[3] = {1, 0, -1};
  float out[2];
  matvec(out, gguf::TensorType::kF32, reinterpret_cast<const uint8_t*>(w), 2, 3, x);
  EXPECT_EQ(out[0], -2.0f);
  EXPECT_EQ(out[1], -2.0f);
}

TEST(ReferenceOps, MatvecF16) {
  const uint16_t w[4] = {f32_to_f16(0.5f), f32_to_f16(-2.0f), f32_to_f16(1.5f), f32_to_f16(4.0f)};
  const float x[2] = {2, 1};
  float out[2];
  matvec(out, gguf::TensorType::kF16, reinterpret_cast<const uint8_t*>(w), 2, 2, x);
  EXPECT_EQ(out[0], -1.0f);
  EXPECT_EQ(out[1], 7.0f);
}

TEST(ReferenceOps, MatvecQ8_0) {
  // One block per row: f16 scale then 32 int8; row 0 has d = 0.5 and
  // q[i] = i - 16, row 1 has d = 2 and q[i] = 1.
  uint8_t blocks[2][34];
  const uint16_t d0 = f32_to_f16(0.5f), d1 = f32_to_f16(2.0f);
  std::memcpy(blocks[0], &d0, 2);
  std::memcpy(blocks[1], &d1, 2);
  for (int i = 0; i < 32; ++i) {
    blocks[0][2 + i] = static_cast<uint8_t>(static_cast<int8_t>(i - 16));
    blocks[1][2 + i] = 1;
  }
  std::vector<float> x(32, 1.0f);
  float out[2];
  matvec(out, gguf::TensorType::kQ8_0, &blocks[0][0], 2, 32, x.data());
  EXPECT_EQ(out[0], 0.5f * (496 - 512));  // sum of i - 16 over 0..31 is -16
  EXPECT_EQ(out[1], 64.0f);
}

TEST(ReferenceOps, MatvecQ4_0) {
  // Low nibbles hold elements 0..15, high nibbles 16..31, both offset by 8.
  // With d = 1: element j = j - 8, element 16 + j = 7 - j.
  uint8_t block[18];
  const uint16_t d = f32_to_f16(1.0f);
  std::memcpy(block, &d, 2);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> x(32, 0.0f);
  x[0] = 1;   // element 0 = -8
  x[17] = 2;  // element 17 = 6
  float out;
  matvec(&out, gguf::TensorType::kQ4_0, block, 1, 32, x.data());
  EXPECT_EQ(out, -8.0f + 2 * 6.0f);

  float row[32];
  dequantize_matrix_row(row, gguf::TensorType::kQ4_0, block, 32, 0);
  EXPECT_EQ(row[15], 7.0f);
  EXPECT_EQ(row[31], -8.0f);
}

}  // namespace
}  // namespace chorus::ref
