// The scheduler on stories260K, f32 and INT4 (Q4_0, as `chorus quantize`
// writes it): many requests with mixed adapters and stream counts arriving
// at random steps each give exactly their solo run_streams tokens;
// cancellation mid-prefill and mid-decode frees the cells (a waiting
// request then runs); a full queue is refused with QueueFull; a long prompt
// does not stop the others' tokens (counted in steps, not time); and
// clients on several threads (the ThreadSanitizer build runs these).
#include "sched/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "decode/decode_plain.h"
#include "gguf/quantize_file.h"
#include "model/lora.h"
#include "model/model.h"
#include "test_data/stories260k.h"

namespace chorus {
namespace {

const char* const kStyles[] = {"dog", "sad", "bird"};

struct Variant {
  bool int4;
  int threads;
};

std::string variant_name(const ::testing::TestParamInfo<Variant>& info) {
  return std::string(info.param.int4 ? "Q4_0" : "F32") + "_" + std::to_string(info.param.threads) +
         "threads";
}

SamplerParams greedy() {
  SamplerParams p;
  p.temperature = 0.0f;
  return p;
}

// Everything a request reported, as seen from the callbacks.
struct Trace {
  std::vector<std::vector<int32_t>> tokens;  // [stream]
  std::vector<int64_t> steps;                // the step of each token, all streams
  bool done = false;
  SchedResult result;
};

class SchedulerTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    std::string path = test_data::source_path("models/stories260K.gguf");
    if (GetParam().int4) {
      quantized_ = (std::filesystem::path(::testing::TempDir()) /
                    ("chorus_sched_" + std::to_string(::getpid()) + "_q4_0.gguf"))
                       .string();
      gguf::QuantizeFileOptions q;
      q.type = gguf::TensorType::kQ4_0;
      gguf::quantize_file(path, quantized_, q);
      path = quantized_;
    }
    model_ = load_model(path);
    std::ifstream in(test_data::source_path("tests/data/exactness_prompts.txt"));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) prompts_.push_back(model_->tokenizer->encode(line, true));
    }
    ASSERT_EQ(prompts_.size(), 20u);
    for (const char* style : kStyles) {
      loras_.push_back(load_lora(
          test_data::source_path(std::string("models/adapters/") + style + ".gguf"), model_->config));
    }
  }
  void TearDown() override {
    if (!quantized_.empty()) std::filesystem::remove(quantized_);
  }

  // dog, sad and bird in slots 0-2.
  std::unique_ptr<Engine> engine(int max_rows, int max_streams, int context) const {
    EngineOptions o;
    o.max_rows = max_rows;
    o.max_streams = max_streams;
    o.context = context;
    o.threads = GetParam().threads;
    o.min_parallel_work = 0;  // fork every stage, as at real sizes
    o.adapter_slots = 3;
    o.adapter_max_rank = 16;
    auto e = std::make_unique<Engine>(*model_, o);
    for (size_t i = 0; i < loras_.size(); ++i) e->adapters().load(kStyles[i], loras_[i]);
    return e;
  }

  MultiStreamRequest work(std::vector<int32_t> prompt, std::vector<StreamSpec> streams,
                          int n_predict, bool ignore_eos = true) const {
    MultiStreamRequest w;
    w.prompt = std::move(prompt);
    w.streams = std::move(streams);
    w.limits.n_predict = n_predict;
    w.limits.ignore_eos = ignore_eos;
    w.limits.tokenizer = model_->tokenizer.get();
    return w;
  }

  StreamSpec stream(int adapter, int rank = -1, std::vector<int32_t> suffix = {}) const {
    StreamSpec s;
    s.adapter = adapter;
    s.first_token_rank = rank;
    s.sampler = greedy();
    s.suffix = std::move(suffix);
    return s;
  }

  // The request alone: run_streams with the plain loop on an engine of its
  // own (same weights and adapters, nothing else in the cache).
  MultiStreamResult solo(const MultiStreamRequest& w) {
    if (!solo_engine_) solo_engine_ = engine(64, 8, 1024);
    solo_engine_->kv_cache().clear();
    return run_streams(*solo_engine_, w, [](int, int32_t) { return true; }, decode_plain);
  }

  void expect_solo(const MultiStreamRequest& w, const SchedResult& got, const std::string& what) {
    const MultiStreamResult want = solo(w);
    ASSERT_EQ(got.streams.size(), want.streams.size()) << what;
    for (size_t s = 0; s < want.streams.size(); ++s) {
      EXPECT_EQ(got.streams[s].tokens, want.streams[s].tokens) << what << ", stream " << s;
      EXPECT_EQ(got.streams[s].stop_reason, want.streams[s].stop_reason) << what << ", stream " << s;
    }
  }

  // A request whose callbacks fill `trace` (the scheduler's thread writes,
  // tests read after done under mu_).
  SchedRequest traced(MultiStreamRequest w, Trace* trace) {
    trace->tokens.assign(w.streams.size(), {});
    SchedRequest r;
    r.work = std::move(w);
    r.on_token = [this, trace](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      trace->tokens[e.stream].push_back(e.token);
      trace->steps.push_back(e.step);
      cv_.notify_all();
      return true;
    };
    r.on_done = [this, trace](SchedResult res) {
      std::lock_guard<std::mutex> lock(mu_);
      trace->result = std::move(res);
      trace->done = true;
      cv_.notify_all();
    };
    return r;
  }

  void random_arrivals(int prefix_cache);

  std::string quantized_;
  std::unique_ptr<Model> model_;
  std::vector<std::vector<int32_t>> prompts_;
  std::vector<LoraAdapter> loras_;
  std::unique_ptr<Engine> solo_engine_;
  std::mutex mu_;
  std::condition_variable cv_;
};

