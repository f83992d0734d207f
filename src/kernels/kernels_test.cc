// Every kernel table this CPU can run, op by op, against the f32 reference
// (reference_ops.h) or an exact recomputation from the same quantized values,
// on ragged shapes: row counts off the kernels' tiles, odd block counts,
// 1..9 (and more) activation rows, sub-ranges of rows, ldy > rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "kernels/pack.h"
#include "kernels/reference_ops.h"
#include "kernels/testing.h"
#include "gguf/quants.h"
#include "util/error.h"

namespace chorus::kernels {
namespace {

using testing::ActivationRows;
using testing::random_floats;
using testing::random_int4;
using testing::random_int8;

constexpr float kSentinel = 12345.0f;

class KernelsTest : public ::testing::TestWithParam<const KernelTable*> {
 protected:
  const KernelTable& table() const { return *GetParam(); }
};

TEST_P(KernelsTest, AttendMatchesReference) {
  std::mt19937 rng(41);
  constexpr int kCells = 45;  // runs of 8 cells and ragged tails
  for (const int head_dim : {8, 12, 16, 32, 64, 100, 128}) {
    for (const int g : {1, 2, 4}) {
      // Cells of 3 KV heads; the heads under test use the middle one.
      const int64_t stride = 3 * head_dim;
      const std::vector<float> keys = testing::random_floats(static_cast<size_t>(kCells * stride), rng, 1.0f);
      const std::vector<float> values = testing::random_floats(static_cast<size_t>(kCells * stride), rng, 1.0f);
      const std::vector<float> q = testing::random_floats(static_cast<size_t>(g * head_dim), rng, 1.0f);
      // A scattered committed run and a short in-step chain, as rows see them.
      std::vector<int32_t> a, b;
      for (int32_t c = 0; c < kCells - 3; ++c) {
        if (std::uniform_int_distribution<int>(0, 3)(rng) != 0) a.push_back(c);
      }
      b = {kCells - 2, kCells - 3, kCells - 1};
      for (const int nb : {0, 3}) {
        SCOPED_TRACE(::testing::Message() << "head_dim " << head_dim << " g " << g << " nb " << nb);
        std::vector<float> out(static_cast<size_t>(g * head_dim), -1.0f);
        std::vector<float> scores(static_cast<size_t>(g) * (a.size() + nb));
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        table().attend(keys.data() + head_dim, values.data() + head_dim, stride, a.data(), static_cast<int>(a.size()),
                       b.data(), nb, head_dim, g, scale, q.data(), out.data(), scores.data());
        std::vector<int32_t> all = a;
        all.insert(all.end(), b.begin(), b.begin() + nb);
        for (int h = 0; h < g; ++h) {
          std::vector<float> want(static_cast<size_t>(head_dim));
          ref::attend(keys.data() + head_dim, values.data() + head_dim, stride, all.data(),
                      static_cast<int>(all.size()), head_dim, scale, q.data() + h * head_dim, want.data());
          for (int d = 0; d < head_dim; ++d) {
            ASSERT_NEAR(out[h * head_dim + d], want[d], 2e-5f * (1.0f + std::fabs(want[d]))) << "h " << h << " d " << d;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, KernelsTest, ::testing::ValuesIn(available_kernel_tables()),
                         [](const ::testing::TestParamInfo<const KernelTable*>& info) {
                           return std::string(info.param->name);
                         });

TEST(KernelDispatch, GenericFirstBestLast) {
  const std::vector<const KernelTable*> tables = available_kernel_tables();
  ASSERT_FALSE(tables.empty());
  EXPECT_EQ(tables.front()->isa, Isa::kGeneric);
  for (const KernelTable* t : tables) {
    EXPECT_EQ(t->name, isa_name(t->isa));
    EXPECT_NE(t->quantize_activations, nullptr);
    EXPECT_NE(t->matmul_int4, nullptr);
    EXPECT_NE(t->matmul_int8, nullptr);
    EXPECT_NE(t->matmul_f32, nullptr);
    EXPECT_NE(t->rmsnorm, nullptr);
    EXPECT_NE(t->dot, nullptr);
    EXPECT_NE(t->axpy, nullptr);
    EXPECT_NE(t->softmax, nullptr);
    EXPECT_NE(t->silu_mul, nullptr);
    EXPECT_NE(t->attend, nullptr);
    EXPECT_NE(t->attend_f16, nullptr);
  }
  const char* isa = std::getenv("CHORUS_ISA");
  if (isa == nullptr || *isa == '\0') {
    EXPECT_EQ(&best_kernel_table(), tables.back());
  }
}

TEST_P(KernelsTest, QuantizeActivations) {
  std::mt19937 rng(1);
  const KernelTable& generic = *available_kernel_tables().front();
  for (const int64_t cols : {32, 96, 160, 2048}) {
    std::vector<float> x = random_floats(static_cast<size_t>(cols), rng);
    x[cols - 1] = 0.5f;                           // a tie case for some scales
    if (cols > 32) {
      std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block
      x[40] = 1e-30f;                               // tiny next to normal values
    }
    ActivationRows got(1, cols);
    ActivationRows want(1, cols);
    got.quantize(table(), x.data(), cols);
    want.quantize(generic, x.data(), cols);
    for (int64_t b = 0; b < cols / 32; ++b) {
      float amax = 0.0f;
      int sum = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      const float d = got[0].scale[b];
      EXPECT_EQ(d, amax / 127.0f);
      for (int j = 0; j < 32; ++j) {
        const int q = got[0].q[b * 32 + j];
        EXPECT_LE(std::abs(q), 127);
        EXPECT_LE(std::fabs(q * d - x[b * 32 + j]), 0.5f * d * (1 + 1e-5f)) << "block " << b << " j " << j;
        sum += q;
      }
      EXPECT_EQ(got[0].scaled_sum[b], d * static_cast<float>(sum));
    }
    // Every table quantizes bit for bit alike, so results do not depend on
    // the CPU beyond float summation order.
    EXPECT_TRUE(std::equal(got[0].q, got[0].q + cols, want[0].q));
    EXPECT_TRUE(std::equal(got[0].scale, got[0].scale + cols / 32, want[0].scale));
    EXPECT_TRUE(std::equal(got[0].scaled_sum, got[0].scaled_sum + cols / 32, want[0].scaled_sum));
  }
}

// Exact result of a W4A8 product from the quantized values, and the sum of
// the magnitudes of its products (what f32 rounding error scales with, as
// for any dot product: kernels apply scales to partial sums before the
// lanes are added, so cancellation between lanes is not exact).
struct Expected {
  double value = 0;
  double magnitude = 0;
};

Expected expected_int4(const Int4Matrix& w, int64_t r, const QuantizedActivations& x) {
  Expected e;
  uint8_t codes[32];
  for (int64_t b = 0; b < w.blocks(); ++b) {
    w.block_codes(r, b, codes);
    int64_t isum = 0;
    int64_t abs_sum = 0;
    int64_t abs_q = 0;
    for (int j = 0; j < 32; ++j) {
      isum += codes[j] * x.q[b * 32 + j];
      abs_sum += std::abs(codes[j] * x.q[b * 32 + j]);
      abs_q += std::abs(x.q[b * 32 + j]);
    }
    const double sw = w.scale(r, b);
    const double mw = w.min(r, b);
    e.value += sw * x.scale[b] * static_cast<double>(isum) + mw * x.scaled_sum[b];
    e.magnitude += std::fabs(sw * x.scale[b]) * static_cast<double>(abs_sum) +
                   std::fabs(mw * x.scale[b]) * static_cast<double>(abs_q);
  }
  return e;
}

Expected expected_int8(const Int8Matrix& w, int64_t r, const QuantizedActivations& x) {
  Expected e;
  for (int64_t b = 0; b < w.blocks(); ++b) {
    int64_t isum = 0;
    int64_t abs_sum = 0;
    for (int j = 0; j < 32; ++j) {
      isum += w.row_quants(r)[b * 32 + j] * x.q[b * 32 + j];
      abs_sum += std::abs(w.row_quants(r)[b * 32 + j] * x.q[b * 32 + j]);
    }
    const double s = static_cast<double>(w.scale(r, b)) * x.scale[b];
    e.value += s * static_cast<double>(isum);
    e.magnitude += std::fabs(s) * static_cast<double>(abs_sum);
  }
  return e;
}

// One matrix product case: rows [r0, r1) of n activation rows into y with
// row stride ldy; everything else in y must stay untouched.
struct Case {
  int64_t rows, cols;
  int n;
  int64_t r0, r1, ldy;
};

std::vector<Case> ragged_cases() {
  std::vector<Case> cases;
  const int64_t row_counts[] = {1, 3, 8, 13, 33};
  const int64_t col_counts[] = {32, 64, 96, 160, 288, 1056, 1120};  // 1, 2, 3, 5, 9, 33, 35 blocks
  int k = 0;
  for (const int64_t rows : row_counts) {
    for (const int64_t cols : col_counts) {
      for (int n = 1; n <= 9; ++n) {
        if (cols > 300 && n % 3 != 0 && n != 1) continue;  // keep the big shapes quick
        ++k;
        // Alternate full ranges with interior sub-ranges and padded ldy.
        const int64_t r0 = (k % 3 == 0 && rows > 2) ? 1 : 0;
        const int64_t r1 = (k % 4 == 0 && rows > r0 + 1) ? rows - 1 : rows;
        const int64_t ldy = rows + (k % 2) * 5;
        cases.push_back({rows, cols, n, r0, r1, ldy});
      }
    }
  }
  // Many activation rows: the batched path, with a tail past its row block.
  cases.push_back({19, 288, 70, 0, 19, 19});
  cases.push_back({9, 1056, 13, 2, 9, 11});
  cases.push_back({16, 64, 64, 0, 16, 16});
  // Group pairs with partial lanes at both ends and an odd group left over.
  cases.push_back({44, 160, 8, 5, 37, 44});
  cases.push_back({40, 96, 3, 0, 40, 41});
  // More blocks than one unpacked run of the batched path (partial sums
  // added across runs), and a slice ending inside a row group.
  cases.push_back({21, 32 * 131, 9, 3, 13, 21});
  return cases;
}

TEST_P(KernelsTest, MatmulInt4MatchesExactRecomputation) {
  std::mt19937 rng(2);
  for (const auto& [format, symmetric] : {std::pair{ScaleFormat::kF16, false}, std::pair{ScaleFormat::kF32, false},
                                          std::pair{ScaleFormat::kF16, true}}) {
    for (const Case& c : ragged_cases()) {
      SCOPED_TRACE(::testing::Message() << "rows " << c.rows << " cols " << c.cols << " n " << c.n << " r0 " << c.r0
                                        << " r1 " << c.r1 << " ldy " << c.ldy << " f32 scales "
                                        << (format == ScaleFormat::kF32) << " symmetric " << symmetric);
      const Int4Matrix w = random_int4(c.rows, c.cols, format, rng, symmetric);
      const std::vector<float> x = random_floats(static_cast<size_t>(c.n * c.cols), rng);
      ActivationRows xq(c.n, c.cols);
      xq.quantize(table(), x.data(), c.cols);
      std::vector<float> y(static_cast<size_t>(c.n * c.ldy + 3), kSentinel);
      table().matmul_int4(w, xq.rows(), c.n, y.data(), c.ldy, c.r0, c.r1);
      for (int t = 0; t < c.n; ++t) {
        for (int64_t r = 0; r < c.ldy; ++r) {
          const float got = y[t * c.ldy + r];
          if (r < c.r0 || r >= c.r1) {
            ASSERT_EQ(got, kSentinel) << "wrote outside [r0, r1): t " << t << " r " << r;
            continue;
          }
          const Expected e = expected_int4(w, r, xq[t]);
          ASSERT_NEAR(got, e.value, 1e-5 * e.magnitude + 1e-30) << "t " << t << " r " << r;
        }
      }
      ASSERT_EQ(y[c.n * c.ldy], kSentinel);
    }
  }
}

// The quantized product is within the activations' rounding error of the
// f32 product of the dequantized weights with the original activations.
TEST_P(KernelsTest, MatmulInt4CloseToFloatProduct) {
  std::mt19937 rng(3);
  const int64_t rows = 37;
  const int64_t cols = 2048;
  const int n = 7;
  // A real source: Q4_0 weights packed losslessly.
  const std::vector<float> wf = random_floats(static_cast<size_t>(rows * cols), rng, 0.05f);
  std::vector<uint8_t> q4(gguf::row_bytes(gguf::TensorType::kQ4_0, cols) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    gguf::quantize_row(gguf::TensorType::kQ4_0, wf.data() + r * cols,
                       q4.data() + r * gguf::row_bytes(gguf::TensorType::kQ4_0, cols), cols);
  }
  const Int4Matrix w = pack_int4(gguf::TensorType::kQ4_0, q4.data(), rows, cols);
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), rng);
  ActivationRows xq(n, cols);
  xq.quantize(table(), x.data(), cols);
  std::vector<float> y(static_cast<size_t>(n * rows));
  table().matmul_int4(w, xq.rows(), n, y.data(), rows, 0, rows);
  std::vector<float> wrow(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(w, r, wrow.data());
    for (int t = 0; t < n; ++t) {
      double want = 0;
      double bound = 0;
      for (int64_t j = 0; j < cols; ++j) {
        want += static_cast<double>(wrow[j]) * x[t * cols + j];
        bound += std::fabs(wrow[j]) * 0.5 * xq[t].scale[j / 32];
      }
      EXPECT_NEAR(y[t * rows + r], want, bound * 1.001 + 1e-4) << "t " << t << " r " << r;
      // And in practice far inside that worst case (errors cancel).
      EXPECT_NEAR(y[t * rows + r], want, bound * 0.2 + 1e-4) << "t " << t << " r " << r;
    }
  }
}

TEST_P(KernelsTest, MatmulInt8MatchesExactRecomputation) {
  std::mt19937 rng(4);
  for (const Case& c : ragged_cases()) {
    SCOPED_TRACE(::testing::Message() << "rows " << c.rows << " cols " << c.cols << " n " << c.n << " r0 " << c.r0
                                      << " r1 " << c.r1 << " ldy " << c.ldy);
    const Int8Matrix w = random_int8(c.rows, c.cols, rng);
    const std::vector<float> x = random_floats(static_cast<size_t>(c.n * c.cols), rng);
    ActivationRows xq(c.n, c.cols);
    xq.quantize(table(), x.data(), c.cols);
    std::vector<float> y(static_cast<size_t>(c.n * c.ldy + 3), kSentinel);
    table().matmul_int8(w, xq.rows(), c.n, y.data(), c.ldy, c.r0, c.r1);
    for (int t = 0; t < c.n; ++t) {
      for (int64_t r = 0; r < c.ldy; ++r) {
        const float got = y[t * c.ldy + r];
        if (r < c.r0 || r >= c.r1) {
          ASSERT_EQ(got, kSentinel) << "wrote outside [r0, r1): t " << t << " r " << r;
          continue;
        }
        const Expected e = expected_int8(w, r, xq[t]);
        ASSERT_NEAR(got, e.value, 1e-5 * e.magnitude + 1e-30) << "t " << t << " r " << r;
      }
    }
    ASSERT_EQ(y[c.n * c.ldy], kSentinel);
  }
}

TEST_P(KernelsTest, MatmulInt8CloseToFloatProduct) {
  std::mt19937 rng(5);
  const int64_t rows = 21;
  const int64_t cols = 512;
  const int n = 3;
  const std::vector<float> wf = random_floats(static_cast<size_t>(rows * cols), rng, 0.05f);
  const Int8Matrix w =
      pack_int8(gguf::TensorType::kF32, reinterpret_cast<const uint8_t*>(wf.data()), rows, cols);
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), rng);
  ActivationRows xq(n, cols);
  xq.quantize(table(), x.data(), cols);
  std::vector<float> y(static_cast<size_t>(n * rows));
  table().matmul_int8(w, xq.rows(), n, y.data(), rows, 0, rows);
  std::vector<float> wrow(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(w, r, wrow.data());
    for (int t = 0; t < n; ++t) {
      double want = 0;
      double bound = 0;
      for (int64_t j = 0; j < cols; ++j) {
        want += static_cast<double>(wrow[j]) * x[t * cols + j];
        bound += std::fabs(wrow[j]) * 0.5 * xq[t].scale[j / 32];
      }
      EXPECT_NEAR(y[t * rows + r], want, bound * 1.001 + 1e-4) << "t " << t << " r " << r;
    }
  }
}

TEST_P(KernelsTest, MatmulF32) {
  std::mt19937 rng(6);
  for (const int64_t cols : {1, 5, 8, 13, 64, 100, 2048}) {
    for (const int64_t rows : {1, 4, 7, 17}) {
      for (const int n : {1, 2, 3, 4, 5, 9}) {
        SCOPED_TRACE(::testing::Message() << "rows " << rows << " cols " << cols << " n " << n);
        const int64_t ldx = cols + 3;
        const int64_t ldy = rows + 2;
        const int64_t r0 = rows > 2 ? 1 : 0;
        const std::vector<float> w = random_floats(static_cast<size_t>(rows * cols), rng);
        const std::vector<float> x = random_floats(static_cast<size_t>(n * ldx), rng);
        std::vector<float> y(static_cast<size_t>(n * ldy), kSentinel);
        table().matmul_f32(w.data(), cols, x.data(), ldx, n, y.data(), ldy, r0, rows);
        for (int t = 0; t < n; ++t) {
          for (int64_t r = 0; r < ldy; ++r) {
            if (r < r0 || r >= rows) {
              ASSERT_EQ(y[t * ldy + r], kSentinel);
              continue;
            }
            double want = 0;
            double mag = 0;
            for (int64_t j = 0; j < cols; ++j) {
              want += static_cast<double>(w[r * cols + j]) * x[t * ldx + j];
              mag += std::fabs(static_cast<double>(w[r * cols + j]) * x[t * ldx + j]);
            }
            ASSERT_NEAR(y[t * ldy + r], want, 1e-5 * mag + 1e-30) << "t " << t << " r " << r;
          }
        }
      }
    }
  }
}

const int kVectorSizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 2048, 5632};

TEST_P(KernelsTest, Dot) {
  std::mt19937 rng(7);
  for (const int n : kVectorSizes) {
    const std::vector<float> a = random_floats(n, rng);
    const std::vector<float> b = random_floats(n, rng);
    double mag = 0;
    for (int i = 0; i < n; ++i) mag += std::fabs(a[i] * b[i]);
    EXPECT_NEAR(table().dot(a.data(), b.data(), n), ref::dot(a.data(), b.data(), n), 2e-6 * mag) << "n " << n;
  }
}

TEST_P(KernelsTest, Rmsnorm) {
  std::mt19937 rng(8);
  for (const int n : kVectorSizes) {
    const std::vector<float> x = random_floats(n, rng, 3.0f);
    const std::vector<float> w = random_floats(n, rng);
    std::vector<float> got(n);
    std::vector<float> want(n);
    table().rmsnorm(got.data(), x.data(), w.data(), n, 1e-5f);
    ref::rmsnorm(want.data(), x.data(), w.data(), n, 1e-5f);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(got[i], want[i], 1e-5f * std::fabs(want[i]) + 1e-30f) << "n " << n;
    // In place, as the reference allows.
    std::vector<float> inplace = x;
    table().rmsnorm(inplace.data(), inplace.data(), w.data(), n, 1e-5f);
    EXPECT_EQ(inplace, got);
  }
  float zeros[3] = {0, 0, 0};
  const float ones[3] = {1, 1, 1};
  table().rmsnorm(zeros, zeros, ones, 3, 1e-5f);
  EXPECT_EQ(zeros[0], 0.0f);
}

TEST_P(KernelsTest, Axpy) {
  std::mt19937 rng(9);
  for (const int n : kVectorSizes) {
    const std::vector<float> x = random_floats(n, rng);
    std::vector<float> y = random_floats(n, rng);
    std::vector<float> want = y;
    table().axpy(0.375f, x.data(), y.data(), n);
    for (int i = 0; i < n; ++i) {
      want[i] += 0.375f * x[i];
      EXPECT_NEAR(y[i], want[i], 1e-6f * (std::fabs(want[i]) + std::fabs(x[i]))) << "n " << n;
    }
  }
}

TEST_P(KernelsTest, Softmax) {
  std::mt19937 rng(10);
  for (const int n : kVectorSizes) {
    for (const float sigma : {1.0f, 30.0f}) {
      std::vector<float> got = random_floats(n, rng, sigma);
      if (n > 4) got[n / 2] = -std::numeric_limits<float>::infinity();  // a masked position
      std::vector<float> want = got;
      table().softmax(got.data(), n);
      ref::softmax(want.data(), n);
      double sum = 0;
      for (int i = 0; i < n; ++i) {
        EXPECT_NEAR(got[i], want[i], 2e-6f * want[i] + 1e-37f) << "n " << n << " i " << i;
        sum += got[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
      if (n > 4) {
        EXPECT_EQ(got[n / 2], 0.0f);
      }
    }
  }
  float big[3] = {1000, 1000, -1000};
  table().softmax(big, 3);
  EXPECT_FLOAT_EQ(big[0], 0.5f);
  EXPECT_FLOAT_EQ(big[1], 0.5f);
  EXPECT_EQ(big[2], 0.0f);
}

TEST_P(KernelsTest, SiluMul) {
  std::mt19937 rng(11);
  for (const int n : kVectorSizes) {
    std::vector<float> gate = random_floats(n, rng, 4.0f);
    if (n > 3) {
      gate[0] = -100.0f;  // exp(100) overflows: silu is -0
      gate[1] = 100.0f;
      gate[2] = 0.0f;
    }
    const std::vector<float> up = random_floats(n, rng);
    std::vector<float> want = gate;
    ref::silu(want.data(), n);
    for (int i = 0; i < n; ++i) want[i] *= up[i];
    table().silu_mul(gate.data(), up.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(gate[i], want[i], 2e-6f * std::fabs(want[i]) + 1e-30f) << "n " << n;
  }
}

// Shrink then expand over a group of scattered rows equals the reference
// y += s B (A x) row by row, for ranks and widths with ragged tails and
// column ranges that start and end off the kernels' tiles.
TEST_P(KernelsTest, LoraShrinkExpand) {
  const KernelTable& k = *GetParam();
  std::mt19937 rng(7);
  struct Case {
    int rank;
    int64_t in, out, o0, o1;
    std::vector<int32_t> rows;
  };
  const Case cases[] = {{1, 8, 32, 0, 32, {0}},          {4, 37, 45, 3, 41, {2, 0}},
                        {8, 64, 96, 32, 96, {1, 3, 4}},  {32, 172, 200, 16, 176, {0, 1, 2, 3, 4}},
                        {70, 64, 64, 0, 64, {4, 2}},     {3, 5, 7, 0, 7, {0, 1, 2, 3, 4, 5}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "rank " << c.rank << " in " << c.in << " out " << c.out);
    const int n_rows = 6;
    std::vector<uint16_t> a(static_cast<size_t>(c.rank * c.in)), bt(static_cast<size_t>(c.rank * c.out));
    for (uint16_t& v : a) v = f32_to_f16(random_floats(1, rng)[0]);
    for (uint16_t& v : bt) v = f32_to_f16(random_floats(1, rng)[0]);
    const int64_t ldx = c.in + 3, ldy = c.out + 5;
    const std::vector<float> x = random_floats(static_cast<size_t>(n_rows * ldx), rng);
    std::vector<float> y = random_floats(static_cast<size_t>(n_rows * ldy), rng);
    std::vector<float> want = y;
    const float scale = 0.75f;
    for (int32_t r : c.rows) {
      std::vector<float> full(want.begin() + r * ldy, want.begin() + r * ldy + c.out);
      ref::lora_apply(a.data(), bt.data(), c.rank, c.in, c.out, scale, x.data() + r * ldx,
                      full.data());
      std::copy(full.begin() + c.o0, full.begin() + c.o1, want.begin() + r * ldy + c.o0);
    }
    const int n = static_cast<int>(c.rows.size());
    const int64_t ldt = c.rank + 1;
    std::vector<float> t(static_cast<size_t>(n * ldt));
    k.lora_shrink(a.data(), c.rank, c.in, x.data(), ldx, c.rows.data(), n, scale, t.data(), ldt);
    k.lora_expand(bt.data(), c.rank, c.out, t.data(), ldt, c.rows.data(), n, y.data(), ldy, c.o0,
                  c.o1);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], want[i], 1e-4f * (1.0f + std::abs(want[i])) * std::sqrt(float(c.in)))
          << "element " << i;
    }
  }
}

}  // namespace
}  // namespace chorus::kernels
