// Batch invariance, bit for bit, for every kernel table this CPU runs: a
// row's output is the same bits whatever else shares the call (the other
// rows, their number, the row's position among them) and whatever slice of
// the output a call computes (a thread's share, for any thread count). This
// is what makes DS2D lossless, each of k streams equal to its run alone and
// a row with an adapter in a mixed step equal to that row alone, so every
// comparison here is on the bits, never within a tolerance.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/kernels.h"
#include "kernels/testing.h"
#include "util/half.h"

namespace chorus::kernels {
namespace {

using testing::ActivationRows;
using testing::random_floats;

constexpr int kPool = 33;  // distinct activation rows; calls take 1..kPool of them

// Fails at the first element whose bits differ, naming it (`what` is a
// string or a ::testing::Message).
template <typename What>
void expect_same_bits(const float* got, const float* want, int64_t n, const What& what) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t a, b;
    std::memcpy(&a, got + i, 4);
    std::memcpy(&b, want + i, 4);
    if (a != b) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << " (0x" << std::hex << a << "), alone "
                    << want[i] << " (0x" << b << ")";
      return;
    }
  }
}

// Output slices as threads get them: `threads` equal parts in multiples of
// `grain` (the engine's split), or, with grain 0, cuts at random points.
std::vector<std::pair<int64_t, int64_t>> slices(int64_t n, int threads, int64_t grain, std::mt19937& rng) {
  std::vector<int64_t> cuts = {0, n};
  if (grain > 0) {
    const int64_t units = (n + grain - 1) / grain;
    for (int t = 1; t < threads; ++t) cuts.push_back(std::min(n, units * t / threads * grain));
  } else {
    for (int t = 1; t < threads; ++t) cuts.push_back(std::uniform_int_distribution<int64_t>(0, n)(rng));
  }
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::pair<int64_t, int64_t>> out;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) out.emplace_back(cuts[i], cuts[i + 1]);
  return out;
}

// The row sets every product is called with: for n = 1..kPool a random
// choice of n pool rows in random order, then every rotation of all of
// them (so each row sits at every position of a full call once).
std::vector<std::vector<int>> row_sets(std::mt19937& rng) {
  std::vector<std::vector<int>> sets;
  std::vector<int> all(kPool);
  std::iota(all.begin(), all.end(), 0);
  for (int n = 1; n <= kPool; ++n) {
    std::shuffle(all.begin(), all.end(), rng);
    sets.emplace_back(all.begin(), all.begin() + n);
  }
  std::iota(all.begin(), all.end(), 0);
  for (int shift = 0; shift < kPool; ++shift) {
    std::rotate(all.begin(), all.begin() + 1, all.end());
    sets.push_back(all);
  }
  return sets;
}

class KernelInvarianceTest : public ::testing::TestWithParam<const KernelTable*> {
 protected:
  const KernelTable& table() const { return *GetParam(); }

  // Runs `product(rows, y, ldy, r0, r1)` (one call per output slice) for
  // every row set and thread split, and checks each row of y against the
  // product of that row alone over all outputs in one call. `init(rows, y,
  // ldy)` fills y before the slices run (kernels that add into y).
  template <typename Product, typename Init>
  void check_rows(int64_t outputs, Product product, Init init) {
    std::mt19937 rng(7);
    const int64_t ldy = outputs + 3;  // ldy > outputs, as in the engine's sub-products
    std::vector<float> alone(static_cast<size_t>(kPool * outputs));
    for (int r = 0; r < kPool; ++r) {
      std::vector<float> y(static_cast<size_t>(ldy), -1.0f);
      init(std::vector<int>{r}, y.data(), ldy);
      product(std::vector<int>{r}, y.data(), ldy, 0, outputs);
      std::copy(y.begin(), y.begin() + outputs, alone.begin() + r * outputs);
    }
    int calls = 0;
    for (const std::vector<int>& rows : row_sets(rng)) {
      const int n = static_cast<int>(rows.size());
      for (int threads = 1; threads <= 4; ++threads) {
        for (const int64_t grain : {int64_t{16}, int64_t{0}}) {
          std::vector<float> y(static_cast<size_t>(n * ldy), -1.0f);
          init(rows, y.data(), ldy);
          for (const auto& [r0, r1] : slices(outputs, threads, grain, rng)) {
            if (r0 < r1) product(rows, y.data(), ldy, r0, r1);
          }
          ++calls;
          for (int t = 0; t < n; ++t) {
            expect_same_bits(y.data() + t * ldy, alone.data() + rows[t] * outputs, outputs,
                             ::testing::Message() << "pool row " << rows[t] << " at position " << t << " of " << n
                                                  << ", " << threads << " slices (grain " << grain << ")");
            if (HasFailure()) return;
          }
        }
      }
    }
    EXPECT_EQ(calls, 2 * kPool * 4 * 2);
  }
  template <typename Product>
  void check_rows(int64_t outputs, Product product) {
    check_rows(outputs, product, [](const std::vector<int>&, float*, int64_t) {});
  }
};

