// The read-bandwidth probe; see read_bandwidth.h.
#include "tools/read_bandwidth.h"

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "util/aligned_buffer.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

// Sums 64-bit words with four independent chains (the compiler vectorizes
// it); the sum is returned so the reads cannot be optimized away.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 + s1 + s2 + s3;
}

}  // namespace

double read_bandwidth(size_t bytes, int threads, int repetitions) {
  threads = std::max(1, threads);
  const size_t words = std::max<size_t>(bytes / sizeof(uint64_t), static_cast<size_t>(threads));
  AlignedBuffer<uint64_t> buf(words);  // zeroed: every page is really there
  for (size_t i = 0; i < words; i += 512) buf[i] = i;
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  auto pass = [&] {
    std::vector<std::thread> pool;
    const double t0 = now_seconds();
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t begin = words * t / threads, end = words * (t + 1) / threads;
        sums[t] += sum_words(buf.data() + begin, end - begin);
      });
    }
    for (std::thread& th : pool) th.join();
    return now_seconds() - t0;
  };
  pass();  // warm-up
  double best = 1e30;
  for (int r = 0; r < std::max(1, repetitions); ++r) best = std::min(best, pass());
  static volatile uint64_t sink;  // the sums are used: the reads cannot be elided
  for (uint64_t s : sums) sink = sink + s;
  return static_cast<double>(words * sizeof(uint64_t)) / best;
}

}  // namespace chorus::tools