// 24 requests (1-3 streams, adapters none/dog/sad/bird mixed within a
// request, greedy or smart-reply first tokens, some with suffixes, some
// stopping at end of generation or at a stop string) arrive at random
// steps on an engine of 8 rows per step, 12 streams and 640 cells, so
// requests wait for room, prompts are chunked beside other streams' decode
// rows, steps mix adapters and decoding streams take turns when they
// outnumber the rows.
// The second round keeps up to 6 prompts in the prefix cache, which the
// crowding keeps evicting.
TEST_P(SchedulerTest, RandomArrivalsEqualTheirSoloRuns) {
  for (const int prefix_cache : {0, 6}) {
    SCOPED_TRACE("prefix cache " + std::to_string(prefix_cache));
    random_arrivals(prefix_cache);
  }
}

void SchedulerTest::random_arrivals(int prefix_cache) {
  auto e = engine(8, 12, 640);
  SchedulerOptions so;
  so.own_thread = false;
  so.prefix_cache = prefix_cache;
  Scheduler sched(*e, so);
  std::mt19937 rng(14);
  struct Planned {
    int64_t arrival;
    MultiStreamRequest work;
  };
  std::vector<Planned> plan;
  for (int r = 0; r < 24; ++r) {
    const int k = 1 + static_cast<int>(rng() % 3);
    const bool smart_reply = k > 1 && rng() % 2 == 0;
    std::vector<StreamSpec> streams;
    for (int s = 0; s < k; ++s) {
      std::vector<int32_t> suffix;
      if (rng() % 4 == 0) {  // a few tokens of another story, without BOS
        const auto& other = prompts_[rng() % prompts_.size()];
        suffix.assign(other.begin() + 1, other.begin() + std::min<size_t>(other.size(), 5));
      }
      streams.push_back(stream(static_cast<int>(rng() % 4) - 1, smart_reply ? s : -1, suffix));
    }
    const int n_predict = 4 + static_cast<int>(rng() % 37);
    plan.push_back({static_cast<int64_t>(rng() % 120),
                    work(prompts_[rng() % prompts_.size()], streams, n_predict, r % 3 != 0)});
  }
  std::stable_sort(plan.begin(), plan.end(),
                   [](const Planned& a, const Planned& b) { return a.arrival < b.arrival; });

  std::vector<Trace> traces(plan.size());
  size_t next = 0;
  int max_running = 0;
  int64_t step = 0;
  for (; step < 5000; ++step) {
    while (next < plan.size() && plan[next].arrival <= step) {
      sched.submit(traced(plan[next].work, &traces[next]));
      ++next;
    }
    const bool worked = sched.run_step();
    max_running = std::max(max_running, sched.stats().running);
    if (!worked && next == plan.size()) break;
  }
  ASSERT_LT(step, 5000);
  int waited = 0;
  for (size_t r = 0; r < plan.size(); ++r) {
    ASSERT_TRUE(traces[r].done) << "request " << r;
    const SchedResult& got = traces[r].result;
    EXPECT_FALSE(got.cancelled);
    EXPECT_EQ(got.error, "");
    waited += got.admitted_step > got.submitted_step ? 1 : 0;
    for (size_t s = 0; s < got.streams.size(); ++s) {
      EXPECT_EQ(traces[r].tokens[s], got.streams[s].tokens);  // the callback saw what the result holds
    }
    expect_solo(plan[r].work, got, "request " + std::to_string(r));
  }
  // The test is only as good as its crowding: several requests ran at once
  // and some had to wait for room.
  EXPECT_GE(max_running, 3);
  EXPECT_GT(waited, 0);
  const SchedulerStats st = sched.stats();
  EXPECT_GT(st.rows_deferred, 0);
  EXPECT_EQ(st.cells_reserved, 0);
  EXPECT_EQ(st.running, 0);
  EXPECT_EQ(st.queued, 0);
  EXPECT_EQ(st.streams_free, 12 - st.prefix_entries);
  EXPECT_GT(st.prefill_rows, 0);
  if (prefix_cache == 0) {
    EXPECT_EQ(e->kv_cache().n_cells_used(), 0);
  } else {
    EXPECT_GT(st.prefix_hits, 0);
    EXPECT_GT(st.prefix_evictions, 0);
    EXPECT_LE(st.prefix_entries, prefix_cache);
    EXPECT_LE(e->kv_cache().n_cells_used(), st.prefix_cells);  // only the cache holds cells
  }
}

