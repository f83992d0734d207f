// `chorus bench`: prefill, decode and batched-decode speed of the step engine,
// in the manner of llama.cpp's llama-bench: fixed pseudo-random token ids, one
// warm-up run per test, then -r timed repetitions reported as mean ± stddev
// tokens/s, plus load time, packed weight bytes, KV bytes and peak RSS.
// Then the cost of one step by its number of rows (what extra streams, tree
// rows and batched requests cost) and a read-bandwidth probe, so decode can
// be stated as a share of what the machine's memory allows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "model/lora.h"
#include "model/model.h"
#include "tools/bench_adapters.h"
#include "tools/bench_streams.h"
#include "tools/commands.h"
#include "tools/read_bandwidth.h"
#include "tools/runtime_flags.h"
#include "tools/step_cost.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

struct BenchArgs {
  std::string model;
  std::string tokenizer;
  std::vector<int> prompt = {512};
  int n_gen = 128;
  std::vector<int> streams = {4, 8};
  int threads = 2;
  int repetitions = 3;
  int ubatch = 64;
  std::string weights = "auto";
  std::string output_head = "auto";
  std::string kv_type = "f16";
  int bandwidth_mib = 256;  // read-bandwidth probe buffer; 0 skips it
  bool json = false;
  std::string output_file;
  // Adapters: files to load, or random ones of this rank (written to a
  // temporary directory and loaded like any file).
  std::vector<std::string> lora;
  int lora_rank = 0;
  int lora_count = 4;
  float lora_alpha = 0.0f;  // 0: 4 x rank, the paper's ratio
};

enum class TestKind { kPrefill, kDecode, kStreams };

struct TestSpec {
  TestKind kind;
  int tokens;   // prompt length, or decode tokens per stream
  int streams;  // 1 except for kStreams
  std::string name;
  int adapters = 0;  // 0: base model; k: stream s uses adapter slot s % k
};

// Rows per step in the step-cost table.
constexpr int kStepRows[] = {1, 2, 4, 8, 16, 32};

struct StepCost {
  int rows;
  double ms;
};

struct TestResult {
  TestSpec spec;
  std::vector<double> tps;  // one per repetition
  double mean = 0;
  double stddev = 0;
};

WeightFormat parse_format(const std::string& s, const char* option) {
  if (s == "auto") return WeightFormat::kAuto;
  if (s == "int4") return WeightFormat::kInt4;
  if (s == "int8") return WeightFormat::kInt8;
  if (s == "f32") return WeightFormat::kF32;
  throw Error(option, fmt::format("must be auto, int4, int8 or f32, got '{}'", s));
}

std::string basename_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string human_bytes(double bytes) {
  if (bytes >= 1024.0 * 1048576.0) return fmt::format("{:.2f} GiB", bytes / (1024.0 * 1048576.0));
  if (bytes >= 1048576.0) return fmt::format("{:.2f} MiB", bytes / 1048576.0);
  return fmt::format("{:.2f} KiB", bytes / 1024.0);
}

std::string human_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
  return fmt::format("{:.2f} K", n / 1e3);
}

int64_t count_params(const Model& m) {
  int64_t n = 0;
  auto add = [&](const WeightView& w) { n += w.rows * w.cols; };
  add(m.weights.token_embedding);
  add(m.weights.output_norm);
  if (!m.config.tied_output) add(m.weights.output);
  for (const auto& l : m.weights.layers) {
    for (const auto* w :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down}) {
      add(*w);
    }
  }
  return n;
}

// Runs the tests on one engine. Every run starts from an empty KV cache.
class Runner {
 public:
  Runner(Engine& engine, int ubatch, int n_vocab) : engine_(engine), ubatch_(ubatch) {
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int32_t> dist(0, n_vocab - 1);
    tokens_.resize(4096);
    for (auto& t : tokens_) t = dist(rng);
  }

  // Seconds for one run of the test; `limit` caps decode steps (warm-up).
  double run(const TestSpec& t, int limit = -1) {
    engine_.kv_cache().clear();
    const double start = now_seconds();
    if (t.kind == TestKind::kPrefill) {
      prefill(t.tokens);
    } else {
      const int steps = limit >= 0 ? std::min(limit, t.tokens) : t.tokens;
      decode(steps, t.streams, t.adapters);
    }
    return now_seconds() - start;
  }

