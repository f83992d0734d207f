// The scheduler: many concurrent requests served by one engine, continuous
// batching style.
//
// One thread owns the engine and runs steps back to back. Requests (a
// prompt and k streams, each with its own adapter slot and sampler) are
// submitted from any thread and join between steps; every live stream of
// every running request adds its row to the same step, and new prompts are
// prefilled in chunks with the step's remaining rows, so a long prompt never
// stops the others' tokens. Admission is first come, first served against
// one budget of engine streams and KV cells: a request waits in a bounded
// queue until its worst case fits (prompt once per adapter, every suffix,
// n_predict tokens per stream; decode/kv_room.h), so a running request
// never runs out of cells. Finished and cancelled requests give their
// streams and cells back at the next step. Optionally, prompts stay cached
// for later requests that start with them (SchedulerOptions::prefix_cache).
//
// Each stream's output is exactly its output alone (greedy: the same
// tokens; sampled: the same draws for the same seed), because a row's
// result never depends on the rest of its step (ARCHITECTURE.md,
// "Exactness").
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "decode/multi_stream.h"
#include "engine/engine.h"
#include "util/error.h"

namespace chorus {

struct SchedulerOptions {
  // Requests submitted and not yet admitted; one more is refused with
  // QueueFull. At least 1.
  int max_queue = 64;
  // Prompt rows per step over all prefilling requests; 0: whatever the
  // step's rows leave after the decode rows.
  int max_prefill_rows = 0;
  // Rows of a step kept for prompts while more streams decode than a step
  // holds, so prompts still advance. 1..max_rows.
  int min_prefill_rows = 1;
  // Prompts kept in the cache after their prefill for later requests of the
  // same adapter whose prompt starts with them (a shared system prompt,
  // conversation turns): such a request forks the cached cells instead of
  // prefilling them. At most this many prompts (each holding an engine
  // stream); the least recently used is evicted when a request needs its
  // stream or cells. 0: off.
  int prefix_cache = 0;
  // true: a thread of the scheduler runs the steps. false: the caller
  // drives them with run_step() (tests and benchmarks that count steps).
  bool own_thread = true;
};

// submit() found the waiting queue full: nothing was queued, try again
// later (a server answers 503 with Retry-After).
class QueueFull : public Error {
 public:
  using Error::Error;
};

// A token as the scheduler reports it.
struct TokenEvent {
  uint64_t request = 0;
  int stream = 0;     // index into the request's streams
  int32_t token = 0;
  int64_t step = 0;   // the scheduler step whose logits chose it (0, 1, ...)
};

struct SchedResult {
  uint64_t request = 0;
  std::vector<StreamOutcome> streams;  // in request order; kCancelled for streams cut short
  bool cancelled = false;
  std::string error;  // non-empty: the request failed (the engine refused a step)
  // Prompt tokens taken from the prefix cache instead of prefilled, over
  // the request's adapter groups.
  int cached_tokens = 0;
  // Scheduler steps (step counter values) at which the request was
  // submitted, admitted and finished; admitted = -1 if it never ran.
  int64_t submitted_step = 0;
  int64_t admitted_step = -1;
  int64_t finished_step = 0;
};

struct SchedRequest {
  // prompt, streams, limits (n_predict per stream, ignore_eos, the
  // tokenizer for end-of-generation tokens), with the meaning they have
  // for run_streams (decode/multi_stream.h). Stop strings are text, applied
  // by the caller above (api/stop_matcher.h): on_token returns false.
  MultiStreamRequest work;
  // Called on the scheduler's thread for each reported token; false stops
  // that stream (kCallback). May be empty. Must not throw; may call submit
  // and cancel, never run_step.
  std::function<bool(const TokenEvent&)> on_token;
  // Called once on the scheduler's thread when the request ends (finished,
  // cancelled or failed), after its cells are free. May be empty.
  std::function<void(SchedResult)> on_done;
};

struct SchedulerStats {
  int64_t steps = 0;
  int64_t rows = 0;          // rows of all steps
  int64_t prefill_rows = 0;  // of them, prompt and suffix rows
  // Decode rows put off to a later step because more streams decoded than
  // the step had rows for (they go first then: round robin).
  int64_t rows_deferred = 0;
  int queued = 0;            // waiting for room
  int running = 0;
  int64_t cells_reserved = 0;  // the running requests' worst cases
  int64_t cells_total = 0;
  int streams_free = 0;
  int64_t rejected = 0;  // QueueFull answers
  int prefix_entries = 0;          // prompts in the prefix cache
  int64_t prefix_cells = 0;        // their cells (counted against the budget)
  int64_t prefix_hits = 0;         // prompt groups that reused a cached prefix
  int64_t prefix_evictions = 0;
};

class Scheduler {
 public:
  // Takes over `engine` (which must outlive the scheduler): its KV cache is
  // cleared and nothing else may step it, load or unload adapters while
  // requests run, or read its cache. Throws Error for bad options.
  Scheduler(Engine& engine, const SchedulerOptions& options = {});
  // Stops the thread; requests still queued or running end as cancelled
  // (their on_done is called).
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a request and returns its id (1, 2, ...). Thread-safe. Throws
  // Error, naming the field, when the request could never run on this
  // engine (see validate_request; besides, its worst case must fit the
  // whole cache), and QueueFull when max_queue requests are waiting.
  uint64_t submit(SchedRequest request);
  // Ends a queued or running request at the next step; its streams report
  // kCancelled. Thread-safe. False when the id is not live (unknown or
  // already finished).
  bool cancel(uint64_t request);

