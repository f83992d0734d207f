// The scheduler; see scheduler.h.
#include "sched/scheduler.h"

#include <algorithm>
#include <string>

#include "decode/accept_token.h"
#include "decode/kv_room.h"
#include "util/resources.h"

namespace chorus {
namespace {
constexpr const char* kWhere = "scheduler";
}  // namespace

// A request waiting for room.
struct Scheduler::Pending {
  uint64_t id = 0;
  SchedRequest request;
  int64_t cells = 0;  // its worst case
  int64_t submitted_step = 0;
  double submitted_seconds = 0;
};

// A running request. Its streams go through: the prompt (prefilled by the
// first stream of each adapter, the group's owner; the others wait), then
// their suffix, then decoding, then done.
struct Scheduler::Active {
  enum class Phase { kWaitPrompt, kPrompt, kSuffix, kDecode, kDone };

  uint64_t id = 0;
  SchedRequest request;
  int64_t cells = 0;
  double t0 = 0;  // submission, for the outcomes' timings
  std::vector<Sampler> samplers;
  std::vector<StreamState> states;
  std::vector<Phase> phase;
  std::vector<int> owner;      // [stream] the stream that prefills its prompt
  std::vector<int32_t> fed;    // [stream] tokens of its current prefill job in the cache
  bool cancelled = false;
  std::string error;
  OnStreamToken report;  // the accept path's callback (built once: no allocation per token)
  SchedResult result;

  const MultiStreamRequest& work() const { return request.work; }
  std::span<const int32_t> job_tokens(int i) const {
    return phase[i] == Phase::kPrompt ? std::span<const int32_t>(work().prompt)
                                      : std::span<const int32_t>(work().streams[i].suffix);
  }
  int32_t job_start(int i) const {
    return phase[i] == Phase::kPrompt ? 0 : static_cast<int32_t>(work().prompt.size());
  }
  bool prefilling(int i) const { return phase[i] == Phase::kPrompt || phase[i] == Phase::kSuffix; }
  bool all_done() const {
    return std::all_of(phase.begin(), phase.end(), [](Phase p) { return p == Phase::kDone; });
  }
  // The prompt's last row wants logits when a stream of the group starts
  // decoding right after it (no suffix).
  bool prompt_wants_logits(int o) const {
    for (size_t m = 0; m < owner.size(); ++m) {
      if (owner[m] == o && work().streams[m].suffix.empty()) return true;
    }
    return false;
  }
};

struct Scheduler::Finished {
  std::function<void(SchedResult)> on_done;
  SchedResult result;
};

Scheduler::Scheduler(Engine& engine, const SchedulerOptions& options)
    : engine_(&engine), options_(options) {
  const int max_rows = engine.options().max_rows;
  check(options.max_queue >= 1, kWhere, "max_queue must be at least 1, got {}", options.max_queue);
  check(options.prefix_cache >= 0, kWhere, "prefix_cache must be >= 0, got {}",
        options.prefix_cache);
  check(options.max_prefill_rows >= 0, kWhere, "max_prefill_rows must be >= 0, got {}",
        options.max_prefill_rows);
  check(options.min_prefill_rows >= 1 && options.min_prefill_rows <= max_rows, kWhere,
        "min_prefill_rows must be 1..{} (the engine's max_rows), got {}", max_rows,
        options.min_prefill_rows);
  engine.kv_cache().clear();
  n_cells_ = engine.kv_cache().n_cells();
  for (int s = engine.options().max_streams - 1; s >= 0; --s) free_streams_.push_back(s);
  rows_.reserve(max_rows);
  refs_.reserve(max_rows);
  stats_.cells_total = n_cells_;
  stats_.streams_free = engine.options().max_streams;
  if (options_.own_thread) thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  // Whatever is left ends as cancelled, so nobody waits for it forever.
  std::vector<Finished> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t id : live_) cancels_.push_back(id);
  }
  apply_cancels(out);
  retire(out);
  deliver(out);
}