TEST_P(KernelInvarianceTest, Int4Product) {
  std::mt19937 rng(1);
  const int64_t rows = 61, cols = 160;  // a ragged last group of 8, an odd number of blocks
  const std::vector<float> x = random_floats(static_cast<size_t>(kPool * cols), rng);
  ActivationRows xq(kPool, cols);
  xq.quantize(table(), x.data(), cols);
  for (const ScaleFormat format : {ScaleFormat::kF16, ScaleFormat::kF32}) {
    for (const bool symmetric : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "f16 scales " << (format == ScaleFormat::kF16) << " symmetric "
                                        << symmetric);
      const Int4Matrix w = testing::random_int4(rows, cols, format, rng, symmetric);
      check_rows(rows, [&](const std::vector<int>& set, float* y, int64_t ldy, int64_t r0, int64_t r1) {
        std::vector<QuantizedActivations> views;
        for (int r : set) views.push_back(xq[r]);
        table().matmul_int4(w, views.data(), static_cast<int>(views.size()), y, ldy, r0, r1);
      });
    }
  }
}

// Prefill-sized calls: more rows than one pass over the matrix takes.
TEST_P(KernelInvarianceTest, Int4ProductOfManyRows) {
  std::mt19937 rng(2);
  const int64_t rows = 24, cols = 64;
  const int n = 150;
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), rng);
  ActivationRows xq(n, cols);
  xq.quantize(table(), x.data(), cols);
  const Int4Matrix w = testing::random_int4(rows, cols, ScaleFormat::kF16, rng);
  std::vector<float> all(static_cast<size_t>(n * rows));
  table().matmul_int4(w, xq.rows(), n, all.data(), rows, 0, rows);
  for (int t = 0; t < n; ++t) {
    std::vector<float> one(static_cast<size_t>(rows));
    table().matmul_int4(w, &xq[t], 1, one.data(), rows, 0, rows);
    expect_same_bits(all.data() + t * rows, one.data(), rows, "row " + std::to_string(t) + " of 150");
    if (HasFailure()) return;
  }
}

TEST_P(KernelInvarianceTest, Int8Product) {
  std::mt19937 rng(3);
  const int64_t rows = 37, cols = 96 + 32 * 8;  // a whole run of 8 blocks and a partial one
  const std::vector<float> x = random_floats(static_cast<size_t>(kPool * cols), rng);
  ActivationRows xq(kPool, cols);
  xq.quantize(table(), x.data(), cols);
  const Int8Matrix w = testing::random_int8(rows, cols, rng);
  check_rows(rows, [&](const std::vector<int>& set, float* y, int64_t ldy, int64_t r0, int64_t r1) {
    std::vector<QuantizedActivations> views;
    for (int r : set) views.push_back(xq[r]);
    table().matmul_int8(w, views.data(), static_cast<int>(views.size()), y, ldy, r0, r1);
  });
}

