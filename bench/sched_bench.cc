// The scheduler's throughput against the same requests one at a time, and
// against one request of k streams (the upper bound: k rows per step with
// no prompts in between). Every request is greedy and n = 1, request i on
// adapter i mod (adapters + 1) (the last one: the base model); the
// scheduler's tokens are checked against the one-at-a-time run.
//
// Then, with --cached-prompt N, the time to first token of an N-token
// prompt sent twice to a scheduler with a prefix cache (the second reuses
// the first's cells).
//
//   chorus_sched_bench MODEL [--lora FILE]... [--requests N] [--concurrency C]
//                      [--tokens T] [--threads N] [--rows R] [--cached-prompt N]
//
// Numbers are from one run on one machine: compare the ratios.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "decode/decode_plain.h"
#include "decode/multi_stream.h"
#include "model/lora.h"
#include "model/model.h"
#include "sched/scheduler.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus {
namespace {

struct Args {
  std::string model;
  std::vector<std::string> loras;
  int requests = 16;
  int concurrency = 8;
  int tokens = 32;
  int threads = 2;
  int rows = 64;
  int cached_prompt = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      check(i + 1 < argc, arg, "needs a value");
      return argv[++i];
    };
    if (arg == "--lora") {
      a.loras.push_back(value());
    } else if (arg == "--requests") {
      a.requests = std::stoi(value());
    } else if (arg == "--concurrency") {
      a.concurrency = std::stoi(value());
    } else if (arg == "--tokens") {
      a.tokens = std::stoi(value());
    } else if (arg == "--threads") {
      a.threads = std::stoi(value());
    } else if (arg == "--rows") {
      a.rows = std::stoi(value());
    } else if (arg == "--cached-prompt") {
      a.cached_prompt = std::stoi(value());
    } else if (a.model.empty() && arg[0] != '-') {
      a.model = arg;
    } else {
      throw Error(arg, "unknown option");
    }
  }
  check(!a.model.empty(), "usage", "chorus_sched_bench MODEL [--lora FILE]... [--requests N] "
                                   "[--concurrency C] [--tokens T] [--threads N] [--rows R] "
                                   "[--cached-prompt N]");
  check(a.requests >= 1 && a.concurrency >= 1 && a.concurrency <= 64 && a.tokens >= 1, "options",
        "requests >= 1, concurrency 1..64 and tokens >= 1");
  return a;
}

MultiStreamRequest request(const Model& model, int i, int n_adapters, int tokens) {
  MultiStreamRequest r;
  const char* const openings[] = {"Once upon a time", "One day, a little girl", "The sun was hot",
                                  "Tom and his dog"};
  r.prompt = model.tokenizer->encode(openings[i % 4], true);
  StreamSpec s;
  s.adapter = i % (n_adapters + 1) == n_adapters ? -1 : i % (n_adapters + 1);
  s.sampler.temperature = 0.0f;
  r.streams.push_back(s);
  r.limits.n_predict = tokens;
  r.limits.ignore_eos = true;
  r.limits.tokenizer = model.tokenizer.get();
  return r;
}