uint64_t Scheduler::submit(SchedRequest request) {
  const MultiStreamRequest& work = request.work;
  validate_request_shape(*engine_, work);
  const int64_t cells = kv_cells_needed(kv_demand(work), work.limits.n_predict);
  check(cells <= n_cells_, "streams",
        "{} streams need {} KV cells (the prompt once per adapter, each suffix, {} new tokens "
        "each) but the cache holds {} (use a bigger context, fewer streams or fewer tokens)",
        work.streams.size(), cells, work.limits.n_predict, n_cells_);
  auto p = std::make_unique<Pending>();
  p->request = std::move(request);
  p->cells = cells;
  p->submitted_seconds = now_seconds();
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    check(!stopping_, kWhere, "is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.max_queue) {
      ++stats_.rejected;
      throw QueueFull(kWhere, fmt::format("the queue is full: {} requests are waiting for room "
                                          "(max_queue = {}); try again later",
                                          queue_.size(), options_.max_queue));
    }
    id = next_id_++;
    p->id = id;
    p->submitted_step = step_.load();
    queue_.push_back(std::move(p));
    live_.insert(id);
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return id;
}

bool Scheduler::cancel(uint64_t request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_.count(request) == 0) return false;
    cancels_.push_back(request);
  }
  cv_.notify_all();
  return true;
}

SchedResult Scheduler::run(SchedRequest request) {
  check(options_.own_thread, kWhere, "run() needs own_thread; drive steps with run_step()");
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    SchedResult result;
  };
  auto waiter = std::make_shared<Waiter>();
  std::function<void(SchedResult)> user_done = std::move(request.on_done);
  request.on_done = [waiter, user_done](SchedResult r) {
    if (user_done) user_done(r);
    std::lock_guard<std::mutex> lock(waiter->mu);
    waiter->result = std::move(r);
    waiter->done = true;
    waiter->cv.notify_all();
  };
  submit(std::move(request));
  std::unique_lock<std::mutex> lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->done; });
  return std::move(waiter->result);
}

bool Scheduler::run_step() {
  check(!options_.own_thread, kWhere, "run_step() is for a scheduler without its own thread");
  return step_once();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SchedulerStats s = stats_;
  s.steps = step_.load();
  return s;
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // active_ is this thread's own; reading it here is safe.
      cv_.wait(lock, [&] {
        return stopping_ || !queue_.empty() || !cancels_.empty() || !active_.empty();
      });
      if (stopping_) return;
    }
    step_once();
  }
}

bool Scheduler::step_once() {
  std::vector<Finished> out;
  apply_cancels(out);
  retire(out);
  admit();
  deliver(out);
  bool worked = !out.empty();

  build_rows();
  if (!rows_.empty()) {
    worked = true;
    try {
      const std::span<const float> logits = engine_->step(rows_);
      process_logits(logits);
    } catch (const std::exception& e) {
      // Admission makes this unreachable in principle (every request fits
      // its worst case); should it happen, the requests end with the reason
      // instead of the server's thread dying.
      fail_all(e.what());
    }
    step_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.rows += static_cast<int64_t>(rows_.size());
    stats_.prefill_rows += n_prefill_rows_;
    stats_.rows_deferred += n_deferred_;
  }
  retire(out);
  deliver(out);
  return worked;
}

void Scheduler::apply_cancels(std::vector<Finished>& out) {
  std::vector<uint64_t> ids;
  std::vector<std::unique_ptr<Pending>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ids.swap(cancels_);
    for (uint64_t id : ids) {
      auto it = std::find_if(queue_.begin(), queue_.end(),
                             [&](const std::unique_ptr<Pending>& p) { return p->id == id; });
      if (it == queue_.end()) continue;
      dropped.push_back(std::move(*it));
      queue_.erase(it);
      live_.erase(id);
    }
    stats_.queued = static_cast<int>(queue_.size());
  }
  for (auto& p : dropped) {
    Finished f;
    f.on_done = std::move(p->request.on_done);
    f.result.request = p->id;
    f.result.cancelled = true;
    f.result.submitted_step = p->submitted_step;
    f.result.finished_step = step_.load();
    f.result.streams.resize(p->request.work.streams.size());
    for (StreamOutcome& s : f.result.streams) s.stop_reason = StopReason::kCancelled;
    out.push_back(std::move(f));
  }
  for (uint64_t id : ids) {
    for (auto& a : active_) {
      if (a->id != id) continue;
      a->cancelled = true;
      for (size_t i = 0; i < a->phase.size(); ++i) {
        if (a->phase[i] == Active::Phase::kDone) continue;
        a->phase[i] = Active::Phase::kDone;
        a->states[i].done = true;
        a->states[i].stop_reason = StopReason::kCancelled;
      }
    }
  }
}