TEST_P(KernelInvarianceTest, F32Product) {
  std::mt19937 rng(4);
  const int64_t rows = 45, cols = 172;  // stories260K's FFN width: not a multiple of 8
  const std::vector<float> x = random_floats(static_cast<size_t>(kPool * cols), rng);
  const std::vector<float> w = random_floats(static_cast<size_t>(rows * cols), rng);
  check_rows(rows, [&](const std::vector<int>& set, float* y, int64_t ldy, int64_t r0, int64_t r1) {
    std::vector<float> gathered;
    for (int r : set) gathered.insert(gathered.end(), x.begin() + r * cols, x.begin() + (r + 1) * cols);
    table().matmul_f32(w.data(), cols, gathered.data(), cols, static_cast<int>(set.size()), y, ldy, r0, r1);
  });
}

// The shrink takes its rows by index (an adapter's rows of the step, in any
// order) and is split by rank across threads; the expand adds into y rows
// by index and is split by output columns.
TEST_P(KernelInvarianceTest, LoraShrinkAndExpand) {
  std::mt19937 rng(5);
  const int rank = 13;
  const int64_t in = 100, out = 83;  // ragged against every vector width and tile
  std::vector<uint16_t> a(static_cast<size_t>(rank * in)), bt(static_cast<size_t>(rank * out));
  for (uint16_t& v : a) v = f32_to_f16(std::normal_distribution<float>(0.0f, 0.3f)(rng));
  for (uint16_t& v : bt) v = f32_to_f16(std::normal_distribution<float>(0.0f, 0.3f)(rng));
  const std::vector<float> x = random_floats(static_cast<size_t>(kPool * in), rng);
  const std::vector<float> y0 = random_floats(static_cast<size_t>(kPool * out), rng);
  const float scale = 0.37f;
  // Shrink: outputs are the ranks; a slice [j0, j1) is one thread's piece.
  check_rows(rank, [&](const std::vector<int>& set, float* t, int64_t ldt, int64_t j0, int64_t j1) {
    table().lora_shrink(a.data() + j0 * in, static_cast<int>(j1 - j0), in, x.data(), in, set.data(),
                        static_cast<int>(set.size()), scale, t + j0, ldt);
  });
  // Expand: y starts as the row's base product; t as the shrink left it.
  std::vector<float> t_pool(static_cast<size_t>(kPool * rank));
  std::vector<int> all(kPool);
  std::iota(all.begin(), all.end(), 0);
  table().lora_shrink(a.data(), rank, in, x.data(), in, all.data(), kPool, scale, t_pool.data(), rank);
  // Each call's rows are the first n of the step here (rows[g] = g); the
  // engine's groups index scattered rows, which the shrink above covers.
  auto gather_t = [&](const std::vector<int>& set) {
    std::vector<float> t;
    for (int r : set) t.insert(t.end(), t_pool.begin() + r * rank, t_pool.begin() + (r + 1) * rank);
    return t;
  };
  check_rows(
      out,
      [&](const std::vector<int>& set, float* y, int64_t ldy, int64_t o0, int64_t o1) {
        const int n = static_cast<int>(set.size());
        const std::vector<float> t = gather_t(set);
        std::vector<int32_t> dst(static_cast<size_t>(n));
        std::iota(dst.begin(), dst.end(), 0);
        table().lora_expand(bt.data(), rank, out, t.data(), rank, dst.data(), n, y, ldy, o0, o1);
      },
      [&](const std::vector<int>& set, float* y, int64_t ldy) {  // y as the base product left it
        for (size_t g = 0; g < set.size(); ++g) {
          std::copy(y0.begin() + set[g] * out, y0.begin() + (set[g] + 1) * out, y + g * ldy);
        }
      });
}

