// `chorus bench --streams-vs-sequential`; see bench_streams.h.
//
// Both sides run through the same scheduler (run_streams) on the same
// engine: one request of k streams, against k requests of one stream each
// (stream i alone: its own adapter and first token). Every stream decodes
// exactly n tokens (EOS ignored), so both sides do the same token work and
// the ratio of wall times is the gain of sharing the prompt and the steps.
// Passes and sequential runs alternate so slow drift of a noisy machine
// hits both sides alike.
#include "tools/bench_streams.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "decode/multi_stream.h"
#include "engine/engine.h"
#include "model/lora.h"
#include "model/model.h"
#include "tools/bench_adapters.h"
#include "tools/engine_options.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

struct Args {
  std::string model;
  std::string tokenizer;
  int n_prompt = 64;
  int n_gen = 32;
  std::vector<int> streams = {1, 4, 8};
  int threads = 2;
  int repetitions = 3;
  int ubatch = 64;
  std::string weights = "auto";
  std::string output_head = "auto";
  std::string kv_type = "f16";
  std::vector<std::string> lora;
  int lora_rank = 0;
  float lora_alpha = 0.0f;
  bool json = false;
  std::string output_file;
};

// The value of one of bench's options, or `fallback` when it was not given.
template <typename T>
T given_or(CLI::App* app, const char* name, T fallback) {
  const CLI::Option* o = app->get_option_no_throw(name);
  return o != nullptr && o->count() > 0 ? o->as<T>() : fallback;
}

Args read_args(CLI::App* bench) {
  Args a;
  a.model = given_or<std::string>(bench, "--model", "");
  a.tokenizer = given_or<std::string>(bench, "--tokenizer", "");
  const std::vector<int> prompts = given_or(bench, "--n-prompt", std::vector<int>{a.n_prompt});
  check(prompts.size() == 1, "-p", "--streams-vs-sequential takes one prompt length, got {}",
        prompts.size());
  a.n_prompt = prompts[0];
  a.n_gen = given_or(bench, "--n-gen", a.n_gen);
  a.streams = given_or(bench, "--streams", a.streams);
  a.threads = given_or(bench, "--threads", a.threads);
  a.repetitions = given_or(bench, "--repetitions", a.repetitions);
  a.ubatch = given_or(bench, "--ubatch", a.ubatch);
  a.weights = given_or(bench, "--weights", a.weights);
  a.output_head = given_or(bench, "--output-head", a.output_head);
  a.kv_type = given_or(bench, "--kv-type", a.kv_type);
  a.lora = given_or(bench, "--lora", a.lora);
  a.lora_rank = given_or(bench, "--lora-rank", a.lora_rank);
  a.lora_alpha = given_or(bench, "--lora-alpha", a.lora_alpha);
  a.json = given_or(bench, "--json", false);
  a.output_file = given_or<std::string>(bench, "--output", "");
  return a;
}