// A prompt extending a cached one reuses its cells and prefills only the
// rest; the same prompt again reuses all but its last token; another
// adapter reuses nothing. Every output equals its solo run.
TEST_P(SchedulerTest, PrefixCacheReusesPromptsOfTheSameAdapter) {
  auto e = engine(8, 8, 1024);
  SchedulerOptions so;
  so.own_thread = false;
  so.prefix_cache = 4;
  Scheduler sched(*e, so);
  std::vector<int32_t> p = prompts_[0];
  p.insert(p.end(), prompts_[1].begin() + 1, prompts_[1].end());
  std::vector<int32_t> longer = p;
  longer.insert(longer.end(), prompts_[2].begin() + 1, prompts_[2].end());
  const MultiStreamRequest x = work(p, {stream(0)}, 20);
  const MultiStreamRequest y = work(longer, {stream(0)}, 20);
  const MultiStreamRequest z = work(p, {stream(0, 0), stream(0, 1)}, 20);
  const MultiStreamRequest w = work(p, {stream(1)}, 20);
  auto serve = [&](const MultiStreamRequest& req, int64_t* prefill_rows) {
    Trace t;
    const int64_t before = sched.stats().prefill_rows;
    sched.submit(traced(req, &t));
    while (sched.run_step()) {
    }
    EXPECT_TRUE(t.done);
    *prefill_rows = sched.stats().prefill_rows - before;
    return t.result;
  };
  int64_t rows = 0;
  const SchedResult rx = serve(x, &rows);
  EXPECT_EQ(rx.cached_tokens, 0);
  EXPECT_EQ(rows, static_cast<int64_t>(p.size()));
  expect_solo(x, rx, "X");
  const SchedResult ry = serve(y, &rows);
  EXPECT_EQ(ry.cached_tokens, static_cast<int>(p.size()));
  EXPECT_EQ(rows, static_cast<int64_t>(longer.size() - p.size()));
  expect_solo(y, ry, "Y, extending X's prompt");
  const SchedResult rz = serve(z, &rows);
  EXPECT_EQ(rz.cached_tokens, static_cast<int>(p.size()) - 1);
  EXPECT_EQ(rows, 1);
  expect_solo(z, rz, "Z, X's prompt again");
  const SchedResult rw = serve(w, &rows);
  EXPECT_EQ(rw.cached_tokens, 0) << "the cached prompts are dog's, W is on sad";
  expect_solo(w, rw, "W, X's prompt on another adapter");
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.prefix_hits, 2);
  EXPECT_EQ(st.prefix_entries, 2);  // Y's prompt (which replaced X's, and covers Z's) and W's
}

