#include "util/thread_pool.h"

#include <thread>

#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CHORUS_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CHORUS_CPU_RELAX() asm volatile("yield")
#else
#define CHORUS_CPU_RELAX() ((void)0)
#endif

namespace chorus {
namespace {
// About 50-100 microseconds of spinning: longer than the gap between the
// parallel loops of one step, much shorter than the gap between steps.
constexpr int kSpinIterations = 20000;
// Every this many spins the thread offers its core to another runnable
// thread. On an oversubscribed machine (more threads than cores: other
// processes, or several engines) the thread being waited for may be the
// one that needs this core; without the yield each fork-join could cost a
// whole scheduler time slice. On an idle core the yield returns at once.
constexpr int kSpinsPerYield = 64;

inline void spin_pause(int spins) {
  if (spins % kSpinsPerYield == 0) {
    std::this_thread::yield();
  } else {
    CHORUS_CPU_RELAX();
  }
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads) {
  check(n_threads >= 1 && n_threads <= 256, "threads", "must be 1..256, got {}", n_threads);
  workers_.reserve(n_threads - 1);
  // Workers start from the generation current now, so a job dispatched
  // before a worker first runs is still seen as new by it.
  const uint32_t start = generation_.load(std::memory_order_relaxed);
  for (int t = 1; t < n_threads; ++t) workers_.emplace_back([this, t, start] { worker_loop(t, start); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::dispatch(Call call, void* ctx) {
  if (n_threads_ == 1) {
    call(ctx, 0);
    return;
  }
  call_ = call;
  ctx_ = ctx;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  call(ctx, 0);
  // Spin first (the usual case: workers finish within microseconds), then
  // block, so an oversubscribed machine does not burn its time slices here.
  int spins = 0;
  for (int left; (left = pending_.load(std::memory_order_acquire)) != 0;) {
    if (++spins < kSpinIterations) {
      spin_pause(spins);
    } else {
      pending_.wait(left, std::memory_order_acquire);
    }
  }
}

void ThreadPool::worker_loop(int thread, uint32_t seen) {
  for (;;) {
    int spins = 0;
    uint32_t now;
    while ((now = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        spin_pause(spins);
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = now;
    if (stop_.load(std::memory_order_acquire)) return;
    call_(ctx_, thread);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace chorus
