// Edge inputs for every kernel table this CPU can run (kernels_test.cc covers
// the ragged shapes): activation quantization must stay bit-identical to the
// generic table on non-finite, tiny, huge and tie values (the SIMD tables
// each emulate std::max's NaN handling, the clamp and round-to-nearest-even
// with their own instructions), and the W4A8 product must write only rows
// [r0, r1) when that range starts and ends inside one row group.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "kernels/testing.h"

namespace chorus::kernels {
namespace {

using testing::ActivationRows;

// Equal bits, or both NaN (a NaN's payload may differ between instructions).
bool same_float(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, sizeof(a)) == 0;
}

std::vector<float> edge_blocks() {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float big = std::numeric_limits<float>::max();
  const float tiny = std::numeric_limits<float>::denorm_min();
  std::vector<float> x;
  auto block = [&](auto f) {
    for (int j = 0; j < 32; ++j) x.push_back(f(j));
  };
  block([&](int j) { return j == 5 ? nan : 0.25f * static_cast<float>(j - 16); });  // NaN among normals
  block([&](int j) { return j == 7 ? inf : static_cast<float>(j); });               // +inf among normals
  block([&](int j) { return j % 3 == 0 ? -inf : -0.0f; });                          // -inf and -0
  block([&](int j) { return nan; });                                                // all NaN
  block([&](int j) { return j % 2 ? big : -big; });                                 // largest finite
  block([&](int j) { return static_cast<float>(j) * tiny; });                       // subnormals
  block([&](int j) { return j == 0 ? 1e-38f : 0.0f; });                             // tiny scale, zeros
  // amax 127 makes the scale 1: x + 0.5 are exact ties, rounded to even.
  block([&](int j) { return j == 0 ? 127.0f : static_cast<float>(j - 16) + 0.5f; });
  block([&](int j) { return 0.0f; });  // all zero
  return x;
}

TEST(KernelsEdge, QuantizeActivationsBitIdenticalOnEdgeValues) {
  const std::vector<float> x = edge_blocks();
  const auto cols = static_cast<int64_t>(x.size());
  const KernelTable& generic = *available_kernel_tables().front();
  ActivationRows want(1, cols);
  want.quantize(generic, x.data(), cols);
  for (const KernelTable* table : available_kernel_tables()) {
    SCOPED_TRACE(std::string(table->name));
    ActivationRows got(1, cols);
    got.quantize(*table, x.data(), cols);
    for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(got[0].q[i], want[0].q[i]) << "block " << i / 32 << " j " << i % 32;
    for (int64_t b = 0; b < cols / 32; ++b) {
      EXPECT_TRUE(same_float(got[0].scale[b], want[0].scale[b])) << "block " << b;
      EXPECT_TRUE(same_float(got[0].scaled_sum[b], want[0].scaled_sum[b])) << "block " << b;
    }
  }
  // The ties (block 7): q = x + 0.5 rounded half to even.
  for (int j = 1; j < 32; ++j) {
    EXPECT_EQ(want[0].q[7 * 32 + j], static_cast<int>(std::nearbyint(static_cast<float>(j - 16) + 0.5f)));
  }
}

// Rows [r0, r1) strictly inside one group of kRowGroup, including the last,
// partial group, for 1..6 activation rows: everything else stays untouched.
TEST(KernelsEdge, MatmulInt4RangeInsideOneGroup) {
  std::mt19937 rng(21);
  constexpr float kSentinel = 12345.0f;
  const int64_t rows = 13;  // groups of 8 and 5 rows
  const int64_t cols = 96;
  const Int4Matrix w = testing::random_int4(rows, cols, ScaleFormat::kF16, rng);
  for (const KernelTable* table : available_kernel_tables()) {
    for (const auto& [r0, r1] : {std::pair<int64_t, int64_t>{2, 5}, {9, 12}, {8, 9}, {12, 13}, {7, 9}}) {
      for (int n = 1; n <= 6; ++n) {
        SCOPED_TRACE(::testing::Message() << table->name << " r0 " << r0 << " r1 " << r1 << " n " << n);
        const std::vector<float> x = testing::random_floats(static_cast<size_t>(n * cols), rng);
        ActivationRows xq(n, cols);
        xq.quantize(*table, x.data(), cols);
        const int64_t ldy = rows + 3;
        std::vector<float> y(static_cast<size_t>(n * ldy), kSentinel);
        table->matmul_int4(w, xq.rows(), n, y.data(), ldy, r0, r1);
        uint8_t codes[32];
        for (int t = 0; t < n; ++t) {
          for (int64_t r = 0; r < ldy; ++r) {
            const float got = y[t * ldy + r];
            if (r < r0 || r >= r1) {
              ASSERT_EQ(got, kSentinel) << "wrote outside [r0, r1): t " << t << " r " << r;
              continue;
            }
            double want = 0, magnitude = 0;
            for (int64_t b = 0; b < w.blocks(); ++b) {
              w.block_codes(r, b, codes);
              int64_t isum = 0, abs_sum = 0, abs_q = 0;
              for (int j = 0; j < 32; ++j) {
                isum += codes[j] * xq[t].q[b * 32 + j];
                abs_sum += std::abs(codes[j] * xq[t].q[b * 32 + j]);
                abs_q += std::abs(xq[t].q[b * 32 + j]);
              }
              const double sw = w.scale(r, b), mw = w.min(r, b), sa = xq[t].scale[b];
              want += sw * sa * static_cast<double>(isum) + mw * xq[t].scaled_sum[b];
              magnitude += std::fabs(sw * sa) * static_cast<double>(abs_sum) + std::fabs(mw * sa) * static_cast<double>(abs_q);
            }
            ASSERT_NEAR(got, want, 1e-5 * magnitude + 1e-30) << "t " << t << " r " << r;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace chorus::kernels