struct Row {
  int k = 0;
  std::vector<double> pass, sequential;  // seconds per repetition
  double pass_mean = 0, sequential_mean = 0;
  double speedup() const { return pass_mean > 0 ? sequential_mean / pass_mean : 0; }
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

// Issue 5's targets: 3x at k = 4 (2.5x with one adapter per stream), 5x at k = 8.
double target(int k, bool adapters) {
  if (k == 4) return adapters ? 2.5 : 3.0;
  if (k == 8) return 5.0;
  return 0;
}

int run(const Args& a) {
  check(!a.model.empty(), "-m", "missing: the model to measure");
  check(a.n_prompt >= 1 && a.n_prompt <= 65536, "-p", "prompt length must be 1..65536, got {}",
        a.n_prompt);
  check(a.n_gen >= 1 && a.n_gen <= 65536, "-n", "new tokens must be 1..65536, got {}", a.n_gen);
  check(!a.streams.empty(), "--streams", "give at least one stream count");
  for (int k : a.streams) {
    check(k >= 1 && k <= KvCache::kMaxStreams, "--streams", "stream counts must be 1..{}, got {}",
          KvCache::kMaxStreams, k);
  }
  check(a.threads >= 1 && a.threads <= 256, "-t", "thread count must be 1..256, got {}", a.threads);
  check(a.repetitions >= 1 && a.repetitions <= 1000, "-r", "repetitions must be 1..1000, got {}",
        a.repetitions);
  check(a.ubatch >= 1 && a.ubatch <= 4096, "--ubatch", "rows per step must be 1..4096, got {}",
        a.ubatch);
  check(a.lora_rank >= 0 && a.lora_rank <= 1024, "--lora-rank", "must be 0..1024, got {}",
        a.lora_rank);

  const double t_load = now_seconds();
  const auto model = load_model(a.model, a.tokenizer);
  const ModelConfig& c = model->config;
  const int max_k = *std::max_element(a.streams.begin(), a.streams.end());
  const std::vector<LoraAdapter> adapters = bench_adapters(a.lora, c, max_k, a.lora_rank, a.lora_alpha, 200);
  const bool with_adapters = !adapters.empty();
  // Cells for the biggest pass: a prompt per adapter and every stream's tokens.
  const int64_t cells = static_cast<int64_t>(with_adapters ? max_k : 1) * a.n_prompt +
                        static_cast<int64_t>(max_k) * a.n_gen;
  check(a.n_prompt + a.n_gen <= c.context_length && cells <= (int64_t{1} << 24), "-p",
        "{} prompt + {} new tokens exceed the model's context {}", a.n_prompt, a.n_gen,
        c.context_length);

  EngineOptions eo;
  eo.max_rows = std::max(a.ubatch, max_k);
  eo.max_streams = max_k;
  eo.context = static_cast<int>(cells);
  eo.threads = a.threads;
  eo.weights = parse_weight_format(a.weights, "--weights");
  eo.output = parse_weight_format(a.output_head, "--output-head");
  eo.kv_type = parse_kv_type(a.kv_type, "--kv-type");
  int max_rank = 0;
  for (const LoraAdapter& l : adapters) max_rank = std::max(max_rank, l.max_rank);
  eo.adapter_slots = static_cast<int>(adapters.size());
  eo.adapter_max_rank = max_rank;
  Engine engine(*model, eo);
  for (size_t i = 0; i < adapters.size(); ++i) {
    engine.adapters().load(fmt::format("stream{}", i), adapters[i]);
  }
  const double load_seconds = now_seconds() - t_load;

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, c.n_vocab - 1);
  MultiStreamRequest base;
  base.prompt.resize(a.n_prompt);
  for (int32_t& t : base.prompt) t = token(rng);
  base.limits.n_predict = a.n_gen;
  base.limits.ignore_eos = true;
  // Stream i: its own adapter (if any) and the i-th likeliest first token.
  auto spec = [&](int i) {
    StreamSpec s;
    s.sampler.temperature = 0.0f;
    s.first_token_rank = i;
    s.adapter = with_adapters ? i % static_cast<int>(adapters.size()) : -1;
    return s;
  };
  const OnStreamToken ignore = [](int, int32_t) { return true; };
  auto pass = [&](int k) {
    MultiStreamRequest r = base;
    for (int i = 0; i < k; ++i) r.streams.push_back(spec(i));
    engine.kv_cache().clear();
    const double t0 = now_seconds();
    run_streams(engine, r, ignore);
    return now_seconds() - t0;
  };
  auto sequential = [&](int k) {
    double total = 0;
    for (int i = 0; i < k; ++i) {
      MultiStreamRequest r = base;
      r.streams = {spec(i)};
      engine.kv_cache().clear();
      const double t0 = now_seconds();
      run_streams(engine, r, ignore);
      total += now_seconds() - t0;
    }
    return total;
  };