 private:
  int32_t token(int i) const { return tokens_[static_cast<size_t>(i) % tokens_.size()]; }

  // A chain of rows per chunk of ubatch tokens; logits for the last one only.
  void prefill(int n) {
    for (int start = 0; start < n; start += ubatch_) {
      const int len = std::min(ubatch_, n - start);
      rows_.assign(len, Row{});
      for (int j = 0; j < len; ++j) {
        Row& r = rows_[j];
        r.token = token(start + j);
        r.pos = start + j;
        r.parent = j == 0 ? -1 : j - 1;
        r.want_logits = start + j == n - 1;
      }
      engine_.step(rows_);
    }
  }

  // `streams` rows per step, one per stream, each attached to its committed
  // cache; every row wants logits, as a sampler would.
  void decode(int steps, int streams, int adapters) {
    for (int i = 0; i < steps; ++i) {
      rows_.assign(streams, Row{});
      for (int s = 0; s < streams; ++s) {
        Row& r = rows_[s];
        r.token = token(i * streams + s);
        r.pos = i;
        r.stream = static_cast<int16_t>(s);
        r.adapter = static_cast<int16_t>(adapters > 0 ? s % adapters : -1);
        r.want_logits = true;
      }
      engine_.step(rows_);
    }
  }

  Engine& engine_;
  int ubatch_;
  std::vector<int32_t> tokens_;
  std::vector<Row> rows_;
};

// Binding is choosing a slot: the name lookup a server does per request.
double bind_nanoseconds(const AdapterPool& pool, int n_adapters) {
  constexpr int kLookups = 100000;
  std::vector<std::string> names;
  for (int i = 0; i < n_adapters; ++i) names.push_back(fmt::format("adapter{}", i));
  int sum = 0;
  const double start = now_seconds();
  for (int i = 0; i < kLookups; ++i) sum += pool.slot_of(names[i % n_adapters]);
  const double seconds = now_seconds() - start;
  if (sum < 0) std::printf("?");  // keeps the loop from being optimized away
  return seconds * 1e9 / kLookups;
}

void summarize(TestResult& r) {
  double sum = 0;
  for (double v : r.tps) sum += v;
  r.mean = sum / r.tps.size();
  double sq = 0;
  for (double v : r.tps) sq += (v - r.mean) * (v - r.mean);
  r.stddev = r.tps.size() > 1 ? std::sqrt(sq / (r.tps.size() - 1)) : 0.0;
}