// A long prompt (B) is prefilled in chunks beside A's decode rows: A gets a
// token in every step of B's prefill, and C, a short prompt arriving after
// B, gets its first token while B's prompt is still going in.
TEST_P(SchedulerTest, LongPromptDoesNotStopOthersTokens) {
  auto e = engine(8, 8, 1024);
  SchedulerOptions so;
  so.own_thread = false;
  Scheduler sched(*e, so);
  std::vector<int32_t> long_prompt = prompts_[0];
  for (size_t p = 1; long_prompt.size() < 100; ++p) {
    long_prompt.insert(long_prompt.end(), prompts_[p].begin() + 1, prompts_[p].end());
  }
  const MultiStreamRequest a = work(prompts_[1], {stream(0)}, 80);
  const MultiStreamRequest b = work(long_prompt, {stream(1)}, 10);
  const MultiStreamRequest c = work(prompts_[2], {stream(-1), stream(2)}, 10);
  Trace ta, tb, tc;
  sched.submit(traced(a, &ta));
  while (ta.tokens[0].empty()) ASSERT_TRUE(sched.run_step());
  sched.submit(traced(b, &tb));
  ASSERT_TRUE(sched.run_step());
  sched.submit(traced(c, &tc));
  while (sched.run_step()) {
  }
  ASSERT_TRUE(ta.done && tb.done && tc.done);
  const int64_t b_admitted = tb.result.admitted_step;
  const int64_t b_first = tb.steps.front();
  EXPECT_GE(b_first - b_admitted, 10) << "B's prompt should take many steps of 8 rows";
  for (int64_t s = b_admitted; s < b_first; ++s) {
    EXPECT_TRUE(std::count(ta.steps.begin(), ta.steps.end(), s) == 1) << "A got no token in step " << s;
  }
  EXPECT_LT(tc.steps.front(), b_first) << "C's short prompt waited for B's long one";
  expect_solo(a, ta.result, "A");
  expect_solo(b, tb.result, "B");
  expect_solo(c, tc.result, "C");
}

// A fills most of the cache, so B waits; cancelling A while its prompt is
// going in (no token yet) or while it decodes frees its cells and B runs.
TEST_P(SchedulerTest, CancellationFreesCellsMidPrefillAndMidDecode) {
  for (const bool mid_decode : {false, true}) {
    SCOPED_TRACE(mid_decode ? "mid-decode" : "mid-prefill");
    auto e = engine(8, 8, 320);
    SchedulerOptions so;
    so.own_thread = false;
    Scheduler sched(*e, so);
    std::vector<int32_t> long_prompt = prompts_[3];
    for (size_t p = 4; long_prompt.size() < 60; ++p) {
      long_prompt.insert(long_prompt.end(), prompts_[p].begin() + 1, prompts_[p].end());
    }
    const MultiStreamRequest a = work(long_prompt, {stream(0), stream(1)}, 80);
    const MultiStreamRequest b = work(prompts_[5], {stream(2), stream(-1)}, 60);
    Trace ta, tb;
    const uint64_t id_a = sched.submit(traced(a, &ta));
    sched.submit(traced(b, &tb));
    ASSERT_TRUE(sched.run_step());
    ASSERT_TRUE(sched.run_step());
    if (mid_decode) {
      while (ta.tokens[0].size() < 5) ASSERT_TRUE(sched.run_step());
    } else {
      ASSERT_TRUE(ta.tokens[0].empty() && ta.tokens[1].empty()) << "A's prompt should still be going in";
    }
    EXPECT_EQ(sched.stats().queued, 1) << "B should wait for A's cells";
    EXPECT_EQ(tb.result.admitted_step, -1);
    EXPECT_GT(e->kv_cache().n_cells_used(), 0);

    EXPECT_TRUE(sched.cancel(id_a));
    while (sched.run_step()) {
    }
    EXPECT_FALSE(sched.cancel(id_a)) << "A has ended";
    ASSERT_TRUE(ta.done && tb.done);
    EXPECT_TRUE(ta.result.cancelled);
    const MultiStreamResult want_a = solo(a);
    for (int s = 0; s < 2; ++s) {
      EXPECT_EQ(ta.result.streams[s].stop_reason, StopReason::kCancelled);
      const std::vector<int32_t>& got = ta.result.streams[s].tokens;
      EXPECT_LT(got.size(), 80u);
      EXPECT_TRUE(std::equal(got.begin(), got.end(), want_a.streams[s].tokens.begin()))
          << "stream " << s << ": what A reported before the cancel is its solo run's start";
      if (!mid_decode) {
        EXPECT_TRUE(got.empty());
      }
    }
    EXPECT_FALSE(tb.result.cancelled);
    EXPECT_GE(tb.result.admitted_step, ta.result.finished_step);
    expect_solo(b, tb.result, "B after A's cancel");
    EXPECT_EQ(sched.stats().cells_reserved, 0);
    EXPECT_EQ(e->kv_cache().n_cells_used(), 0);
  }
}