// First come, first served: the head of the queue waits until its streams
// and its worst case of cells are free, and nothing overtakes it.
void Scheduler::admit() {
  KvCache& kv = engine_->kv_cache();
  for (;;) {
    std::unique_ptr<Pending> p;
    std::vector<int> streams;  // engine stream ids for it
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
      const Pending& head = *queue_.front();
      const size_t k = head.request.work.streams.size();
      // Room from what is free, else from cached prefixes, oldest first.
      auto fits = [&] {
        return free_streams_.size() >= k &&
               stats_.cells_reserved + stats_.prefix_cells + head.cells <= n_cells_;
      };
      while (!fits() && evict_one_locked()) {
      }
      if (!fits()) return;
      p = std::move(queue_.front());
      queue_.pop_front();
      streams.assign(free_streams_.end() - static_cast<std::ptrdiff_t>(k), free_streams_.end());
      free_streams_.resize(free_streams_.size() - k);
      stats_.cells_reserved += p->cells;
      stats_.queued = static_cast<int>(queue_.size());
      stats_.running = static_cast<int>(active_.size()) + 1;
      stats_.streams_free = static_cast<int>(free_streams_.size());
    }
    auto a = std::make_unique<Active>();
    a->id = p->id;
    a->request = std::move(p->request);
    a->cells = p->cells;
    a->t0 = p->submitted_seconds;
    const MultiStreamRequest& w = a->request.work;
    const int k = static_cast<int>(w.streams.size());
    a->samplers.reserve(k);
    a->states.resize(k);
    a->phase.resize(k);
    a->owner.resize(k);
    a->fed.assign(k, 0);
    a->result.request = a->id;
    a->result.submitted_step = p->submitted_step;
    a->result.admitted_step = step_.load();
    a->result.streams.resize(k);
    for (int i = 0; i < k; ++i) {
      const StreamSpec& spec = w.streams[i];
      a->samplers.emplace_back(spec.sampler);
      StreamState& s = a->states[i];
      s.stream = streams[i];
      kv.clear_stream(s.stream);  // nothing should be left; never share stale cells
      s.adapter = spec.adapter;
      s.sampler = &a->samplers[i];
      s.history.reserve(w.prompt.size() + spec.suffix.size() + w.limits.n_predict);
      s.history.assign(w.prompt.begin(), w.prompt.end());
      s.history.insert(s.history.end(), spec.suffix.begin(), spec.suffix.end());
      a->result.streams[i].n_prompt = static_cast<int>(s.history.size());
      a->result.streams[i].tokens.reserve(w.limits.n_predict);
      a->owner[i] = i;
      for (int o = 0; o < i; ++o) {
        if (w.streams[o].adapter == spec.adapter) {
          a->owner[i] = o;
          break;
        }
      }
      a->phase[i] = a->owner[i] == i ? Active::Phase::kPrompt : Active::Phase::kWaitPrompt;
      if (a->owner[i] == i) {
        a->fed[i] = reuse_prefix(spec.adapter, w.prompt, s.stream);
        a->result.cached_tokens += a->fed[i];
      }
    }
    Active* self = a.get();
    a->report = [this, self](int i, int32_t id) {
      StreamOutcome& out = self->result.streams[i];
      out.tokens.push_back(id);
      out.last_token_seconds = now_seconds() - self->t0;
      if (out.tokens.size() == 1) out.first_token_seconds = out.last_token_seconds;
      if (!self->request.on_token) return true;
      return self->request.on_token(TokenEvent{self->id, i, id, step_.load()});
    };
    active_.push_back(std::move(a));
  }
}

