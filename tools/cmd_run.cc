// `chorus run`: generate text from a prompt, streaming it as it comes, then
// report timings (prompt and generation speed, peak memory).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "decode/generate.h"
#include "decode/sampler.h"
#include "engine/engine.h"
#include "engine/reference_forward.h"
#include "tools/engine_options.h"
#include "model/model.h"
#include "tools/commands.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

struct RunArgs {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  std::string prompt_file;
  int n_predict = 128;
  int context = 0;
  int threads = 2;
  float temperature = 0.8f;
  int top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
  int64_t seed = -1;
  bool ignore_eos = false;
  bool json = false;
  bool no_bos = false;
  bool reference = false;
  std::string weights = "auto";
  std::string output_head = "auto";
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), path, "cannot read prompt file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_generate(RunArgs a) {
  check(a.threads >= 1 && a.threads <= 256, "-t", "thread count must be 1..256, got {}", a.threads);
  check(a.context >= 0, "-c", "context must be positive, got {}", a.context);
  check(a.n_predict >= -1, "-n", "must be -1 (until the context is full) or >= 0, got {}", a.n_predict);
  if (!a.prompt_file.empty()) a.prompt = read_text_file(a.prompt_file);

  const double t_load = now_seconds();
  const auto model = load_model(a.model, a.tokenizer);
  const double load_seconds = now_seconds() - t_load;
  const Tokenizer& tok = *model->tokenizer;

  // Long-context models would reserve gigabytes of KV cache for their full
  // trained context; like llama.cpp, default to at most 4096 positions.
  const int context = a.context > 0 ? a.context : std::min(model->config.context_length, 4096);
  check(context >= 1 && context <= model->config.context_length, "-c",
        "context must be 1..{} (the model's trained context), got {}", model->config.context_length,
        a.context);
  const auto prompt = tok.encode(a.prompt, !a.no_bos);
  check(!prompt.empty(), "-p", "the prompt is empty and no BOS token is added");
  check(static_cast<int>(prompt.size()) < context, "-p",
        "the prompt has {} tokens, the context holds {}", prompt.size(), context);
  const int room = context - static_cast<int>(prompt.size());
  const int n_predict = a.n_predict < 0 ? room : a.n_predict;
  check(n_predict <= room, "-n", "{} new tokens do not fit: the prompt has {} tokens and the context {} (use -c or a smaller -n)",
        n_predict, prompt.size(), context);

  SamplerParams sp;
  sp.temperature = a.temperature;
  sp.top_k = a.top_k;
  sp.top_p = a.top_p;
  sp.min_p = a.min_p;
  sp.repeat_penalty = a.repeat_penalty;
  sp.repeat_last_n = a.repeat_last_n;
  sp.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();

  GenerateParams gp;
  gp.n_predict = n_predict;
  gp.ignore_eos = a.ignore_eos;
  gp.sampler = sp;

  // The engine packs the weights at start-up; the reference pass reads them
  // in place, one row at a time.
  std::unique_ptr<ReferenceForward> reference;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<LogitsSource> source;
  const double t_pack = now_seconds();
  if (a.reference) {
    reference = std::make_unique<ReferenceForward>(*model, context);
    source = std::make_unique<ReferenceSource>(*reference);
  } else {
    EngineOptions eo;
    eo.context = context;
    eo.threads = a.threads;
    eo.max_streams = 1;
    eo.weights = parse_weight_format(a.weights, "--weights");
    eo.output = parse_weight_format(a.output_head, "--output-head");
    engine = std::make_unique<Engine>(*model, eo);
    source = std::make_unique<EngineSource>(*engine, *model);
  }
  const double pack_seconds = now_seconds() - t_pack;
  const std::string backend = a.reference ? "f32 reference" : std::string(engine->kernel_name());
  StreamDecoder text(tok);
  std::string all_text;
  std::vector<int32_t> generated;
  if (!a.json) {
    std::string shown = tok.decode(prompt);
    std::fputs(shown.c_str(), stdout);
    std::fflush(stdout);
  }
  const GenerateStats stats = generate(*source, prompt, gp, [&](int32_t id) {
    generated.push_back(id);
    const std::string piece = text.push(id);
    all_text += piece;
    if (!a.json && !piece.empty()) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  const std::string rest = text.flush();
  all_text += rest;

  const double prompt_tps = stats.prompt_seconds > 0 ? stats.n_prompt / stats.prompt_seconds : 0;
  const double gen_tps = stats.generation_seconds > 0 ? stats.n_generated / stats.generation_seconds : 0;
  const double ms_per_token = stats.n_generated > 0 ? 1000.0 * stats.generation_seconds / stats.n_generated : 0;
  const double peak_mib = peak_rss_bytes() / 1048576.0;

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["prompt"] = a.prompt;
    j["prompt_tokens"] = prompt;
    j["text"] = all_text;
    j["tokens"] = generated;
    j["seed"] = sp.seed;
    j["backend"] = backend;
    j["timings"] = {{"load_s", load_seconds},
                    {"pack_s", pack_seconds},
                    {"prompt_tokens", stats.n_prompt},
                    {"prompt_tokens_per_s", prompt_tps},
                    {"generated_tokens", stats.n_generated},
                    {"generated_tokens_per_s", gen_tps},
                    {"ms_per_token", ms_per_token},
                    {"peak_rss_mib", peak_mib}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::fputs(rest.c_str(), stdout);
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "\n[chorus] %s, %d threads | load %.0f ms, pack %.0f ms | prompt %d tokens, %.1f tok/s | "
               "generated %d tokens, %.1f tok/s, %.2f ms/token | peak RSS %.1f MiB | seed %llu\n",
               backend.c_str(), a.reference ? 1 : a.threads, load_seconds * 1000, pack_seconds * 1000, stats.n_prompt, prompt_tps, stats.n_generated, gen_tps, ms_per_token,
               peak_mib, static_cast<unsigned long long>(sp.seed));
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.bin for a llama2.c model (default: beside it)");
  auto* p = cmd->add_option("-p,--prompt", args->prompt, "Prompt text");
  cmd->add_option("-f,--file", args->prompt_file, "Read the prompt from a file")->excludes(p);
  cmd->add_option("-n,--n-predict", args->n_predict, "Tokens to generate (-1: until the context is full)")
      ->capture_default_str();
  cmd->add_option("-c,--ctx-size", args->context, "Context length (default: the model's)");
  cmd->add_option("-t,--threads", args->threads, "Worker threads")->capture_default_str();
  cmd->add_option("--temp", args->temperature, "Temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", args->min_p, "Drop tokens below min-p x the top probability (0 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-penalty", args->repeat_penalty, "Penalty for recent tokens (1 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", args->repeat_last_n, "How many recent tokens the penalty looks at")
      ->capture_default_str();
  cmd->add_option("-s,--seed", args->seed, "Random seed (default: random; printed at the end)");
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Keep generating after the end-of-sequence token");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add the BOS token to the prompt");
  cmd->add_flag("--reference", args->reference, "Use the plain f32 reference forward pass (slow, exact)");
  cmd->add_option("--weights", args->weights, "Layer weights: auto (as stored), int4, int8, f32")
      ->capture_default_str();
  cmd->add_option("--output-head", args->output_head, "Output head: auto, int4, int8, f32")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object with text, ids and timings instead of streaming");
  cmd->callback([args, selected] { *selected = [args] { return run_generate(*args); }; });
}

}  // namespace chorus::tools
