// Repacking GGUF tensors: lossless sources dequantize exactly as the GGUF
// reference does (gguf::dequantize_row), fitted ones within their grid's
// error, and bad input is refused with chorus::Error.
#include "kernels/pack.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/quants.h"
#include "kernels/testing.h"
#include "util/error.h"
#include "util/half.h"

namespace chorus::kernels {
namespace {

using gguf::TensorType;

std::vector<uint8_t> quantize_matrix(TensorType type, const std::vector<float>& x, int64_t rows, int64_t cols) {
  const size_t rb = gguf::row_bytes(type, cols);
  std::vector<uint8_t> out(rb * rows);
  for (int64_t r = 0; r < rows; ++r) gguf::quantize_row(type, x.data() + r * cols, out.data() + r * rb, cols);
  return out;
}

// Random bytes, with every f16 scale field replaced by a finite value: this
// reaches codes and 6-bit Q4_K scale/min encodings a quantizer never writes.
std::vector<uint8_t> random_blocks(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng) {
  const gguf::TypeTraits& t = gguf::type_traits(type);
  std::vector<uint8_t> out(gguf::row_bytes(type, cols) * rows);
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : out) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  const int f16_fields = type == TensorType::kQ4_0 ? 1 : 2;  // d (and m / dmin)
  for (size_t off = 0; off < out.size(); off += t.block_bytes) {
    for (int k = 0; k < f16_fields; ++k) {
      const uint16_t h = f32_to_f16(scale(rng));
      std::memcpy(out.data() + off + 2 * k, &h, 2);
    }
  }
  return out;
}

void expect_same_as_gguf(TensorType type, const std::vector<uint8_t>& data, int64_t rows, int64_t cols,
                         const Int4Matrix& m) {
  std::vector<float> want(static_cast<size_t>(cols));
  std::vector<float> got(static_cast<size_t>(cols));
  const size_t rb = gguf::row_bytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    gguf::dequantize_row(type, data.data() + r * rb, want.data(), cols);
    dequantize_row(m, r, got.data());
    for (int64_t j = 0; j < cols; ++j) {
      // Equal as floats (the one difference in bits: +0 where Q4_0 gives -0).
      ASSERT_EQ(got[j], want[j]) << gguf::type_name(type) << " row " << r << " col " << j;
    }
  }
}

TEST(PackInt4, LosslessFromQuantizedRows) {
  std::mt19937 rng(1);
  for (const TensorType type : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ4_K}) {
    const bool k_quant = type == TensorType::kQ4_K;
    for (const int64_t cols : k_quant ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 160, 2048}) {
      const int64_t rows = 5;
      const std::vector<float> x = testing::random_floats(static_cast<size_t>(rows * cols), rng, 0.1f);
      const std::vector<uint8_t> data = quantize_matrix(type, x, rows, cols);
      const Int4Matrix m = pack_int4(type, data.data(), rows, cols);
      EXPECT_TRUE(is_lossless_int4_source(type));
      EXPECT_EQ(m.rows, rows);
      EXPECT_EQ(m.cols, cols);
      EXPECT_EQ(m.scale_format, k_quant ? ScaleFormat::kF32 : ScaleFormat::kF16);
      EXPECT_EQ(m.symmetric, type == TensorType::kQ4_0);
      if (m.symmetric) {  // the promise kernels rely on to skip the mins
        for (int64_t i = 0; i < rows * m.blocks(); ++i) {
          ASSERT_EQ(m.min(i / m.blocks(), i % m.blocks()), -8.0f * m.scale(i / m.blocks(), i % m.blocks()));
        }
      }
      EXPECT_EQ(m.quants.size(), static_cast<size_t>((rows + 7) / 8 * 8 * cols / 2));
      expect_same_as_gguf(type, data, rows, cols, m);
    }
  }
}

TEST(PackInt4, LosslessFromRandomBlocks) {
  std::mt19937 rng(2);
  for (const TensorType type : {TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ4_K}) {
    const int64_t cols = type == TensorType::kQ4_K ? 512 : 224;  // 7 blocks: an odd tail
    const std::vector<uint8_t> data = random_blocks(type, 9, cols, rng);
    expect_same_as_gguf(type, data, 9, cols, pack_int4(type, data.data(), 9, cols));
  }
}

