// `chorus forecast eval`: DS2D against plain decoding on a fixed prompt set.
//
// For every configuration (plain; n-gram branches alone; each forecast set
// without and with n-gram branches) it decodes every prompt greedily with
// the multi-stream scheduler and reports tau (mean tokens per stream and
// step), acceptance per depth, decode speed and the wall-time speedup over
// plain decoding, and checks that every output equals plain decoding's.
// Repetitions are interleaved across configurations and the fastest is
// kept, since this machine is shared and noisy. It also times one step of
// `budget` tree rows against a one-row step: tau x cost(1) / cost(budget)
// is the speedup the step's cost curve allows (the projection for models
// whose acceptance cannot be measured here).
//
// --record-trace writes the accepted length of every tree of one
// configuration (the first forecast file with n-grams) to a file, and
// --replay runs DS2D on any model (a real-size one with random weights)
// with the walk accepting as that trace says: every cost of the loop is
// real, only the choice of tokens is not (decode/ds2d_trace.h). Its
// output is then not plain decoding's and is not compared.
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "decode/decode_plain.h"
#include "decode/ds2d.h"
#include "decode/ds2d_trace.h"
#include "decode/forecast_derive.h"
#include "decode/multi_stream.h"
#include "engine/engine.h"
#include "gguf/quants.h"
#include "model/forecast.h"
#include "model/lora.h"
#include "model/model.h"
#include "tools/cmd_forecast.h"
#include "tools/engine_options.h"
#include "tools/runtime_flags.h"
#include "tools/step_cost.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

constexpr int kMaxRows = 512;  // the largest step the tool builds

struct EvalArgs {
  std::string model;
  std::string tokenizer;
  std::vector<std::string> forecasts;
  std::vector<std::string> derive;  // methods derived in-process
  int derive_count = 4;
  std::string prompts;
  int n_predict = 128;
  int streams = 1;
  int repetitions = 3;
  int threads = 2;
  std::string weights = "auto";
  std::string kv_type = "f16";
  std::string lora;  // NAME=PATH: every stream decodes with this adapter
  Ds2dOptions ds2d;
  std::string json_file;
  bool json = false;
  // Only time steps of 1..budget rows and project speedups for these tau
  // (for models whose acceptance means nothing, e.g. random weights).
  bool cost_only = false;
  std::vector<double> taus = {1.5, 2.0, 2.5, 3.0};
  std::string record_trace;  // write the accepted lengths here
  std::string replay;        // replay this trace's accepted lengths
};

struct Config {
  std::string name;
  const ForecastEmbeddings* forecast = nullptr;  // null: none
  bool ds2d = false;
  bool ngram = false;
  bool replay = false;  // accepts as the trace says: not compared with plain decoding
};

struct ConfigResult {
  double best_seconds = 0;
  int64_t tokens = 0;     // per repetition
  Ds2dStats stats;        // of the first repetition (identical across them)
  bool identical = true;  // every output equals plain decoding's
};

std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  check(static_cast<bool>(in), path, "cannot read the prompt file");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  }
  check(!out.empty(), path, "holds no prompts (one per line)");
  return out;
}

// --cost-only: the step's cost curve and the speedup each tau would give.
// Writes the results to --json-file if given; prints them and returns true
// with --json (the table is then skipped).
bool write_json(const EvalArgs& a, const nlohmann::json& j) {
  if (!a.json_file.empty()) {
    std::ofstream out(a.json_file);
    check(static_cast<bool>(out), a.json_file, "cannot write");
    out << j.dump(2) << "\n";
  }
  if (a.json) std::printf("%s\n", j.dump(2).c_str());
  return a.json;
}

