// `chorus forecast derive`: training-free DS2D forecast embeddings for a
// model (decode/forecast_derive.h), written as our forecast GGUF.
#include "tools/cmd_forecast.h"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "decode/forecast_derive.h"
#include "model/forecast.h"
#include "model/model.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

struct DeriveArgs {
  std::string model;
  std::string tokenizer;
  std::string output;
  ForecastDeriveOptions options;
  int64_t seed = 1;
};

int run_derive(const DeriveArgs& a) {
  check(a.options.threads >= 1 && a.options.threads <= 256, "-t",
        "thread count must be 1..256, got {}", a.options.threads);
  check(a.seed >= 0, "--seed", "must be >= 0, got {}", a.seed);
  // Fail before the work, not after it.
  const std::filesystem::path dir = std::filesystem::path(a.output).parent_path();
  check(dir.empty() || std::filesystem::is_directory(dir), a.output,
        "cannot create: directory '{}' does not exist", dir.string());
  const auto model = load_model(a.model, a.tokenizer);
  ForecastDeriveOptions o = a.options;
  o.seed = static_cast<uint64_t>(a.seed);
  ForecastDeriveReport report;
  const ForecastEmbeddings f = derive_forecast(*model, o, &report, [](const std::string& msg) {
    std::fprintf(stderr, "[forecast] %s\n", msg.c_str());
  });
  write_forecast(a.output, f);
  std::printf("wrote %s: %d forecasts of dim %d, method %s, base fingerprint %s (%.1f s)\n",
              a.output.c_str(), f.count, f.dim, f.method.c_str(), f.base_fingerprint.c_str(),
              report.seconds);
  // "mean": the (weighted) mean embedding every method starts from.
  std::printf("%-9s %10s %8s %8s %12s %10s\n", "forecast", "top1 mean", "top1", "top4",
              "loglik mean", "loglik");
  for (int k = 0; k < f.count; ++k) {
    std::printf("%-9d %10.3f %8.3f %8.3f %12.3f %10.3f\n", k + 1, report.start_accuracy[k],
                report.accuracy[k], report.top4[k], report.start_log_likelihood[k],
                report.log_likelihood[k]);
  }
  return 0;
}

}  // namespace

void add_forecast_derive_command(CLI::App& forecast, Command* selected) {
  auto a = std::make_shared<DeriveArgs>();
  CLI::App* cmd = forecast.add_subcommand(
      "derive", "Derive DS2D forecast embeddings from the frozen model (no training)");
  cmd->add_option("-m,--model", a->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.bin for a llama2.c model");
  cmd->add_option("-o,--output", a->output, "Forecast GGUF to write")->required();
  cmd->add_option("--count", a->options.count, "Forecasts m")->capture_default_str();
  cmd->add_option("--method", a->options.method, "mean, weighted-mean, token or search")
      ->capture_default_str();
  cmd->add_option("--sequences", a->options.sequences, "Self-generated sequences to fit on")
      ->capture_default_str();
  cmd->add_option("--length", a->options.length, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--iterations", a->options.iterations, "Search iterations per forecast")
      ->capture_default_str();
  cmd->add_option("--pairs", a->options.pairs, "Antithetic pairs per search iteration")
      ->capture_default_str();
  cmd->add_option("--batch", a->options.batch, "Positions per search iteration")
      ->capture_default_str();
  cmd->add_option("-s,--seed", a->seed, "Seed of the text and the search")->capture_default_str();
  cmd->add_option("-t,--threads", a->options.threads, "Worker threads")->capture_default_str();
  cmd->callback([a, selected] { *selected = [a] { return run_derive(*a); }; });
}

void add_forecast_command(CLI::App& app, Command* selected) {
  CLI::App* cmd = app.add_subcommand("forecast", "DS2D forecast embeddings: derive, eval");
  cmd->require_subcommand(1);
  add_forecast_derive_command(*cmd, selected);
  add_forecast_eval_command(*cmd, selected);
}

}  // namespace chorus::tools