TEST(PackInt4, Q4_0ScalesBeyondF16KeepF32) {
  // -8 * d overflows f16 for d near the top of its range: the matrix must
  // switch to f32 parameters rather than lose the values.
  std::mt19937 rng(3);
  std::vector<uint8_t> data = random_blocks(TensorType::kQ4_0, 2, 64, rng);
  const uint16_t big = f32_to_f16(30000.0f);
  std::memcpy(data.data() + 18, &big, 2);  // second block of row 0
  const Int4Matrix m = pack_int4(TensorType::kQ4_0, data.data(), 2, 64);
  EXPECT_EQ(m.scale_format, ScaleFormat::kF32);
  EXPECT_TRUE(m.symmetric);
  expect_same_as_gguf(TensorType::kQ4_0, data, 2, 64, m);
}

TEST(PackInt4, LayoutOfInterleavedRowGroups) {
  // 9 rows: one whole group of 8 and one padded group; 2 blocks.
  constexpr int kRows = 9, kCols = 64;
  std::vector<float> x(kRows * kCols);
  auto code = [](int r, int c) { return (3 * r + c) % 16; };  // each block holds 0..15: d = 1, m = 0
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kCols; ++c) x[r * kCols + c] = static_cast<float>(code(r, c));
  }
  const std::vector<uint8_t> q41 = quantize_matrix(TensorType::kQ4_1, x, kRows, kCols);
  const Int4Matrix m = pack_int4(TensorType::kQ4_1, q41.data(), kRows, kCols);
  ASSERT_EQ(m.groups(), 2);
  ASSERT_EQ(m.quants.size(), static_cast<size_t>(2 * 2 * kInt4TileBytes));
  for (int r = 0; r < 16; ++r) {
    for (int b = 0; b < 2; ++b) {
      const uint8_t* tile = m.quants.data() + ((r / 8) * 2 + b) * kInt4TileBytes;
      for (int p = 0; p < 4; ++p) {
        for (int c = 0; c < 4; ++c) {
          const uint8_t byte = tile[32 * p + 4 * (r % 8) + c];
          const int lo = r < kRows ? code(r, 32 * b + 4 * p + c) : 0;
          const int hi = r < kRows ? code(r, 32 * b + 16 + 4 * p + c) : 0;
          EXPECT_EQ(byte & 0x0F, lo) << r << " " << b << " " << p << " " << c;
          EXPECT_EQ(byte >> 4, hi) << r << " " << b << " " << p << " " << c;
        }
      }
      const int64_t i = ((r / 8) * 2 + b) * 8 + r % 8;  // [group][block][row]
      uint16_t scale = 0;
      std::memcpy(&scale, m.scales.data() + 2 * i, 2);
      EXPECT_EQ(f16_to_f32(scale), r < kRows ? 1.0f : 0.0f) << r;
    }
  }
}

// Squared error of the plain min/max grid with f16 parameters: the fit must
// never do worse.
double minmax_grid_error(const float* x) {
  const float lo = *std::min_element(x, x + 32);
  const float hi = *std::max_element(x, x + 32);
  const float m = f16_to_f32(f32_to_f16(lo));
  const float s = f16_to_f32(f32_to_f16((hi - lo) / 15.0f));
  double err = 0;
  for (int j = 0; j < 32; ++j) {
    const float q = s > 0 ? std::clamp(std::round((x[j] - m) / s), 0.0f, 15.0f) : 0.0f;
    err += std::pow(s * q + m - x[j], 2);
  }
  return err;
}

TEST(PackInt4, FittedFromFloatSources) {
  std::mt19937 rng(4);
  const int64_t rows = 6;
  const int64_t cols = 160;
  std::vector<float> x = testing::random_floats(static_cast<size_t>(rows * cols), rng, 0.2f);
  for (int j = 0; j < 32; ++j) x[j] = 0.25f;  // a constant block
  x[100] = 3.0f;                             // an outlier
  for (const TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0}) {
    SCOPED_TRACE(gguf::type_name(type));
    const std::vector<uint8_t> data = quantize_matrix(type, x, rows, cols);
    EXPECT_FALSE(is_lossless_int4_source(type));
    const Int4Matrix m = pack_int4(type, data.data(), rows, cols);
    EXPECT_EQ(m.scale_format, ScaleFormat::kF16);
    std::vector<float> src(static_cast<size_t>(cols));
    std::vector<float> got(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      gguf::dequantize_row(type, data.data() + r * gguf::row_bytes(type, cols), src.data(), cols);
      dequantize_row(m, r, got.data());
      for (int64_t b = 0; b < cols / 32; ++b) {
        const float* xs = src.data() + b * 32;
        const float lo = *std::min_element(xs, xs + 32);
        const float hi = *std::max_element(xs, xs + 32);
        double err = 0;
        for (int j = 0; j < 32; ++j) {
          const float diff = got[b * 32 + j] - xs[j];
          err += static_cast<double>(diff) * diff;
          // Never more than one step of the grid off.
          EXPECT_LE(std::fabs(diff), (hi - lo) / 15.0f + 1e-3f * std::fabs(lo) + 1e-6f) << "row " << r << " col "
                                                                                          << b * 32 + j;
        }
        EXPECT_LE(err, minmax_grid_error(xs) * (1 + 1e-6) + 1e-12) << "row " << r << " block " << b;
      }
    }
  }
}