int run_cost_only(const EvalArgs& a, Engine& engine, int at) {
  std::vector<int> sizes;
  for (int r = 1; r < a.ds2d.budget; r *= 2) sizes.push_back(r);
  sizes.push_back(a.ds2d.budget);
  nlohmann::json j;
  j["model"] = a.model;
  j["position"] = at;
  j["threads"] = a.threads;
  nlohmann::json rows = nlohmann::json::array();
  double ms1 = 0;
  for (int r : sizes) {
    const double ms = step_ms(engine, r, at);
    if (r == 1) ms1 = ms;
    nlohmann::json e = {{"rows", r}, {"ms", ms}, {"relative", ms / ms1}};
    nlohmann::json proj = nlohmann::json::object();
    for (double tau : a.taus) proj[fmt::format("{:.2f}", tau)] = tau * ms1 / ms;
    e["projected_speedup"] = proj;
    rows.push_back(e);
  }
  j["steps"] = rows;
  if (write_json(a, j)) return 0;
  std::printf("step cost on %s at position %d, %d threads\n", a.model.c_str(), at, a.threads);
  std::printf("%6s %10s %9s", "rows", "ms/step", "x 1 row");
  for (double tau : a.taus) std::printf("  tau %.2f", tau);
  std::printf("   (projected speedup = tau x cost(1) / cost(rows))\n");
  for (const nlohmann::json& e : rows) {
    std::printf("%6d %10.3f %9.2f", e["rows"].get<int>(), e["ms"].get<double>(),
                e["relative"].get<double>());
    for (double tau : a.taus) {
      std::printf("  %8.2f", e["projected_speedup"][fmt::format("{:.2f}", tau)].get<double>());
    }
    std::printf("\n");
  }
  return 0;
}

// Stand-ins for the recorded run's forecasts on the replay's model: m rows
// (token embeddings; their values do not matter for cost) and, when the
// recorded file had one, a random forecast LoRA of the same rank in a slot.
ForecastEmbeddings replay_forecasts(const Model& model, Engine& engine, const AcceptanceTrace& t,
                                    const std::string& trace_path) {
  ForecastEmbeddings f = make_forecast(model, std::max(1, t.forecasts));
  f.path = "replay of " + trace_path;
  f.method = "replay";
  const WeightView& e = model.weights.token_embedding;
  for (int k = 1; k <= f.count; ++k) {
    gguf::dequantize_row(e.type, e.row((k * 7919) % model.config.n_vocab), f.row(k), f.dim);
  }
  if (t.lora_rank > 0) {
    SyntheticLoraSpec spec;
    spec.rank = t.lora_rank;
    const std::string tmp = (std::filesystem::temp_directory_path() /
                             ("chorus-replay-lora-" + std::to_string(::getpid()) + ".gguf"))
                                .string();
    write_synthetic_lora_gguf(tmp, model.config, spec);
    LoraAdapter lora;
    try {
      lora = load_lora(tmp, model.config);
    } catch (...) {
      std::filesystem::remove(tmp);
      throw;
    }
    std::filesystem::remove(tmp);
    f.lora_slot = engine.adapters().load("forecast:replay", lora);
  }
  return f;
}