int run_bench(BenchArgs a) {
  check(!a.prompt.empty(), "-p", "give at least one prompt length");
  check(a.threads >= 1 && a.threads <= 256, "-t", "thread count must be 1..256, got {}", a.threads);
  check(a.repetitions >= 1 && a.repetitions <= 1000, "-r", "repetitions must be 1..1000, got {}",
        a.repetitions);
  check(a.ubatch >= 1 && a.ubatch <= 4096, "--ubatch", "rows per step must be 1..4096, got {}",
        a.ubatch);
  check(a.n_gen >= 0, "-n", "decode tokens must be >= 0 (0 skips decode), got {}", a.n_gen);
  for (int p : a.prompt) check(p >= 1, "-p", "prompt lengths must be >= 1, got {}", p);
  std::vector<int> streams;
  for (int k : a.streams) {
    check(k >= 0 && k <= KvCache::kMaxStreams, "--streams", "stream counts must be 0..{} (0 skips), got {}",
          KvCache::kMaxStreams, k);
    if (k > 0 && a.n_gen > 0) streams.push_back(k);
  }
  check(a.lora_rank >= 0 && a.lora_rank <= 1024, "--lora-rank", "must be 0..1024, got {}",
        a.lora_rank);
  check(a.lora_count >= 1 && a.lora_count <= 64, "--lora-count", "must be 1..64, got {}",
        a.lora_count);
  check(a.bandwidth_mib >= 0 && a.bandwidth_mib <= 65536, "--bandwidth-mib", "must be 0..65536, got {}",
        a.bandwidth_mib);
  const WeightFormat weights = parse_format(a.weights, "--weights");
  const WeightFormat head = parse_format(a.output_head, "--output-head");
  const KvType kv_type = parse_kv_type(a.kv_type, "--kv-type");

  const double t_load = now_seconds();
  const auto model = load_model(a.model, a.tokenizer);
  const ModelConfig& c = model->config;
  const int max_prompt = *std::max_element(a.prompt.begin(), a.prompt.end());
  check(max_prompt <= c.context_length, "-p", "prompt length {} exceeds the model's context {}",
        max_prompt, c.context_length);
  check(a.n_gen <= c.context_length, "-n", "{} decode tokens exceed the model's context {}", a.n_gen,
        c.context_length);
  const int max_streams = streams.empty() ? 1 : *std::max_element(streams.begin(), streams.end());

  // Cells for the biggest test: the prompt, or every stream's tokens.
  EngineOptions eo;
  // Rows and cells also for the step-cost table: its steps sit right after
  // a prompt of the longest length.
  constexpr int kMaxStepRows = kStepRows[std::size(kStepRows) - 1];
  eo.max_rows = std::max({a.ubatch, max_streams, kMaxStepRows});
  eo.max_streams = max_streams;
  eo.context = std::max(max_prompt + kMaxStepRows, a.n_gen * max_streams);
  eo.threads = a.threads;
  eo.weights = weights;
  eo.output = head;
  eo.kv_type = kv_type;
  const std::vector<LoraAdapter> adapters = bench_adapters(a.lora, c, a.lora_count, a.lora_rank, a.lora_alpha, 100);
  for (const LoraAdapter& l : adapters) {
    eo.adapter_max_rank = std::max(eo.adapter_max_rank, l.max_rank);
  }
  eo.adapter_slots = static_cast<int>(adapters.size());
  Engine engine(*model, eo);
  const double load_seconds = now_seconds() - t_load;
  const size_t rss_before_adapters = current_rss_bytes();
  for (size_t i = 0; i < adapters.size(); ++i) {
    engine.adapters().load(fmt::format("adapter{}", i), adapters[i]);
  }
  const size_t rss_adapters = current_rss_bytes() - rss_before_adapters;

  std::vector<TestSpec> tests;
  for (int p : a.prompt) tests.push_back({TestKind::kPrefill, p, 1, fmt::format("pp{}", p)});
  if (a.n_gen > 0) tests.push_back({TestKind::kDecode, a.n_gen, 1, fmt::format("tg{}", a.n_gen)});
  for (int k : streams) {
    tests.push_back({TestKind::kStreams, a.n_gen, k, fmt::format("tg{} x{} streams", a.n_gen, k)});
  }
  // With adapters: decode with one bound, and each stream count with one
  // adapter for all rows vs the rows spread over all adapters (mixed step).
  const int n_adapters = static_cast<int>(adapters.size());
  if (n_adapters > 0 && a.n_gen > 0) {
    tests.push_back({TestKind::kDecode, a.n_gen, 1, fmt::format("tg{} +lora", a.n_gen), 1});
    for (int k : streams) {
      tests.push_back({TestKind::kStreams, a.n_gen, k,
                       fmt::format("tg{} x{} streams, 1 lora", a.n_gen, k), 1});
      if (n_adapters > 1) {
        tests.push_back({TestKind::kStreams, a.n_gen, k,
                         fmt::format("tg{} x{} streams, {} loras", a.n_gen, k,
                                     std::min(n_adapters, k)),
                         std::min(n_adapters, k)});
      }
    }
  }

  Runner runner(engine, a.ubatch, c.n_vocab);
  std::vector<TestResult> results;
  for (const TestSpec& t : tests) {
    // Warm-up: a whole prefill, or a few decode steps.
    runner.run(t, t.kind == TestKind::kPrefill ? -1 : 4);
    TestResult r{t, {}, 0, 0};
    for (int i = 0; i < a.repetitions; ++i) {
      const double s = runner.run(t);
      r.tps.push_back(static_cast<double>(t.tokens) * t.streams / std::max(s, 1e-9));
    }
    summarize(r);
    results.push_back(std::move(r));
  }
  engine.kv_cache().clear();
  std::vector<StepCost> step_costs;
  for (int rows : kStepRows) step_costs.push_back({rows, step_ms(engine, rows, max_prompt)});
  const double bandwidth =
      a.bandwidth_mib > 0 ? read_bandwidth(static_cast<size_t>(a.bandwidth_mib) << 20, a.threads) : 0.0;
  // Decode reads every packed weight once per token, and the KV cells of
  // its position (on average half of -n).
  const TestResult* decode = nullptr;
  for (const TestResult& r : results) {
    if (r.spec.kind == TestKind::kDecode && r.spec.adapters == 0) decode = &r;
  }
  const double decode_bytes =
      static_cast<double>(engine.weight_bytes()) + engine.kv_cache().bytes_per_cell() * (a.n_gen / 2.0);

  const std::string name = basename_of(model->path);
  const int64_t params = count_params(*model);
  const PackedWeight& w0 = engine.weights().layers.front().wq;
  const std::string packed = fmt::format("{} weights, {} head", packed_format_name(w0.format),
                                         packed_format_name(engine.weights().output.format));
  const std::string backend = fmt::format("CPU {}", engine.kernel_name());
  const size_t peak = peak_rss_bytes();

  nlohmann::json j;
  j["model"] = name;
  j["path"] = model->path;
  j["file_bytes"] = model->file_bytes;
  j["params"] = params;
  j["backend"] = backend;
  j["kernels"] = std::string(engine.kernel_name());
  j["weights"] = std::string(packed_format_name(w0.format));
  j["output_head"] = std::string(packed_format_name(engine.weights().output.format));
  j["threads"] = a.threads;
  j["ubatch"] = a.ubatch;
  j["repetitions"] = a.repetitions;
  j["load_s"] = load_seconds;
  j["packed_weight_bytes"] = engine.weight_bytes();
  j["kv_bytes"] = engine.kv_bytes();
  j["kv_type"] = std::string(kv_type_name(engine.kv_cache().type()));
  j["kv_cells"] = engine.options().context;
  j["peak_rss_bytes"] = peak;
  j["peak_rss_mib"] = peak / 1048576.0;
  nlohmann::json jt = nlohmann::json::array();
  for (const TestResult& r : results) {
    const char* kind = r.spec.kind == TestKind::kPrefill ? "prefill"
                       : r.spec.kind == TestKind::kDecode ? "decode"
                                                          : "batched_decode";
    jt.push_back({{"test", r.spec.name},
                  {"kind", kind},
                  {"n_prompt", r.spec.kind == TestKind::kPrefill ? r.spec.tokens : 0},
                  {"n_gen", r.spec.kind == TestKind::kPrefill ? 0 : r.spec.tokens},
                  {"streams", r.spec.streams},
                  {"tokens_per_s", r.mean},
                  {"stddev", r.stddev},
                  {"ms_per_token", r.mean > 0 ? 1000.0 / r.mean : 0.0},
                  {"samples", r.tps}});
  }
  j["tests"] = jt;
  nlohmann::json js = nlohmann::json::array();
  for (const StepCost& s : step_costs) {
    js.push_back({{"rows", s.rows}, {"ms", s.ms}, {"relative", s.ms / step_costs.front().ms}});
  }
  j["step_cost"] = {{"position", max_prompt}, {"steps", js}};
  if (bandwidth > 0) {
    nlohmann::json jb = {{"mib", a.bandwidth_mib}, {"threads", a.threads}, {"bytes_per_s", bandwidth}};
    if (decode != nullptr) {
      jb["decode_bytes_per_token"] = decode_bytes;
      jb["decode_bytes_per_s"] = decode_bytes * decode->mean;
      jb["decode_share"] = decode_bytes * decode->mean / bandwidth;
    }
    j["read_bandwidth"] = jb;
  }
  if (n_adapters > 0) {
    const AdapterPool& pool = engine.adapters();
    size_t bytes = 0;
    for (int i = 0; i < n_adapters; ++i) bytes += pool.adapter_bytes(i);
    j["adapters"] = {{"count", n_adapters},
                     {"max_rank", pool.max_rank()},
                     {"slot_bytes_used", bytes},
                     {"file_tensor_bytes", adapters.front().file_tensor_bytes * n_adapters},
                     {"rss_growth_bytes", rss_adapters},
                     {"bind_ns", bind_nanoseconds(pool, n_adapters)}};
  }
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

  const std::string size = human_bytes(static_cast<double>(model->file_bytes));
  const std::string prm = human_count(static_cast<double>(params));
  std::printf("| model | size | params | backend | threads | test | t/s |\n");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
  for (const TestResult& r : results) {
    std::printf("| %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n", name.c_str(), size.c_str(),
                prm.c_str(), backend.c_str(), a.threads, r.spec.name.c_str(), r.mean, r.stddev);
  }
  std::printf(
      "\nload %.0f ms (packing included) | %s | packed weights %.2f MiB | %s KV %.2f MiB (%d cells) | "
      "peak RSS %.1f MiB | file %.2f MiB | ubatch %d | %d repetitions\n",
      load_seconds * 1000, packed.c_str(), engine.weight_bytes() / 1048576.0,
      std::string(kv_type_name(engine.kv_cache().type())).c_str(), engine.kv_bytes() / 1048576.0, engine.options().context, peak / 1048576.0,
      model->file_bytes / 1048576.0, a.ubatch, a.repetitions);
  std::printf("\nstep cost by rows (a tree step after %d prompt tokens, median ms)\n\n| rows per step |",
              max_prompt);
  for (const StepCost& s : step_costs) std::printf(" %d |", s.rows);
  std::printf("\n| --- |");
  for (size_t i = 0; i < step_costs.size(); ++i) std::printf(" ---: |");
  std::printf("\n| ms per step |");
  for (const StepCost& s : step_costs) std::printf(" %.3f |", s.ms);
  std::printf("\n| step cost / 1-row step |");
  for (const StepCost& s : step_costs) std::printf(" %.2f |", s.ms / step_costs.front().ms);
  std::printf("\n\n");
  if (bandwidth > 0) {
    std::printf("read bandwidth %.2f GB/s (%d MiB, %d threads)", bandwidth / 1e9, a.bandwidth_mib, a.threads);
    if (decode != nullptr) {
      std::printf(" | decode (%s) reads %.1f MiB per token, %.2f GB/s = %.0f%% of it",
                  decode->spec.name.c_str(), decode_bytes / 1048576.0, decode_bytes * decode->mean / 1e9,
                  100.0 * decode_bytes * decode->mean / bandwidth);
    }
    std::printf("\n");
  }
  if (n_adapters > 0) {
    const nlohmann::json& ja = j["adapters"];
    std::printf(
        "adapters: %d of rank <= %d | slots hold %.2f MiB (files: %.2f MiB) | RSS grew %.2f MiB "
        "loading them | binding by name %.0f ns\n",
        n_adapters, engine.adapters().max_rank(),
        ja["slot_bytes_used"].get<size_t>() / 1048576.0,
        ja["file_tensor_bytes"].get<size_t>() / 1048576.0, rss_adapters / 1048576.0,
        ja["bind_ns"].get<double>());
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill, decode and batched-decode speed");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.bin for a llama2.c model (default: beside it)");
  cmd->add_option("-p,--n-prompt", args->prompt, "Prompt lengths to prefill (comma list)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", args->n_gen, "Tokens to decode (0 skips decode tests)")
      ->capture_default_str();
  cmd->add_option("--streams", args->streams,
                  "Batched decode: stream counts, each stream decoding -n tokens (comma list; 0 skips)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Worker threads")->capture_default_str();
  cmd->add_option("-r,--repetitions", args->repetitions, "Timed runs per test")->capture_default_str();
  cmd->add_option("--ubatch", args->ubatch, "Prefill rows per engine step")->capture_default_str();
  cmd->add_option("--weights", args->weights, "Layer weight format: auto, int4, int8, f32")
      ->capture_default_str();
  cmd->add_option("--output-head", args->output_head, "Output head format: auto, int4, int8, f32")
      ->capture_default_str();
  add_kv_type_flag(cmd, &args->kv_type);
  cmd->add_option("--bandwidth-mib", args->bandwidth_mib,
                  "Read-bandwidth probe: MiB to stream (bigger than the caches; 0 skips it)")
      ->capture_default_str();
  cmd->add_option("--lora", args->lora, "Adapter file(s) to load (PEFT dir or GGUF); adds tests with adapters");
  cmd->add_option("--lora-rank", args->lora_rank,
                  "Random adapters of this rank on every projection (when no --lora is given)");
  cmd->add_option("--lora-count", args->lora_count, "How many random adapters")->capture_default_str();
  cmd->add_option("--lora-alpha", args->lora_alpha, "Alpha of the random adapters (default 4 x rank)");
  cmd->add_flag("--json", args->json, "Print JSON instead of the table");
  cmd->add_option("-o,--output", args->output_file, "Also write the JSON to this file");
  const auto streams_vs_sequential = add_streams_vs_sequential(cmd);  // tools/bench_streams.cc
  cmd->callback([args, selected, streams_vs_sequential] {
    const Command other = streams_vs_sequential();
    *selected = other ? other : Command([args] { return run_bench(*args); });
  });
}

}  // namespace chorus::tools