  // Submits and blocks until the request ends (own_thread only). The
  // request's own callbacks still run.
  SchedResult run(SchedRequest request);

  // Runs one step on the calling thread: applies cancellations, admits
  // what fits, steps the engine if any stream has rows and delivers the
  // tokens. Returns false when there was nothing at all to do. Only when
  // own_thread is false, and from one thread at a time.
  bool run_step();

  SchedulerStats stats() const;  // thread-safe snapshot
  const Engine& engine() const { return *engine_; }

 private:
  struct Pending;
  struct Active;
  struct Finished;

  void loop();
  bool step_once();
  void apply_cancels(std::vector<Finished>& out);
  void admit();
  void build_rows();
  void process_logits(std::span<const float> logits);
  void retire(std::vector<Finished>& out);
  void fail_all(const std::string& message);
  void deliver(std::vector<Finished>& out);
  // The prefix cache (scheduler thread; accounting under mu_).
  bool evict_one_locked();
  int reuse_prefix(int adapter, std::span<const int32_t> prompt, int stream);
  void remember_prefix(int adapter, std::span<const int32_t> prompt, int stream);

  Engine* engine_;
  SchedulerOptions options_;
  int64_t n_cells_ = 0;

  // Shared with submitting threads, under mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Pending>> queue_;
  std::vector<uint64_t> cancels_;
  std::unordered_set<uint64_t> live_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  SchedulerStats stats_;  // steps, rows, queue and budget figures
  std::atomic<int64_t> step_{0};

  // The scheduler thread's own (or run_step's caller's).
  std::vector<std::unique_ptr<Active>> active_;  // in admission order
  std::vector<int> free_streams_;                // engine stream ids
  std::vector<Row> rows_;
  struct RowRef {
    Active* active;
    int stream;  // index into the request's streams
    bool last_of_job;  // the row whose logits end a prefill job
  };
  std::vector<RowRef> refs_;
  // build_rows' lists, kept so a step in steady state allocates nothing.
  std::vector<RowRef> decoding_;
  std::vector<int32_t> planned_, last_row_;
  size_t decode_cursor_ = 0;
  int64_t n_prefill_rows_ = 0;  // of the step being built
  int64_t n_deferred_ = 0;      // decoding streams left out of it  // round robin when decode rows exceed a step

  struct CachedPrefix {
    int adapter;
    std::vector<int32_t> tokens;
    int stream;  // engine stream holding its cells
    uint64_t last_used;
  };
  std::vector<CachedPrefix> prefixes_;  // guarded by mu_ (admission evicts under it)
  uint64_t prefix_clock_ = 0;

  std::thread thread_;
};

}  // namespace chorus
