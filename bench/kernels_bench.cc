// Micro-benchmarks of the fast kernels, one thread, at TinyLlama-1.1B shapes:
// matmul_int4 from decode (n = 1, a memory-bound GEMV) to prefill (n = 512,
// a compute-bound GEMM) on Q4_0-sourced weights, plus Q4_K-sourced ones,
// the int8 output head and activation quantization. Counters: GB/s of packed weights streamed (quants, scales
// and mins) and GOP/s (2 ops per multiply-add). When the weights are the
// bottleneck (n <= 8) the benchmark cycles through enough copies of the
// matrix to defeat the last-level cache, so GB/s is memory bandwidth.
//
//   CHORUS_ISA=generic ./chorus_kernels_bench   compares against the portable table.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/packed_matrix.h"
#include "kernels/testing.h"
#include "util/half.h"

namespace chorus::kernels {
namespace {

constexpr size_t kColdBytes = size_t{256} << 20;  // well past a 32 MiB L3

// Copies of one random matrix (identical content is fine: caches do not
// deduplicate).
template <typename Matrix, typename Make>
std::vector<Matrix> copies_of(Make make, size_t bytes_each, int n) {
  const size_t copies = n <= 8 ? std::max<size_t>(1, (kColdBytes + bytes_each - 1) / bytes_each) : 1;
  std::vector<Matrix> out;
  out.push_back(make());
  for (size_t i = 1; i < copies; ++i) {
    Matrix m = make();
    out.push_back(std::move(m));
  }
  return out;
}

Int4Matrix copy_int4(const Int4Matrix& src) {
  Int4Matrix m;
  m.rows = src.rows;
  m.cols = src.cols;
  m.scale_format = src.scale_format;
  m.symmetric = src.symmetric;
  m.quants = AlignedBuffer<uint8_t>(src.quants.size());
  m.scales = AlignedBuffer<uint8_t>(src.scales.size());
  if (!src.symmetric) m.mins = AlignedBuffer<uint8_t>(src.mins.size());
  std::memcpy(m.quants.data(), src.quants.data(), src.quants.bytes());
  std::memcpy(m.scales.data(), src.scales.data(), src.scales.bytes());
  if (!src.symmetric) std::memcpy(m.mins.data(), src.mins.data(), src.mins.bytes());
  return m;
}

void set_counters(benchmark::State& state, double weight_bytes, double macs) {
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(weight_bytes * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["GOP/s"] = benchmark::Counter(2 * macs * iters / 1e9, benchmark::Counter::kIsRate);
}

// Q4_0-sourced weights (f16 scales, symmetric: the mins are not streamed)
// or, with `f32_scales`, Q4_K-sourced ones (f32 scales and mins).
void run_int4(benchmark::State& state, bool f32_scales) {
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const int n = static_cast<int>(state.range(2));
  const KernelTable& k = best_kernel_table();
  std::mt19937 rng(1);
  const Int4Matrix proto =
      f32_scales ? testing::random_int4(rows, cols, ScaleFormat::kF32, rng)
                 : testing::random_int4(rows, cols, ScaleFormat::kF16, rng, /*symmetric=*/true);
  const std::vector<Int4Matrix> w =
      copies_of<Int4Matrix>([&] { return copy_int4(proto); }, proto.bytes(), n);
  const std::vector<float> x = testing::random_floats(static_cast<size_t>(n * cols), rng);
  testing::ActivationRows xq(n, cols);
  xq.quantize(k, x.data(), cols);
  std::vector<float> y(static_cast<size_t>(n * rows));
  size_t i = 0;
  for (auto _ : state) {
    k.matmul_int4(w[i++ % w.size()], xq.rows(), n, y.data(), rows, 0, rows);
    benchmark::ClobberMemory();
  }
  set_counters(state, static_cast<double>(proto.bytes()), static_cast<double>(rows * cols) * n);
  state.SetLabel(std::string(k.name));
}

void BM_MatmulInt4(benchmark::State& state) { run_int4(state, false); }
void BM_MatmulInt4F32Scales(benchmark::State& state) { run_int4(state, true); }

void BM_MatmulInt8(benchmark::State& state) {
  const int64_t rows = state.range(0);
  const int64_t cols = state.range(1);
  const int n = static_cast<int>(state.range(2));
  const KernelTable& k = best_kernel_table();
  std::mt19937 rng(2);
  const size_t bytes = static_cast<size_t>(rows * cols + rows * cols / 32 * 2);
  std::vector<Int8Matrix> w =
      copies_of<Int8Matrix>([&] { return testing::random_int8(rows, cols, rng); }, bytes, n);
  const std::vector<float> x = testing::random_floats(static_cast<size_t>(n * cols), rng);
  testing::ActivationRows xq(n, cols);
  xq.quantize(k, x.data(), cols);
  std::vector<float> y(static_cast<size_t>(n * rows));
  size_t i = 0;
  for (auto _ : state) {
    k.matmul_int8(w[i++ % w.size()], xq.rows(), n, y.data(), rows, 0, rows);
    benchmark::ClobberMemory();
  }
  set_counters(state, static_cast<double>(bytes), static_cast<double>(rows * cols) * n);
  state.SetLabel(std::string(k.name));
}

void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t cols = state.range(0);
  const KernelTable& k = best_kernel_table();
  std::mt19937 rng(3);
  const std::vector<float> x = testing::random_floats(static_cast<size_t>(cols), rng);
  testing::ActivationRows xq(1, cols);
  for (auto _ : state) {
    k.quantize_activations(x.data(), cols, xq[0]);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * cols * static_cast<int64_t>(sizeof(float)));
}

// Attention of one row and KV head over `cells` cells (head_dim 64, the 8
// query heads TinyLlama-1.1B shares per KV head), split as a prefill row
// sees them: committed cells, then the chunk's rows before it.
// With `f16`, over an f16 cache (the engine's default) holding the same
// values: half the bytes per cell.
void run_attend(benchmark::State& state, bool f16) {
  const int cells = static_cast<int>(state.range(0));
  const int in_step = std::min(cells, 63);
  constexpr int kHeadDim = 64, kHeads = 8;
  const KernelTable& k = best_kernel_table();
  std::mt19937 rng(4);
  const std::vector<float> keys = testing::random_floats(static_cast<size_t>(cells * 4 * kHeadDim), rng);
  const std::vector<float> values = testing::random_floats(static_cast<size_t>(cells * 4 * kHeadDim), rng);
  std::vector<uint16_t> keys16(keys.size()), values16(values.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    keys16[i] = f32_to_f16(keys[i]);
    values16[i] = f32_to_f16(values[i]);
  }
  const std::vector<float> q = testing::random_floats(kHeads * kHeadDim, rng);
  std::vector<int32_t> order(static_cast<size_t>(cells));
  for (int c = 0; c < cells; ++c) order[c] = c;
  std::vector<float> out(kHeads * kHeadDim), scores(static_cast<size_t>(kHeads * cells + kHeadDim));
  for (auto _ : state) {
    if (f16) {
      k.attend_f16(keys16.data(), values16.data(), 4 * kHeadDim, order.data(), cells - in_step,
                   order.data() + cells - in_step, in_step, kHeadDim, kHeads, 0.125f, q.data(), out.data(),
                   scores.data());
    } else {
      k.attend(keys.data(), values.data(), 4 * kHeadDim, order.data(), cells - in_step,
               order.data() + cells - in_step, in_step, kHeadDim, kHeads, 0.125f, q.data(), out.data(),
               scores.data());
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * cells);
  state.SetLabel(std::string(k.name));
}
void BM_Attend(benchmark::State& state) { run_attend(state, false); }
void BM_AttendF16(benchmark::State& state) { run_attend(state, true); }
BENCHMARK(BM_Attend)->Arg(64)->Arg(255)->Arg(512)->Arg(2048);
BENCHMARK(BM_AttendF16)->Arg(64)->Arg(255)->Arg(512)->Arg(2048);

// TinyLlama-1.1B: q/o projections, gate/up, down, output head.
void int4_shapes(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
  for (const auto& s : shapes) {
    for (const int64_t n : {1, 2, 4, 8, 16, 32, 512}) b->Args({s[0], s[1], n});
  }
  b->ArgNames({"rows", "cols", "n"});
}

BENCHMARK(BM_MatmulInt4)->Apply(int4_shapes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatmulInt4F32Scales)
    ->Args({2048, 2048, 1})
    ->Args({2048, 2048, 512})
    ->ArgNames({"rows", "cols", "n"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MatmulInt8)
    ->Args({32000, 2048, 1})
    ->Args({32000, 2048, 8})
    ->ArgNames({"rows", "cols", "n"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QuantizeActivations)->Arg(2048)->Arg(5632);

}  // namespace
}  // namespace chorus::kernels

BENCHMARK_MAIN();