// Time to first token of one long prompt, sent twice; true when both
// answers are the same.
bool cached_prompt(Engine& engine, const Model& model, const Args& a) {
  SchedulerOptions so;
  so.prefix_cache = 4;
  Scheduler sched(engine, so);
  MultiStreamRequest r = request(model, 0, 0, a.tokens);
  const std::vector<int32_t> text = model.tokenizer->encode(" and they played in the park all day.", false);
  for (size_t i = 0; r.prompt.size() < static_cast<size_t>(a.cached_prompt); ++i) {
    r.prompt.push_back(text[i % text.size()]);
  }
  SchedResult first, second;
  for (SchedResult* out : {&first, &second}) {
    SchedRequest req;
    req.work = r;
    *out = sched.run(std::move(req));
  }
  const double t1 = first.streams[0].first_token_seconds, t2 = second.streams[0].first_token_seconds;
  const bool same = first.streams[0].tokens == second.streams[0].tokens;
  std::printf("%d-token prompt twice:  first token after %.3f s, then %.3f s from the prefix cache "
              "(%d tokens reused, %.1fx); answers %s\n",
              a.cached_prompt, t1, t2, second.cached_tokens, t1 / std::max(t2, 1e-9),
              same ? "identical" : "DIFFER");
  return same;
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  auto model = load_model(a.model);
  std::vector<LoraAdapter> loras;
  int max_rank = 0;
  for (const std::string& path : a.loras) {
    loras.push_back(load_lora(path, model->config));
    max_rank = std::max(max_rank, loras.back().max_rank);
  }
  const int n_adapters = static_cast<int>(loras.size());
  EngineOptions o;
  o.threads = a.threads;
  o.max_rows = a.rows;
  o.max_streams = std::max(8, a.concurrency);
  o.context = std::min(model->config.context_length, 4096);
  o.adapter_slots = n_adapters;
  o.adapter_max_rank = max_rank;
  Engine engine(*model, o);
  for (int i = 0; i < n_adapters; ++i) engine.adapters().load(fmt::format("a{}", i), loras[i]);
  std::printf("model %s, kernels %.*s, %d threads, %d rows per step, %d adapters\n", a.model.c_str(),
              static_cast<int>(engine.kernel_name().size()), engine.kernel_name().data(), a.threads,
              a.rows, n_adapters);

  std::vector<MultiStreamRequest> reqs;
  for (int i = 0; i < a.requests; ++i) reqs.push_back(request(*model, i, n_adapters, a.tokens));
  const double generated = static_cast<double>(a.requests) * a.tokens;

  // 1. One at a time.
  std::vector<std::vector<int32_t>> want;
  double t0 = now_seconds();
  for (const MultiStreamRequest& r : reqs) {
    engine.kv_cache().clear();
    want.push_back(run_streams(engine, r, [](int, int32_t) { return true; }).streams[0].tokens);
  }
  const double sequential = now_seconds() - t0;
  std::printf("one at a time:          %8.1f generated tok/s (%d requests x %d tokens, %.2f s)\n",
              generated / sequential, a.requests, a.tokens, sequential);

  // 2. One request of `concurrency` streams, each on its own adapter.
  {
    MultiStreamRequest r = reqs[0];
    r.streams.clear();
    for (int s = 0; s < a.concurrency; ++s) r.streams.push_back(reqs[s % a.requests].streams[0]);
    engine.kv_cache().clear();
    t0 = now_seconds();
    run_streams(engine, r, [](int, int32_t) { return true; });
    const double t = now_seconds() - t0;
    std::printf("one request, %2d streams: %8.1f generated tok/s\n", a.concurrency,
                static_cast<double>(a.concurrency) * a.tokens / t);
  }

  // 3. The scheduler, `concurrency` clients each sending its share in turn.
  int wrong = 0;
  {
    Scheduler sched(engine);
    std::vector<std::vector<int32_t>> got(reqs.size());
    t0 = now_seconds();
    std::vector<std::thread> clients;
    for (int c = 0; c < a.concurrency; ++c) {
      clients.emplace_back([&, c] {
        for (size_t i = c; i < reqs.size(); i += a.concurrency) {
          SchedRequest r;
          r.work = reqs[i];
          got[i] = sched.run(std::move(r)).streams[0].tokens;
        }
      });
    }
    for (std::thread& t : clients) t.join();
    const double scheduled = now_seconds() - t0;
    const SchedulerStats st = sched.stats();
    for (size_t i = 0; i < reqs.size(); ++i) wrong += got[i] != want[i] ? 1 : 0;
    std::printf("scheduler, %2d clients:  %8.1f generated tok/s (%.2fx one at a time), %lld steps, "
                "%.1f rows per step, %d of %d responses differ from their solo run\n",
                a.concurrency, generated / scheduled, sequential / scheduled,
                static_cast<long long>(st.steps), static_cast<double>(st.rows) / std::max<int64_t>(1, st.steps),
                wrong, a.requests);
  }  // one scheduler at a time owns the engine
  if (a.cached_prompt > 0) wrong += cached_prompt(engine, *model, a) ? 0 : 1;
  return wrong == 0 ? 0 : 1;
}

}  // namespace
}  // namespace chorus

int main(int argc, char** argv) {
  try {
    return chorus::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chorus_sched_bench: error: %s\n", e.what());
    return 1;
  }
}