TEST_P(SchedulerTest, QueueFullIsRefusedAndImpossibleRequestsAreErrors) {
  auto e = engine(8, 4, 256);
  SchedulerOptions so;
  so.own_thread = false;
  so.max_queue = 2;
  Scheduler sched(*e, so);
  const MultiStreamRequest w = work(prompts_[0], {stream(-1)}, 8);
  Trace t1, t2, t3;
  sched.submit(traced(w, &t1));
  const uint64_t second = sched.submit(traced(w, &t2));
  try {
    sched.submit(traced(w, &t3));
    ADD_FAILURE() << "a third request should be refused";
  } catch (const QueueFull& err) {
    EXPECT_STREQ(err.what(),
                 "scheduler: the queue is full: 2 requests are waiting for room (max_queue = 2); try "
                 "again later");
  }
  EXPECT_EQ(sched.stats().rejected, 1);

  // Requests that could never run are errors, not QueueFull (400, not 503).
  auto refused = [&](MultiStreamRequest bad) -> std::string {
    try {
      Trace t;
      sched.submit(traced(std::move(bad), &t));
    } catch (const QueueFull&) {
      return "QueueFull";
    } catch (const Error& err) {
      return err.what();
    }
    return "accepted";
  };
  EXPECT_EQ(refused(work(prompts_[0], {stream(-1), stream(0), stream(1)}, 100)),
            "streams: 3 streams need " +
                std::to_string(3 * prompts_[0].size() + 300) +
                " KV cells (the prompt once per adapter, each suffix, 100 new tokens each) but the "
                "cache holds 256 (use a bigger context, fewer streams or fewer tokens)");
  EXPECT_EQ(refused(work(prompts_[0], {stream(1), stream(1), stream(1), stream(1), stream(1)}, 4)),
            "streams: 5 streams exceed the engine's capacity of 4");
  StreamSpec unloaded = stream(-1);
  unloaded.adapter = 3;
  EXPECT_EQ(refused(work(prompts_[0], {unloaded}, 4)), "stream 0: adapter slot 3 is not loaded (3 slots)");

  // A cancelled queued request leaves room in the queue.
  EXPECT_TRUE(sched.cancel(second));
  ASSERT_TRUE(sched.run_step());
  EXPECT_TRUE(t2.done && t2.result.cancelled && t2.result.admitted_step == -1);
  Trace t4;
  sched.submit(traced(w, &t4));
  while (sched.run_step()) {
  }
  expect_solo(w, t1.result, "first");
  expect_solo(w, t4.result, "after the cancelled one");
}

// Clients on four threads, each waiting for its requests with run(), the
// scheduler on its own thread; then one cancelled from another thread
// mid-decode. What ThreadSanitizer checks (scripts/test.sh --tsan).
TEST_P(SchedulerTest, ThreadedClientsAndCancelFromAnotherThread) {
  auto e = engine(16, 12, 1024);
  std::vector<MultiStreamRequest> works;
  for (int r = 0; r < 8; ++r) {
    std::vector<StreamSpec> streams;
    for (int s = 0; s <= r % 3; ++s) streams.push_back(stream((r + s) % 4 - 1));
    works.push_back(work(prompts_[r], streams, 12 + 3 * r));
  }
  std::vector<SchedResult> results(works.size());
  const MultiStreamRequest long_one = work(prompts_[9], {stream(0), stream(2)}, 300);
  Trace cancelled;
  {
    Scheduler sched(*e);
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        for (size_t r = c; r < works.size(); r += 4) {
          SchedRequest req;
          req.work = works[r];
          results[r] = sched.run(std::move(req));
        }
      });
    }
    const uint64_t id = sched.submit(traced(long_one, &cancelled));
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return cancelled.tokens[0].size() >= 5; });
    }
    EXPECT_TRUE(sched.cancel(id));
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return cancelled.done; });
    }
    for (std::thread& t : clients) t.join();
    const SchedulerStats st = sched.stats();
    EXPECT_EQ(st.cells_reserved, 0);
    EXPECT_EQ(st.running + st.queued, 0);
  }  // the scheduler's thread has ended: the cache may be read
  EXPECT_EQ(e->kv_cache().n_cells_used(), 0);
  for (size_t r = 0; r < works.size(); ++r) expect_solo(works[r], results[r], "request " + std::to_string(r));
  EXPECT_TRUE(cancelled.result.cancelled);
  const MultiStreamResult want = solo(long_one);
  for (int s = 0; s < 2; ++s) {
    const std::vector<int32_t>& got = cancelled.result.streams[s].tokens;
    EXPECT_LT(got.size(), 300u);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.streams[s].tokens.begin())) << "stream " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Weights, SchedulerTest,
                         ::testing::Values(Variant{false, 1}, Variant{true, 2}), variant_name);

}  // namespace
}  // namespace chorus
