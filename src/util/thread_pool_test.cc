#include "util/thread_pool.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "util/error.h"

namespace chorus {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 64, 1000, 1001}) {
      for (int64_t grain : {1, 4, 32}) {
        std::vector<int> hits(n, 0);
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          EXPECT_EQ(b % grain, 0);
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "threads " << threads << " n " << n << " i " << i;
      }
    }
  }
}

TEST(ThreadPool, RunOnAllUsesEveryThreadAndManyJobsInARow) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> counts(3);
  for (int job = 0; job < 2000; ++job) {
    pool.run_on_all([&](int t) { counts[t].fetch_add(1); });
  }
  for (int t = 0; t < 3; ++t) EXPECT_EQ(counts[t].load(), 2000);
}

TEST(ThreadPool, SumMatchesSequential) {
  ThreadPool pool(2);
  std::vector<int64_t> v(100000);
  std::iota(v.begin(), v.end(), 0);
  std::vector<int64_t> partial(2, 0);
  pool.run_on_all([&](int t) {
    for (size_t i = t; i < v.size(); i += 2) partial[t] += v[i];
  });
  EXPECT_EQ(partial[0] + partial[1], int64_t{100000} * 99999 / 2);
}

TEST(ThreadPool, RejectsAbsurdSizes) {
  EXPECT_THROW(ThreadPool(0), Error);
  EXPECT_THROW(ThreadPool(1000), Error);
}

}  // namespace
}  // namespace chorus