// Decode rows first (one per decoding stream, round robin when they exceed
// the step), then prompt rows with what is left, shared fairly between the
// prefill jobs so a long prompt does not hold a short one back.
void Scheduler::build_rows() {
  rows_.clear();
  refs_.clear();
  n_prefill_rows_ = 0;
  const size_t max_rows = static_cast<size_t>(engine_->options().max_rows);

  std::vector<RowRef>& decoding = decoding_;
  decoding.clear();
  size_t prefill_jobs = 0;
  for (auto& a : active_) {
    for (int i = 0; i < static_cast<int>(a->phase.size()); ++i) {
      if (a->phase[i] == Active::Phase::kDecode) decoding.push_back({a.get(), i, false});
      if (a->prefilling(i)) ++prefill_jobs;
    }
  }
  const size_t keep = prefill_jobs > 0 ? static_cast<size_t>(options_.min_prefill_rows) : 0;
  const size_t decode_budget = std::min(decoding.size(), max_rows - std::min(keep, max_rows));
  const size_t start = decoding.empty() ? 0 : decode_cursor_ % decoding.size();
  for (size_t n = 0; n < decode_budget; ++n) {
    const RowRef ref = decoding[(start + n) % decoding.size()];
    const StreamState& s = ref.active->states[ref.stream];
    Row r;
    r.token = s.next;
    r.pos = s.pos;
    r.stream = static_cast<int16_t>(s.stream);
    r.adapter = static_cast<int16_t>(s.adapter);
    r.want_logits = true;
    rows_.push_back(r);
    refs_.push_back(ref);
  }
  n_deferred_ = static_cast<int64_t>(decoding.size() - decode_budget);
  if (decode_budget < decoding.size()) decode_cursor_ = start + decode_budget;

  if (prefill_jobs == 0) return;
  size_t budget = max_rows - rows_.size();
  if (options_.max_prefill_rows > 0) budget = std::min(budget, static_cast<size_t>(options_.max_prefill_rows));
  // Two passes: a fair share each, then the rest to whoever has tokens left,
  // in admission order.
  const size_t share = std::max<size_t>(1, budget / prefill_jobs);
  std::vector<int32_t>& planned = planned_;    // [job] rows taken this step
  std::vector<int32_t>& last_row = last_row_;  // [job] its latest row in this step, or -1
  planned.clear();
  last_row.clear();
  for (int pass = 0; pass < 2 && budget > 0; ++pass) {
    size_t job = 0;
    for (auto& a : active_) {
      for (int i = 0; i < static_cast<int>(a->phase.size()) && budget > 0; ++i) {
        if (!a->prefilling(i)) continue;
        if (planned.size() <= job) {
          planned.push_back(0);
          last_row.push_back(-1);
        }
        const std::span<const int32_t> tokens = a->job_tokens(i);
        const size_t done = static_cast<size_t>(a->fed[i] + planned[job]);
        const size_t cap = pass == 0 ? share : budget;
        const size_t take = std::min({tokens.size() - done, cap, budget});
        const StreamState& s = a->states[i];
        const bool wants_end = a->phase[i] == Active::Phase::kSuffix || a->prompt_wants_logits(i);
        for (size_t t = 0; t < take; ++t) {
          Row r;
          r.token = tokens[done + t];
          r.pos = a->job_start(i) + static_cast<int32_t>(done + t);
          r.stream = static_cast<int16_t>(s.stream);
          r.adapter = static_cast<int16_t>(s.adapter);
          // A chain through the job's rows of this step; its first row
          // attaches to the cells committed by earlier steps.
          r.parent = t == 0 ? last_row[job] : static_cast<int32_t>(rows_.size()) - 1;
          const bool last = done + t + 1 == tokens.size();
          r.want_logits = last && wants_end;
          rows_.push_back(r);
          refs_.push_back({a.get(), i, last});
        }
        planned[job] += static_cast<int32_t>(take);
        if (take > 0) last_row[job] = static_cast<int32_t>(rows_.size()) - 1;
        n_prefill_rows_ += static_cast<int64_t>(take);
        budget -= take;
        ++job;
      }
    }
  }
}