int run_eval(EvalArgs a) {
  check(a.streams >= 1 && a.streams <= 64, "--streams", "must be 1..64, got {}", a.streams);
  check(a.repetitions >= 1, "-r", "must be >= 1, got {}", a.repetitions);
  check(a.n_predict >= 1, "-n", "must be >= 1, got {}", a.n_predict);
  const bool replay = !a.replay.empty();
  check(!replay || (a.forecasts.empty() && a.derive.empty()), "--replay",
        "takes no --forecast or --derive (the trace stands for the forecasts)");
  check(!replay || a.record_trace.empty(), "--record-trace", "cannot record a replay");
  check(a.record_trace.empty() || !a.forecasts.empty(), "--record-trace",
        "needs a --forecast (the first one, with n-grams, is recorded)");
  AcceptanceTrace trace;
  if (replay) trace = read_trace(a.replay);
  const auto model = load_model(a.model, a.tokenizer);
  const Tokenizer& tok = *model->tokenizer;
  const std::vector<std::string> prompt_texts = read_prompts(a.prompts);
  std::vector<std::vector<int32_t>> prompts;
  size_t longest = 0;
  for (const std::string& p : prompt_texts) {
    prompts.push_back(tok.encode(p, true));
    longest = std::max(longest, prompts.back().size());
  }

  EngineOptions eo;
  eo.threads = a.threads;
  eo.max_streams = a.streams;
  // Room for every stream's budget (validate_ds2d rejects more than this).
  eo.max_rows = std::clamp(a.ds2d.budget * a.streams, 64, kMaxRows);
  eo.weights = parse_weight_format(a.weights, "--weights");
  eo.kv_type = parse_kv_type(a.kv_type, "--kv-type");
  // Cells: the prompt, every stream's tokens, and a step of tentative rows.
  eo.context = static_cast<int>(longest) + a.streams * a.n_predict + eo.max_rows + 16;
  check(static_cast<int>(longest) + a.n_predict + a.ds2d.max_depth + 16 <=
            model->config.context_length,
        "-n", "prompt + {} tokens exceed the model's context of {}", a.n_predict,
        model->config.context_length);
  // Forecast sets: files, then derived ones. A file's companion LoRA (for
  // its forecast rows) takes an adapter slot.
  std::vector<std::unique_ptr<ForecastEmbeddings>> sets;
  std::vector<int> lora_ranks;  // [set]: rank of its forecast LoRA, 0 for none
  for (const std::string& path : a.forecasts) {
    sets.push_back(std::make_unique<ForecastEmbeddings>(load_forecast(path, *model)));
    lora_ranks.push_back(0);
    if (!sets.back()->lora_path.empty()) {
      lora_ranks.back() = load_lora(sets.back()->lora_path, model->config).max_rank;
      eo.adapter_slots += 1;
      eo.adapter_max_rank = std::max(eo.adapter_max_rank, lora_ranks.back());
    }
  }
  if (replay && trace.lora_rank > 0) {
    eo.adapter_slots += 1;
    eo.adapter_max_rank = std::max(eo.adapter_max_rank, trace.lora_rank);
  }
  // The task adapter every stream is bound to; forecast files tied to an
  // adapter must name it (chorus.forecast.adapter).
  LoraAdapter task_lora;
  std::string task_name;
  if (!a.lora.empty()) {
    const size_t eq = a.lora.find('=');
    check(eq != std::string::npos && eq > 0 && eq + 1 < a.lora.size(), "--lora", "expected NAME=PATH, got '{}'",
          a.lora);
    task_name = a.lora.substr(0, eq);
    task_lora = load_lora(a.lora.substr(eq + 1), model->config);
    eo.adapter_slots += 1;
    eo.adapter_max_rank = std::max(eo.adapter_max_rank, task_lora.max_rank);
  }
  Engine engine(*model, eo);
  const int task_slot = task_name.empty() ? -1 : engine.adapters().load(task_name, task_lora);
  for (auto& s : sets) load_forecast_lora(engine, *s);
  if (replay) {
    sets.push_back(std::make_unique<ForecastEmbeddings>(
        replay_forecasts(*model, engine, trace, a.replay)));
  }
  if (a.cost_only) return run_cost_only(a, engine, static_cast<int>(longest) + a.n_predict / 2);

  for (const std::string& method : a.derive) {
    ForecastDeriveOptions d;
    d.method = method;
    d.count = a.derive_count;
    d.threads = a.threads;
    if (!a.json) std::fprintf(stderr, "[eval] deriving forecasts: %s\n", method.c_str());
    sets.push_back(std::make_unique<ForecastEmbeddings>(derive_forecast(*model, d)));
  }
  std::vector<Config> configs = {{"plain", nullptr, false, false}};
  if (replay) {
    configs.push_back({"replay " + a.replay, sets.back().get(), true, true, true});
  } else {
    configs.push_back({"ngram", nullptr, true, true});
  }
  for (const auto& s : sets) {
    if (replay) break;
    const std::string base = s->path.empty() ? s->method : s->path;
    configs.push_back({base, s.get(), true, false});
    configs.push_back({base + " +ngram", s.get(), true, true});
  }
  // --record-trace: the first forecast file with n-gram branches.
  const size_t recorded_config = 3;
  AcceptanceTrace recorded;
  AcceptanceTrace replayed;  // what the replay's walks accepted (first repetition)
  for (const Config& c : configs) {
    if (c.ds2d && c.forecast != nullptr) {
      const ForecastEmbeddings* f = c.forecast;
      validate_ds2d(engine, a.ds2d, std::span<const ForecastEmbeddings* const>(&f, 1), a.streams);
    }
  }

  // With --row-cost -1, measure the row cost once on a short warm-up decode.
  Ds2dTuner cost_probe;
  if (a.ds2d.row_cost < 0) {
    MultiStreamRequest warm;
    warm.prompt = prompts[0];
    warm.limits.n_predict = 2;
    warm.streams.resize(a.streams);
    for (StreamSpec& s : warm.streams) {
      s.sampler.temperature = 0.0f;
      s.adapter = task_slot;
    }
    run_streams(engine, warm, [](int, int32_t) { return true; },
                ds2d_decode_loop(a.ds2d, {}, nullptr, &cost_probe));
  }

  // Reference outputs: plain decoding, [prompt][stream].
  std::vector<std::vector<std::vector<int32_t>>> reference(prompts.size());
  std::vector<ConfigResult> results(configs.size());
  for (int rep = 0; rep < a.repetitions; ++rep) {
    for (size_t c = 0; c < configs.size(); ++c) {
      const Config& cfg = configs[c];
      Ds2dOptions o = a.ds2d;
      o.ngram = cfg.ngram;
      if (cfg.replay) {
        trace.cursor = 0;  // every repetition replays the same lengths
        o.replay = &trace;
        if (rep == 0) o.record = &replayed;
      }
      if (!a.record_trace.empty() && c == recorded_config && rep == 0) o.record = &recorded;
      Ds2dStats stats;
      // Per configuration and repetition: no acceptance learnt across runs;
      // the row cost measured once, outside the timed decodes.
      Ds2dTuner tuner;
      tuner.row_cost = cost_probe.row_cost;
      tuner.row_cost_streams = cost_probe.row_cost_streams;
      std::vector<const ForecastEmbeddings*> fc;
      if (cfg.forecast != nullptr) fc.push_back(cfg.forecast);
      const DecodeLoop loop =
          cfg.ds2d ? ds2d_decode_loop(o, fc, &stats, &tuner) : DecodeLoop(decode_plain);
      double seconds = 0;
      int64_t tokens = 0;
      for (size_t p = 0; p < prompts.size(); ++p) {
        MultiStreamRequest req;
        req.prompt = prompts[p];
        req.limits.n_predict = a.n_predict;
        req.limits.tokenizer = &tok;
        // A replay and its plain baseline decode the same lengths.
        req.limits.ignore_eos = replay;
        for (int s = 0; s < a.streams; ++s) {
          StreamSpec spec;
          spec.sampler.temperature = 0.0f;
          spec.adapter = task_slot;
          spec.first_token_rank = a.streams > 1 ? s : -1;  // distinct replies, smart-reply style
          req.streams.push_back(spec);
        }
        const MultiStreamResult res = run_streams(
            engine, req, [](int, int32_t) { return true; }, loop);
        seconds += res.stats.decode_seconds;
        tokens += res.stats.n_generated;
        if (c == 0 && rep == 0) {
          for (const StreamOutcome& out : res.streams) reference[p].push_back(out.tokens);
        } else if (!cfg.replay) {
          for (int s = 0; s < a.streams; ++s) {
            results[c].identical &= res.streams[s].tokens == reference[p][s];
          }
        }
      }
      ConfigResult& r = results[c];
      if (rep == 0 || seconds < r.best_seconds) r.best_seconds = seconds;
      r.tokens = tokens;
      if (rep == 0) r.stats = stats;
    }
  }

  if (!a.record_trace.empty()) {
    recorded.source = fmt::format("{} with {} +ngram, prompts {}, {} tokens, budget {}, row cost {}",
                                  a.model, a.forecasts[0], a.prompts, a.n_predict, a.ds2d.budget,
                                  a.ds2d.row_cost);
    recorded.forecasts = sets[0]->count;
    recorded.lora_rank = lora_ranks[0];
    write_trace(a.record_trace, recorded);
    if (!a.json) {
      std::fprintf(stderr, "[eval] wrote %zu accepted lengths (tau %.2f) to %s\n",
                   recorded.accepted.size(), recorded.tau(), a.record_trace.c_str());
    }
  }

  // The step's cost curve at a typical position.
  const int at = static_cast<int>(longest) + a.n_predict / 2;
  const double ms1 = step_ms(engine, 1, at);
  const double ms_budget = step_ms(engine, a.ds2d.budget * a.streams, at);
  const double ms_streams = step_ms(engine, a.streams, at);

  nlohmann::json j;
  j["model"] = a.model;
  j["prompts"] = a.prompts;
  j["n_prompts"] = prompts.size();
  j["n_predict"] = a.n_predict;
  j["lora"] = a.lora;
  j["streams"] = a.streams;
  j["repetitions"] = a.repetitions;
  j["threads"] = a.threads;
  j["budget"] = a.ds2d.budget;
  j["max_width"] = a.ds2d.max_width;
  j["max_depth"] = a.ds2d.max_depth;
  j["dynamic"] = a.ds2d.dynamic;
  j["row_cost"] = a.ds2d.row_cost;
  j["kernels"] = std::string(engine.kernel_name());
  // Trees whose walk accepted what the trace asked (a tree too shallow
  // accepts less).
  int64_t met = 0;
  for (size_t i = 0; i < replayed.accepted.size(); ++i) {
    met += replayed.accepted[i] == trace.accepted[i % trace.accepted.size()];
  }
  if (replay) {
    j["replay"] = a.replay;
    j["trace_tau"] = trace.tau();
    j["trace_source"] = trace.source;
    j["trees_meeting_the_trace"] = met;
    j["trees_replayed"] = replayed.accepted.size();
  }
  j["step_ms"] = {{"plain_rows", ms_streams},
                  {"one_row", ms1},
                  {"budget_rows", ms_budget},
                  {"budget_over_plain", ms_budget / ms_streams}};
  const double plain_s = results[0].best_seconds;
  nlohmann::json jc = nlohmann::json::array();
  for (size_t c = 0; c < configs.size(); ++c) {
    const ConfigResult& r = results[c];
    const Ds2dStats& st = r.stats;
    const double tau = configs[c].ds2d ? st.tau() : 1.0;
    nlohmann::json e;
    e["name"] = configs[c].name;
    e["forecast"] = configs[c].forecast ? configs[c].forecast->path : "";
    e["method"] = configs[c].forecast ? configs[c].forecast->method : "";
    e["ngram"] = configs[c].ngram;
    e["tokens"] = r.tokens;
    e["seconds"] = r.best_seconds;
    e["tokens_per_s"] = r.best_seconds > 0 ? r.tokens / r.best_seconds : 0;
    e["speedup"] = r.best_seconds > 0 ? plain_s / r.best_seconds : 0;
    e["identical"] = r.identical;
    e["replayed"] = configs[c].replay;
    e["tau"] = tau;
    if (configs[c].ds2d) {
      std::vector<double> acc;
      for (size_t d = 1; d <= st.reached.size(); ++d)
        acc.push_back(st.acceptance(static_cast<int>(d)));
      e["acceptance_per_depth"] = acc;
      e["reached_per_depth"] = st.reached;
      e["accepted_length"] = st.accepted_length;
      e["steps"] = st.steps;
      e["trees"] = st.trees;
      e["rows_per_step"] = st.rows_per_step();
      e["draft_nodes_per_tree"] = st.trees ? static_cast<double>(st.draft_nodes) / st.trees : 0;
      e["forecast_rows_per_tree"] = st.trees ? static_cast<double>(st.forecast_rows) / st.trees : 0;
      e["ngram_nodes_per_tree"] = st.trees ? static_cast<double>(st.ngram_nodes) / st.trees : 0;
      e["projected_speedup"] = tau * ms_streams / ms_budget;
      e["row_cost"] = st.row_cost;
    }
    jc.push_back(e);
  }
  j["configs"] = jc;

  if (write_json(a, j)) return 0;
  std::printf(
      "DS2D on %s: %zu prompts x %d streams, %d tokens each, budget %d rows/stream, "
      "width <= %d, depth <= %d, %s shape, best of %d, %d threads, kernels %s\n",
      a.model.c_str(), prompts.size(), a.streams, a.n_predict, a.ds2d.budget, a.ds2d.max_width,
      a.ds2d.max_depth, a.ds2d.dynamic ? "dynamic" : "fixed", a.repetitions, a.threads,
      std::string(engine.kernel_name()).c_str());
  if (replay) {
    std::printf("replaying %s: %zu accepted lengths, tau %.2f (%s); %lld of %zu trees accepted "
                "the trace's length (the others were too shallow)\n",
                a.replay.c_str(), trace.accepted.size(), trace.tau(), trace.source.c_str(),
                static_cast<long long>(met), replayed.accepted.size());
  }
  std::printf("step cost: %d rows %.3f ms, %d rows %.3f ms (x%.2f)\n\n", a.streams, ms_streams,
              a.ds2d.budget * a.streams, ms_budget, ms_budget / ms_streams);
  std::printf("%-34s %6s %8s %9s %8s %6s %6s  %s\n", "config", "tau", "tok/s", "speedup", "rows/st",
              "rowcst", "same", "acceptance per depth");
  for (const nlohmann::json& e : jc) {
    std::string acc;
    if (e.contains("acceptance_per_depth")) {
      for (double x : e["acceptance_per_depth"]) acc += fmt::format("{:.2f} ", x);
    }
    std::string name = e["name"].get<std::string>();
    if (name.size() > 34) name = "..." + name.substr(name.size() - 31);
    std::printf("%-34s %6.2f %8.0f %8.2fx %8.1f %6.2f %6s  %s\n", name.c_str(),
                e["tau"].get<double>(), e["tokens_per_s"].get<double>(), e["speedup"].get<double>(),
                e.contains("rows_per_step") ? e["rows_per_step"].get<double>() : a.streams,
                e.contains("row_cost") ? e["row_cost"].get<double>() : 0.0,
                e["replayed"].get<bool>() ? "-" : e["identical"].get<bool>() ? "yes" : "NO",
                acc.c_str());
  }
  bool all_same = true;
  for (const ConfigResult& r : results) all_same &= r.identical;
  return all_same ? 0 : 1;
}

}  // namespace

