// A small fork-join pool for the forward pass: workers are created once and
// spin briefly between jobs (a decode step issues hundreds of short parallel
// loops, too short for a sleep/wake round trip), then block until the next.
// Dispatch allocates nothing, so a steady-state step stays allocation-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace chorus {

class ThreadPool {
 public:
  // n_threads counts the calling thread: 1 means no workers at all.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(thread_index) once on each of the size() threads (the caller is
  // thread 0) and returns when all calls have returned.
  template <typename F>
  void run_on_all(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    auto call = [](void* ctx, int thread) { (*static_cast<Fn*>(ctx))(thread); };
    dispatch(call, const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // Splits [0, n) into size() contiguous ranges, rounded to multiples of
  // `grain`, and calls fn(begin, end) for each non-empty one.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    const int64_t blocks = (n + grain - 1) / grain;
    if (n_threads_ == 1 || blocks == 1) {
      fn(int64_t{0}, n);
      return;
    }
    run_on_all([&](int t) {
      const int64_t b0 = blocks * t / n_threads_, b1 = blocks * (t + 1) / n_threads_;
      const int64_t begin = b0 * grain, end = std::min(n, b1 * grain);
      if (begin < end) fn(begin, end);
    });
  }

 private:
  using Call = void (*)(void* ctx, int thread);
  void dispatch(Call call, void* ctx);
  void worker_loop(int thread, uint32_t seen);

  int n_threads_;
  std::vector<std::thread> workers_;
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace chorus