void Scheduler::process_logits(std::span<const float> logits) {
  KvCache& kv = engine_->kv_cache();
  const size_t n_vocab = static_cast<size_t>(engine_->config().n_vocab);
  size_t w = 0;  // the logits row of the next row that wants them
  for (size_t j = 0; j < rows_.size(); ++j) {
    const RowRef& ref = refs_[j];
    Active& a = *ref.active;
    const int i = ref.stream;
    std::span<const float> row_logits;
    if (rows_[j].want_logits) row_logits = logits.subspan(w++ * n_vocab, n_vocab);
    const MultiStreamRequest& work = a.work();
    StreamState& s = a.states[i];
    if (a.phase[i] == Active::Phase::kDecode) {
      ++s.pos;
      const int32_t id = s.sampler->sample(row_logits, s.history);
      if (!accept_token(s, i, id, row_logits, work.limits, a.report)) {
        a.phase[i] = Active::Phase::kDone;
      }
      continue;
    }
    ++a.fed[i];
    if (!ref.last_of_job) continue;
    if (a.phase[i] == Active::Phase::kPrompt) {
      // The group's prompt is in: its other streams share the cells, then
      // each goes on with its suffix or its first token.
      const int n_prompt = static_cast<int>(work.prompt.size());
      remember_prefix(s.adapter, work.prompt, s.stream);
      for (int m = 0; m < static_cast<int>(a.phase.size()); ++m) {
        if (a.owner[m] != i) continue;
        if (m != i) kv.fork_stream(s.stream, a.states[m].stream);
        a.states[m].pos = n_prompt;
        a.fed[m] = 0;
        if (!work.streams[m].suffix.empty()) {
          a.phase[m] = Active::Phase::kSuffix;
        } else {
          a.phase[m] = Active::Phase::kDecode;
          if (!accept_first_token(a.states[m], m, row_logits, work.streams[m].first_token_rank,
                                  work.limits, a.report)) {
            a.phase[m] = Active::Phase::kDone;
          }
        }
      }
    } else {  // the suffix is in
      s.pos = static_cast<int32_t>(work.prompt.size() + work.streams[i].suffix.size());
      a.phase[i] = Active::Phase::kDecode;
      if (!accept_first_token(s, i, row_logits, work.streams[i].first_token_rank, work.limits,
                              a.report)) {
        a.phase[i] = Active::Phase::kDone;
      }
    }
  }
}

void Scheduler::fail_all(const std::string& message) {
  for (auto& a : active_) {
    a->error = message;
    for (size_t i = 0; i < a->phase.size(); ++i) a->phase[i] = Active::Phase::kDone;
  }
}