// A row sees its cells as two runs (committed, then in-step ancestors):
// wherever the split falls, the result is that of one run of all cells.
TEST_P(KernelInvarianceTest, AttendDoesNotDependOnTheSplitOfItsCells) {
  std::mt19937 rng(6);
  constexpr int kCells = 45;
  for (const int head_dim : {8, 12, 16, 32, 64, 100, 128}) {
    for (const int g : {1, 4}) {
      const int64_t stride = 2 * head_dim;
      const std::vector<float> keys = random_floats(static_cast<size_t>(kCells * stride), rng);
      const std::vector<float> values = random_floats(static_cast<size_t>(kCells * stride), rng);
      const std::vector<float> q = random_floats(static_cast<size_t>(g * head_dim), rng);
      std::vector<int32_t> cells(kCells);
      std::iota(cells.begin(), cells.end(), 0);
      std::shuffle(cells.begin(), cells.end(), rng);  // cells of a stream need not be in slot order
      const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
      for (int n = 1; n <= kCells; n += 11) {
        std::vector<float> whole(static_cast<size_t>(g * head_dim)), scores(static_cast<size_t>(g * n));
        table().attend(keys.data() + head_dim, values.data() + head_dim, stride, cells.data(), n, nullptr, 0,
                       head_dim, g, scale, q.data(), whole.data(), scores.data());
        for (int na = 0; na < n; ++na) {
          std::vector<float> split(static_cast<size_t>(g * head_dim), -1.0f);
          table().attend(keys.data() + head_dim, values.data() + head_dim, stride, cells.data(), na,
                         cells.data() + na, n - na, head_dim, g, scale, q.data(), split.data(), scores.data());
          expect_same_bits(split.data(), whole.data(), g * head_dim,
                           ::testing::Message() << "head_dim " << head_dim << " g " << g << " cells " << n
                                                << " committed " << na);
          if (HasFailure()) return;
        }
      }
    }
  }
}

// An f16 cache gives the bits of an f32 cache holding the same (rounded)
// values, at every split of a row's cells into committed and in-step runs.
TEST_P(KernelInvarianceTest, AttendOverF16GivesTheBitsOfF32WithTheSameValues) {
  std::mt19937 rng(16);
  constexpr int kCells = 45;
  for (const int head_dim : {8, 12, 16, 32, 64, 100, 128}) {
    for (const int g : {1, 4}) {
      const int64_t stride = 2 * head_dim;
      const size_t size = static_cast<size_t>(kCells * stride);
      std::vector<float> keys = random_floats(size, rng), values = random_floats(size, rng);
      std::vector<uint16_t> keys16(size), values16(size);
      for (size_t i = 0; i < size; ++i) {
        keys16[i] = f32_to_f16(keys[i]);
        values16[i] = f32_to_f16(values[i]);
        keys[i] = f16_to_f32(keys16[i]);  // the f32 cache holds the rounded values
        values[i] = f16_to_f32(values16[i]);
      }
      const std::vector<float> q = random_floats(static_cast<size_t>(g * head_dim), rng);
      std::vector<int32_t> cells(kCells);
      std::iota(cells.begin(), cells.end(), 0);
      std::shuffle(cells.begin(), cells.end(), rng);
      const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
      for (int n = 1; n <= kCells; n += 11) {
        std::vector<float> want(static_cast<size_t>(g * head_dim)), scores(static_cast<size_t>(g * n + head_dim));
        table().attend(keys.data() + head_dim, values.data() + head_dim, stride, cells.data(), n, nullptr, 0,
                       head_dim, g, scale, q.data(), want.data(), scores.data());
        for (int na = 0; na <= n; ++na) {
          std::vector<float> got(static_cast<size_t>(g * head_dim), -1.0f);
          table().attend_f16(keys16.data() + head_dim, values16.data() + head_dim, stride, cells.data(), na,
                             cells.data() + na, n - na, head_dim, g, scale, q.data(), got.data(), scores.data());
          expect_same_bits(got.data(), want.data(), g * head_dim,
                           ::testing::Message() << "f16 cache, head_dim " << head_dim << " g " << g << " cells "
                                                << n << " committed " << na);
          if (HasFailure()) return;
        }
      }
    }
  }
}