  pass(max_k);  // warm-up: pages, caches, thread pool
  std::vector<Row> rows;
  for (int k : a.streams) {
    Row row;
    row.k = k;
    for (int rep = 0; rep < a.repetitions; ++rep) {
      row.pass.push_back(pass(k));
      row.sequential.push_back(sequential(k));
    }
    row.pass_mean = mean(row.pass);
    row.sequential_mean = mean(row.sequential);
    rows.push_back(std::move(row));
  }

  const size_t peak = peak_rss_bytes();
  nlohmann::json j;
  j["model"] = std::filesystem::path(model->path).filename().string();
  j["path"] = model->path;
  j["kernels"] = std::string(engine.kernel_name());
  j["threads"] = a.threads;
  j["n_prompt"] = a.n_prompt;
  j["n_gen"] = a.n_gen;
  j["repetitions"] = a.repetitions;
  j["adapters"] = with_adapters ? nlohmann::json(adapters.size()) : nlohmann::json(0);
  j["adapter_rank"] = max_rank;
  j["load_s"] = load_seconds;
  j["peak_rss_bytes"] = peak;
  nlohmann::json jr = nlohmann::json::array();
  for (const Row& r : rows) {
    const double tokens = static_cast<double>(r.k) * a.n_gen;
    jr.push_back({{"streams", r.k},
                  {"pass_s", r.pass_mean},
                  {"sequential_s", r.sequential_mean},
                  {"speedup", r.speedup()},
                  {"target", target(r.k, with_adapters)},
                  {"pass_tokens_per_s", tokens / r.pass_mean},
                  {"sequential_tokens_per_s", tokens / r.sequential_mean},
                  {"pass_samples_s", r.pass},
                  {"sequential_samples_s", r.sequential}});
  }
  j["results"] = jr;
  const std::string dumped = j.dump(2);
  if (!a.output_file.empty()) {
    std::ofstream out(a.output_file);
    check(static_cast<bool>(out), a.output_file, "cannot open for writing");
    out << dumped << "\n";
    check(static_cast<bool>(out), a.output_file, "write failed");
  }
  if (a.json) {
    std::printf("%s\n", dumped.c_str());
    return 0;
  }
  const std::string adapters_label =
      with_adapters ? fmt::format("one rank-{} adapter per stream", max_rank) : "base model";
  std::printf(
      "k streams in one pass vs k sequential runs: %s, %s, %d threads, %d-token prompt, "
      "%d new tokens per stream, %s, mean of %d\n\n",
      j["model"].get<std::string>().c_str(), std::string(engine.kernel_name()).c_str(), a.threads,
      a.n_prompt, a.n_gen, adapters_label.c_str(), a.repetitions);
  std::printf(
      "| k | one pass ms | sequential ms | speed-up | target | pass tok/s | sequential tok/s |\n");
  std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    const double tokens = static_cast<double>(r.k) * a.n_gen;
    const double t = target(r.k, with_adapters);
    std::printf(
        "| %d | %.1f | %.1f | %.2fx | %s | %.1f | %.1f |\n", r.k, r.pass_mean * 1000,
        r.sequential_mean * 1000, r.speedup(),
        t > 0 ? fmt::format("{:.1f}x {}", t, r.speedup() >= t ? "met" : "missed").c_str() : "-",
        tokens / r.pass_mean, tokens / r.sequential_mean);
  }
  std::printf("\nload %.0f ms | peak RSS %.1f MiB\n", load_seconds * 1000, peak / 1048576.0);
  return 0;
}

}  // namespace

std::function<Command()> add_streams_vs_sequential(CLI::App* bench) {
  auto flag = std::make_shared<bool>(false);
  bench->add_flag("--streams-vs-sequential", *flag,
                  "Instead: k streams in one pass vs k single-stream runs (-p 64, -n 32, "
                  "--streams 1,4,8 unless given; --lora/--lora-rank: an adapter per stream)");
  return [flag, bench]() -> Command {
    if (!*flag) return {};
    return [bench] { return run(read_args(bench)); };
  };
}

}  // namespace chorus::tools