TEST(PackInt8, LosslessFromQ8_0) {
  std::mt19937 rng(5);
  for (const int64_t cols : {32, 96, 2048}) {
    const std::vector<float> x = testing::random_floats(static_cast<size_t>(3 * cols), rng);
    const std::vector<uint8_t> data = quantize_matrix(TensorType::kQ8_0, x, 3, cols);
    const Int8Matrix m = pack_int8(TensorType::kQ8_0, data.data(), 3, cols);
    std::vector<float> want(static_cast<size_t>(cols));
    std::vector<float> got(static_cast<size_t>(cols));
    for (int64_t r = 0; r < 3; ++r) {
      gguf::dequantize_row(TensorType::kQ8_0, data.data() + r * gguf::row_bytes(TensorType::kQ8_0, cols),
                           want.data(), cols);
      dequantize_row(m, r, got.data());
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << "row " << r;
    }
  }
}

TEST(PackInt8, SymmetricFromOtherTypes) {
  std::mt19937 rng(6);
  const int64_t rows = 4;
  const int64_t cols = 256;
  const std::vector<float> x = testing::random_floats(static_cast<size_t>(rows * cols), rng, 0.3f);
  for (const TensorType type : {TensorType::kF32, TensorType::kF16, TensorType::kQ4_K, TensorType::kQ4_0}) {
    SCOPED_TRACE(gguf::type_name(type));
    const std::vector<uint8_t> data = quantize_matrix(type, x, rows, cols);
    const Int8Matrix m = pack_int8(type, data.data(), rows, cols);
    std::vector<float> src(static_cast<size_t>(cols));
    std::vector<float> got(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      gguf::dequantize_row(type, data.data() + r * gguf::row_bytes(type, cols), src.data(), cols);
      dequantize_row(m, r, got.data());
      for (int64_t b = 0; b < cols / 32; ++b) {
        const float d = m.scale(r, b);
        for (int j = 0; j < 32; ++j) {
          EXPECT_LE(std::fabs(got[b * 32 + j] - src[b * 32 + j]), 0.5f * d * (1 + 1e-5f) + 1e-7f);
        }
      }
    }
  }
}

TEST(Pack, RefusesBadInput) {
  const std::vector<uint8_t> data(1 << 16, 0);
  for (const TensorType type : {TensorType::kQ6_K, TensorType::kQ5_0, TensorType::kQ5_K, TensorType::kIQ4_NL}) {
    EXPECT_THROW(pack_int4(type, data.data(), 2, 256), Error) << gguf::type_name(type);
    EXPECT_FALSE(is_lossless_int4_source(type));
  }
  EXPECT_THROW(pack_int4(TensorType::kF32, data.data(), 2, 48), Error);   // not whole blocks
  EXPECT_THROW(pack_int4(TensorType::kF32, data.data(), 2, 0), Error);
  EXPECT_THROW(pack_int4(TensorType::kQ4_K, data.data(), 2, 32), Error);  // Q4_K needs 256 columns
  EXPECT_THROW(pack_int4(TensorType::kQ4_0, nullptr, 2, 32), Error);
  EXPECT_THROW(pack_int8(TensorType::kIQ2_XXS, data.data(), 2, 256), Error);
  EXPECT_THROW(pack_int8(TensorType::kF16, data.data(), 2, 40), Error);
  try {
    pack_int4(TensorType::kQ6_K, data.data(), 2, 256);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q6_K"), std::string::npos) << e.what();
  }
}

TEST(Pack, EmptyMatrix) {
  const Int4Matrix m = pack_int4(TensorType::kQ4_0, nullptr, 0, 64);
  EXPECT_EQ(m.rows, 0);
  EXPECT_EQ(m.bytes(), 0u);
}

}  // namespace
}  // namespace chorus::kernels