// The row-wise ops read and write one row: the same input anywhere in
// memory (other rows around it, any alignment) gives the same bits.
TEST_P(KernelInvarianceTest, RowOpsDoNotDependOnWhereTheRowLives) {
  std::mt19937 rng(8);
  const int64_t n = 172;
  const std::vector<float> src = random_floats(static_cast<size_t>(n), rng);
  const std::vector<float> up = random_floats(static_cast<size_t>(n), rng);
  const std::vector<float> weight = random_floats(static_cast<size_t>(n), rng);
  std::vector<float> want_norm(n), want_soft(src), want_silu(src);
  table().rmsnorm(want_norm.data(), src.data(), weight.data(), n, 1e-5f);
  table().softmax(want_soft.data(), n);
  table().silu_mul(want_silu.data(), up.data(), n);
  ActivationRows want_q(1, 160);
  table().quantize_activations(src.data(), 160, want_q[0]);
  for (int offset = 1; offset < 9; ++offset) {
    std::vector<float> buf = random_floats(static_cast<size_t>(3 * n), rng);
    float* row = buf.data() + offset;
    std::copy(src.begin(), src.end(), row);
    std::vector<float> norm(n);
    table().rmsnorm(norm.data(), row, weight.data(), n, 1e-5f);
    expect_same_bits(norm.data(), want_norm.data(), n, "rmsnorm at offset " + std::to_string(offset));
    ActivationRows got_q(2, 160);
    table().quantize_activations(row, 160, got_q[1]);
    EXPECT_EQ(0, std::memcmp(got_q[1].q, want_q[0].q, 160)) << "quantized codes at offset " << offset;
    expect_same_bits(got_q[1].scale, want_q[0].scale, 5, "quantization scales");
    expect_same_bits(got_q[1].scaled_sum, want_q[0].scaled_sum, 5, "quantization sums");
    table().softmax(row, n);
    expect_same_bits(row, want_soft.data(), n, "softmax at offset " + std::to_string(offset));
    std::copy(src.begin(), src.end(), row);
    table().silu_mul(row, up.data(), n);
    expect_same_bits(row, want_silu.data(), n, "silu_mul at offset " + std::to_string(offset));
  }
}

#if defined(__x86_64__) || defined(__i386__)
// The x86 tables share every float operation (x86_kernels-inl.h) and their
// integer dots are exact, so the VNNI tables give the AVX2 table's bits,
// the AVX-512 table's two-groups-per-pass path (calls of 4 rows or more)
// included: 1..21 rows cover every tile height of both widths, 69 weight
// rows are 4 pairs of groups and a ragged group, and the output slices cut
// pairs and groups in the middle.
TEST(X86Tables, VnniTablesGiveTheAvx2TablesBits) {
  const KernelTable* avx2 = nullptr;
  std::vector<const KernelTable*> vnni;
  for (const KernelTable* t : available_kernel_tables()) {
    if (t->isa == Isa::kAvx2) avx2 = t;
    if (t->isa == Isa::kAvxVnni || t->isa == Isa::kAvx512Vnni) vnni.push_back(t);
  }
  if (avx2 == nullptr || vnni.empty()) GTEST_SKIP() << "this CPU runs no VNNI table";
  std::mt19937 rng(9);
  const int64_t rows = 69, cols = 96 + 32 * 8;
  const int n = 21;
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), rng);
  ActivationRows xq(n, cols);
  xq.quantize(*avx2, x.data(), cols);
  const Int4Matrix w4 = testing::random_int4(rows, cols, ScaleFormat::kF16, rng);
  const Int4Matrix w4k = testing::random_int4(rows, cols, ScaleFormat::kF32, rng);
  const Int8Matrix w8 = testing::random_int8(rows, cols, rng);
  const std::vector<int64_t> cuts = {0, 5, 21, 40, 64, rows};  // slices inside groups and pairs
  auto products = [&](const KernelTable& t) {
    std::vector<float> y;
    for (int m = 1; m <= n; ++m) {
      std::vector<float> part(static_cast<size_t>(4 * m * rows));
      t.matmul_int4(w4, xq.rows(), m, part.data(), rows, 0, rows);
      t.matmul_int4(w4k, xq.rows(), m, part.data() + m * rows, rows, 0, rows);
      t.matmul_int8(w8, xq.rows(), m, part.data() + 2 * m * rows, rows, 0, rows);
      for (size_t c = 0; c + 1 < cuts.size(); ++c) {
        t.matmul_int4(w4, xq.rows(), m, part.data() + 3 * m * rows, rows, cuts[c], cuts[c + 1]);
      }
      y.insert(y.end(), part.begin(), part.end());
    }
    return y;
  };
  const std::vector<float> want = products(*avx2);
  for (const KernelTable* t : vnni) {
    ActivationRows q2(n, cols);
    q2.quantize(*t, x.data(), cols);
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(0, std::memcmp(q2[r].q, xq[r].q, cols)) << t->name << ": quantized row " << r;
    }
    expect_same_bits(products(*t).data(), want.data(), static_cast<int64_t>(want.size()), std::string(t->name));
  }
}
#endif