void add_forecast_eval_command(CLI::App& forecast, Command* selected) {
  auto a = std::make_shared<EvalArgs>();
  a->prompts = std::string(CHORUS_DATA_DIR) + "/ds2d_prompts.txt";
  CLI::App* cmd = forecast.add_subcommand(
      "eval", "Measure DS2D (tau, acceptance per depth, speedup) against plain decoding");
  cmd->add_option("-m,--model", a->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.bin for a llama2.c model");
  cmd->add_option("--forecast", a->forecasts, "Forecast GGUF to evaluate (repeatable)");
  cmd->add_option("--derive", a->derive,
                  "Also derive forecasts in-process with this method (mean, weighted-mean, token, "
                  "search; repeatable)");
  cmd->add_option("--derive-count", a->derive_count, "m of derived forecasts")
      ->capture_default_str();
  cmd->add_option("--prompts", a->prompts, "Prompt file, one per line")->capture_default_str();
  cmd->add_option("-n,--n-predict", a->n_predict, "Tokens per stream")->capture_default_str();
  cmd->add_option("--streams", a->streams, "Streams per prompt (distinct first tokens)")
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", a->repetitions, "Timed runs (the fastest counts)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Worker threads")->capture_default_str();
  cmd->add_option("--weights", a->weights, "auto, int4, int8 or f32")->capture_default_str();
  add_kv_type_flag(cmd, &a->kv_type);
  cmd->add_option("--lora", a->lora,
                  "NAME=PATH: decode every stream with this adapter (forecast files tied to an adapter must name NAME)");
  cmd->add_option("--budget", a->ds2d.budget, "DS2D rows per stream and step")
      ->capture_default_str();
  cmd->add_option("--width", a->ds2d.max_width, "Forecast candidates per depth")
      ->capture_default_str();
  cmd->add_option("--depth", a->ds2d.max_depth, "Tree depth")->capture_default_str();
  cmd->add_option("--row-cost", a->ds2d.row_cost, "Cost of a row relative to a 1-row step")
      ->capture_default_str();
  cmd->add_option("--forecast-rows", a->ds2d.forecast_rows,
                  "Fixed forecast rows per chain (with --fixed-shape; -1: all)")
      ->capture_default_str();
  cmd->add_option("--forecast-chains", a->ds2d.forecast_chains,
                  "Nodes with a forecast chain, the likeliest walk ends (-1: choose; 0: every node)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1 << 16));
  cmd->add_flag(
      "--fixed-shape", [a](int64_t) { a->ds2d.dynamic = false; }, "Do not adapt the tree shape");
  cmd->add_flag("--cost-only", a->cost_only,
                "Only time steps of 1..budget rows and project speedups (any model, e.g. "
                "random weights)");
  cmd->add_option("--tau", a->taus, "Tau values to project with --cost-only")
      ->capture_default_str();
  cmd->add_option("--record-trace", a->record_trace,
                  "Write the accepted length of every tree of the first --forecast with n-grams "
                  "to this file (for --replay)");
  cmd->add_option("--replay", a->replay,
                  "Run DS2D on this model with the walk accepting as this trace says (every cost "
                  "real except the choice of tokens), against plain decoding of the same length");
  cmd->add_option("--json-file", a->json_file, "Also write the results as JSON here");
  cmd->add_flag("--json", a->json, "Print JSON instead of the table");
  cmd->callback([a, selected] { *selected = [a] { return run_eval(*a); }; });
}

}  // namespace chorus::tools
