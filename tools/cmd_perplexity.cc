// `chorus perplexity`: llama.cpp-comparable perplexity over a text file. The
// text is tokenized whole and cut into chunks of the context length; each
// chunk starts with BOS and only its second half is scored, so every scored
// token has at least half a context of history (llama.cpp's method).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/reference_forward.h"
#include "model/model.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

struct PerplexityArgs {
  std::string model;
  std::string tokenizer;
  std::string text_file;
  int context = 128;
  int max_chunks = -1;
  bool json = false;
};

// -log p(target) from raw logits, computed stably in double.
double negative_log_likelihood(std::span<const float> logits, int32_t target) {
  float max_logit = logits[0];
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max_logit);
  return std::log(sum) - (static_cast<double>(logits[target]) - max_logit);
}

int run_perplexity(const PerplexityArgs& a) {
  std::ifstream in(a.text_file, std::ios::binary);
  check(static_cast<bool>(in), a.text_file, "cannot read text file");
  std::stringstream ss;
  ss << in.rdbuf();

  const auto model = load_model(a.model, a.tokenizer);
  const int n_ctx = a.context;
  check(n_ctx >= 8 && n_ctx <= model->config.context_length, "-c",
        "context must be 8..{} (the model's trained context), got {}", model->config.context_length, n_ctx);
  const Tokenizer& tok = *model->tokenizer;
  const auto tokens = tok.encode(ss.str(), true);
  int n_chunks = static_cast<int>(tokens.size()) / n_ctx;
  if (a.max_chunks >= 0) n_chunks = std::min(n_chunks, a.max_chunks);
  check(n_chunks >= 1, a.text_file, "the text has {} tokens, fewer than one context of {} (use a smaller -c)",
        tokens.size(), n_ctx);

  ReferenceForward forward(*model, n_ctx);
  const int first = n_ctx / 2;
  double nll_sum = 0;
  int64_t n_scored = 0;
  std::vector<double> chunk_ppl;
  ProgressBar bar("perplexity");
  const double t0 = now_seconds();
  for (int c = 0; c < n_chunks; ++c) {
    forward.reset();
    const int32_t* chunk = tokens.data() + static_cast<size_t>(c) * n_ctx;
    double chunk_nll = 0;
    for (int i = 0; i < n_ctx - 1; ++i) {
      const int32_t input = (i == 0 && tok.vocab().bos >= 0) ? tok.vocab().bos : chunk[i];
      auto logits = forward.forward(input, i);
      if (i >= first) chunk_nll += negative_log_likelihood(logits, chunk[i + 1]);
    }
    const int scored = n_ctx - 1 - first;
    nll_sum += chunk_nll;
    n_scored += scored;
    chunk_ppl.push_back(std::exp(nll_sum / n_scored));
    bar.update(c + 1, n_chunks);
  }
  bar.finish();
  const double ppl = std::exp(nll_sum / n_scored);
  const double seconds = now_seconds() - t0;
  if (a.json) {
    nlohmann::json j{{"model", a.model},          {"text", a.text_file},  {"context", n_ctx},
                     {"chunks", n_chunks},        {"scored_tokens", n_scored}, {"perplexity", ppl},
                     {"running_perplexity", chunk_ppl}, {"seconds", seconds},
                     {"peak_rss_mib", peak_rss_bytes() / 1048576.0}};
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("tokens %zu, context %d, chunks %d, scored %lld\n", tokens.size(), n_ctx, n_chunks,
              static_cast<long long>(n_scored));
  for (size_t i = 0; i < chunk_ppl.size(); ++i) std::printf("[%zu]%.4f ", i + 1, chunk_ppl[i]);
  std::printf("\nperplexity: %.4f (%.1f s)\n", ppl, seconds);
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Perplexity of a model over a text file (llama.cpp's method)");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.bin for a llama2.c model");
  cmd->add_option("-f,--file", args->text_file, "Text file to score")->required();
  cmd->add_option("-c,--ctx-size", args->context, "Chunk length in tokens")->capture_default_str();
  cmd->add_option("--chunks", args->max_chunks, "Score at most this many chunks (-1 = all)");
  cmd->add_flag("--json", args->json, "Print a JSON object");
  cmd->callback([args, selected] { *selected = [args] { return run_perplexity(*args); }; });
}

}  // namespace chorus::tools