#if defined(__aarch64__)
// The NEON tables share every float operation (neon_kernels-inl.h) and
// their integer dots are exact, so neon_i8mm (SMMLA on pairs of activation
// rows, SDOT for an odd one) gives neon_dotprod's bits. Every row count
// 1..21 (pairs, odd rows, more than one pass of 4), 69 weight rows (8 full
// groups and a ragged one), whole calls and a slice that starts and ends
// inside a group, every INT4 variant.
TEST(ArmTables, I8mmTableGivesTheDotprodTablesBits) {
  const KernelTable* dotprod = nullptr;
  const KernelTable* i8mm = nullptr;
  for (const KernelTable* t : available_kernel_tables()) {
    if (t->isa == Isa::kNeonDotprod) dotprod = t;
    if (t->isa == Isa::kNeonI8mm) i8mm = t;
  }
  if (dotprod == nullptr || i8mm == nullptr) GTEST_SKIP() << "this CPU runs no neon_i8mm table";
  std::mt19937 rng(11);
  const int64_t rows = 69, cols = 96 + 32 * 8;
  const int n = 21;
  const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), rng);
  ActivationRows xq(n, cols), xq2(n, cols);
  xq.quantize(*dotprod, x.data(), cols);
  xq2.quantize(*i8mm, x.data(), cols);
  for (int r = 0; r < n; ++r) {
    ASSERT_EQ(0, std::memcmp(xq2[r].q, xq[r].q, cols)) << "quantized row " << r;
    ASSERT_EQ(0, std::memcmp(xq2[r].scale, xq[r].scale, cols / kQuantBlock * sizeof(float))) << "scales of row " << r;
    ASSERT_EQ(0, std::memcmp(xq2[r].scaled_sum, xq[r].scaled_sum, cols / kQuantBlock * sizeof(float)))
        << "scaled sums of row " << r;
  }
  const Int4Matrix w4[] = {testing::random_int4(rows, cols, ScaleFormat::kF16, rng),
                           testing::random_int4(rows, cols, ScaleFormat::kF32, rng),
                           testing::random_int4(rows, cols, ScaleFormat::kF16, rng, /*symmetric=*/true)};
  const Int8Matrix w8 = testing::random_int8(rows, cols, rng);
  for (int m = 1; m <= n; ++m) {
    for (const auto& [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {3, rows - 2}}) {
      auto products = [&](const KernelTable& t) {
        std::vector<float> y(static_cast<size_t>(4 * m * rows), -1.0f);
        for (int k = 0; k < 3; ++k) t.matmul_int4(w4[k], xq.rows(), m, y.data() + k * m * rows, rows, r0, r1);
        t.matmul_int8(w8, xq.rows(), m, y.data() + 3 * m * rows, rows, r0, r1);
        return y;
      };
      const std::vector<float> want = products(*dotprod);
      expect_same_bits(products(*i8mm).data(), want.data(), static_cast<int64_t>(want.size()),
                       ::testing::Message() << m << " activation rows, weight rows " << r0 << ".." << r1);
      if (::testing::Test::HasFailure()) return;
    }
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Tables, KernelInvarianceTest, ::testing::ValuesIn(available_kernel_tables()),
                         [](const ::testing::TestParamInfo<const KernelTable*>& info) {
                           return std::string(info.param->name);
                         });

}  // namespace
}  // namespace chorus::kernels