// Requests whose streams are all done give back their streams and cells.
void Scheduler::retire(std::vector<Finished>& out) {
  KvCache& kv = engine_->kv_cache();
  for (auto it = active_.begin(); it != active_.end();) {
    Active& a = **it;
    if (!a.all_done()) {
      ++it;
      continue;
    }
    for (StreamState& s : a.states) kv.clear_stream(s.stream);
    Finished f;
    f.on_done = std::move(a.request.on_done);
    f.result = std::move(a.result);
    f.result.cancelled = a.cancelled;
    f.result.error = a.error;
    f.result.finished_step = step_.load();
    for (size_t i = 0; i < a.states.size(); ++i) {
      f.result.streams[i].stop_reason = a.states[i].stop_reason;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (StreamState& s : a.states) free_streams_.push_back(s.stream);
      stats_.cells_reserved -= a.cells;
      stats_.streams_free = static_cast<int>(free_streams_.size());
      live_.erase(a.id);
    }
    out.push_back(std::move(f));
    it = active_.erase(it);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.running = static_cast<int>(active_.size());
}

// The least recently used cached prefix gives back its stream and cells
// (cells a running request forked from it stay with that request).
bool Scheduler::evict_one_locked() {
  if (prefixes_.empty()) return false;
  auto lru = std::min_element(prefixes_.begin(), prefixes_.end(),
                              [](const CachedPrefix& a, const CachedPrefix& b) {
                                return a.last_used < b.last_used;
                              });
  engine_->kv_cache().clear_stream(lru->stream);
  free_streams_.push_back(lru->stream);
  stats_.prefix_cells -= static_cast<int64_t>(lru->tokens.size());
  ++stats_.prefix_evictions;
  prefixes_.erase(lru);
  stats_.prefix_entries = static_cast<int>(prefixes_.size());
  stats_.streams_free = static_cast<int>(free_streams_.size());
  return true;
}

// Forks the longest cached prefix of `prompt` (same adapter) onto `stream`,
// keeping at least the prompt's last token to prefill (its logits start
// the streams). Returns the tokens reused.
int Scheduler::reuse_prefix(int adapter, std::span<const int32_t> prompt, int stream) {
  if (options_.prefix_cache == 0) return 0;
  std::lock_guard<std::mutex> lock(mu_);
  CachedPrefix* best = nullptr;
  size_t best_len = 0;
  for (CachedPrefix& c : prefixes_) {
    if (c.adapter != adapter) continue;
    const size_t n = std::min(c.tokens.size(), prompt.size());
    const size_t common = static_cast<size_t>(
        std::mismatch(c.tokens.begin(), c.tokens.begin() + n, prompt.begin()).first - c.tokens.begin());
    if (common > best_len) {
      best = &c;
      best_len = common;
    }
  }
  const int reused = static_cast<int>(std::min(best_len, prompt.size() - 1));
  if (reused == 0) return 0;
  KvCache& kv = engine_->kv_cache();
  kv.fork_stream(best->stream, stream);
  kv.truncate_stream(stream, reused);
  best->last_used = ++prefix_clock_;
  ++stats_.prefix_hits;
  return reused;
}

// Keeps a prompt just prefilled on `stream` for later requests: its own
// engine stream shares the cells. Nothing changes when an entry already
// starts with it; entries it extends are dropped (it covers them); when there is no stream, no room in the budget or the cache is
// full, the oldest entries make way, and if that is not enough the prompt
// is not kept.
void Scheduler::remember_prefix(int adapter, std::span<const int32_t> prompt, int stream) {
  if (options_.prefix_cache == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  KvCache& kv = engine_->kv_cache();
  for (CachedPrefix& c : prefixes_) {
    if (c.adapter == adapter && c.tokens.size() >= prompt.size() &&
        std::equal(prompt.begin(), prompt.end(), c.tokens.begin())) {
      c.last_used = ++prefix_clock_;  // already kept, as it is or inside a longer one
      return;
    }
  }
  for (auto it = prefixes_.begin(); it != prefixes_.end();) {
    const bool covered = it->adapter == adapter && it->tokens.size() < prompt.size() &&
                         std::equal(it->tokens.begin(), it->tokens.end(), prompt.begin());
    if (!covered) {
      ++it;
      continue;
    }
    kv.clear_stream(it->stream);
    free_streams_.push_back(it->stream);
    stats_.prefix_cells -= static_cast<int64_t>(it->tokens.size());
    it = prefixes_.erase(it);
  }
  const int64_t cells = static_cast<int64_t>(prompt.size());
  auto fits = [&] {
    return static_cast<int>(prefixes_.size()) < options_.prefix_cache && !free_streams_.empty() &&
           stats_.cells_reserved + stats_.prefix_cells + cells <= n_cells_;
  };
  while (!fits() && evict_one_locked()) {
  }
  if (fits()) {
    const int slot = free_streams_.back();
    free_streams_.pop_back();
    kv.fork_stream(stream, slot);
    prefixes_.push_back({adapter, std::vector<int32_t>(prompt.begin(), prompt.end()), slot,
                         ++prefix_clock_});
    stats_.prefix_cells += cells;
  }
  stats_.prefix_entries = static_cast<int>(prefixes_.size());
  stats_.streams_free = static_cast<int>(free_streams_.size());
}

void Scheduler::deliver(std::vector<Finished>& out) {
  for (Finished& f : out) {
    if (f.on_done) f.on_done(std::move(f.result));
  }
  out.clear();
}

}  // namespace chorus
