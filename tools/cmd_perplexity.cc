// `chorus perplexity`: llama.cpp-comparable perplexity over a text file. The
// text is tokenized whole and cut into chunks of the context length; each
// chunk starts with BOS and only its second half is scored, so every scored
// token has at least half a context of history (llama.cpp's method).
// With --kl-divergence BASE, the same chunks also run through a base model
// (usually the F32 original of a quantized file) and the report adds the
// KL divergence of the model's next-token distribution from the base's and
// how often both pick the same top token.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/reference_forward.h"
#include "model/model.h"
#include "tools/commands.h"
#include "tools/engine_options.h"
#include "tools/progress.h"
#include "tools/runtime_flags.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus::tools {
namespace {

struct PerplexityArgs {
  std::string model;
  std::string tokenizer;
  std::string text_file;
  std::string kl_base;
  int context = 128;
  int max_chunks = -1;
  int threads = 2;
  bool reference = false;
  std::string weights = "auto";
  std::string output_head = "auto";
  std::string kv_type = "f16";
  bool json = false;
};

// Runs a chunk of tokens (one sequence from position 0) and hands back the
// logits of every position.
class ChunkRunner {
 public:
  ChunkRunner(const Model& model, const PerplexityArgs& a)
      : model_(&model), n_vocab_(model.config.n_vocab), kv_type_(a.kv_type) {
    if (a.reference) {
      reference_ = std::make_unique<ReferenceForward>(model, a.context, parse_kv_type(a.kv_type, "--kv-type"));
    } else {
      EngineOptions o;
      o.context = a.context;
      o.max_rows = std::min(a.context, 128);
      o.max_streams = 1;
      o.threads = a.threads;
      o.weights = parse_weight_format(a.weights, "--weights");
      o.output = parse_weight_format(a.output_head, "--output-head");
      o.kv_type = parse_kv_type(a.kv_type, "--kv-type");
      engine_ = std::make_unique<Engine>(model, o);
    }
  }

  // logits: [tokens.size()][n_vocab]
  void run(std::span<const int32_t> tokens, std::vector<float>& logits) {
    logits.resize(tokens.size() * n_vocab_);
    if (reference_) {
      reference_->reset();
      for (size_t i = 0; i < tokens.size(); ++i) {
        auto l = reference_->forward(tokens[i], static_cast<int>(i));
        std::copy(l.begin(), l.end(), logits.begin() + i * n_vocab_);
      }
      return;
    }
    engine_->kv_cache().clear();
    const size_t chunk = engine_->options().max_rows;
    std::vector<Row> rows;
    for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
      const size_t end = std::min(tokens.size(), begin + chunk);
      rows.clear();
      for (size_t i = begin; i < end; ++i) {
        rows.push_back(Row{.token = tokens[i], .pos = static_cast<int32_t>(i),
                           .parent = i == begin ? -1 : static_cast<int32_t>(i - begin - 1),
                           .want_logits = true});
      }
      auto l = engine_->step(rows);
      std::copy(l.begin(), l.end(), logits.begin() + begin * n_vocab_);
    }
  }

  const Model& model() const { return *model_; }
  std::string backend() const {
    return (reference_ ? std::string("f32 reference") : std::string(engine_->kernel_name())) + ", " + kv_type_ +
           " KV";
  }

 private:
  const Model* model_;
  int n_vocab_;
  std::string kv_type_;
  std::unique_ptr<ReferenceForward> reference_;
  std::unique_ptr<Engine> engine_;
};

// log-softmax of one row of logits into out, in double for stable sums.
void log_softmax(const float* logits, int n, std::vector<double>& out) {
  out.resize(n);
  double max_logit = logits[0];
  for (int i = 1; i < n; ++i) max_logit = std::max<double>(max_logit, logits[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(logits[i] - max_logit);
  const double log_z = std::log(sum) + max_logit;
  for (int i = 0; i < n; ++i) out[i] = logits[i] - log_z;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i) if (x[i] > x[best]) best = i;
  return best;
}

int run_perplexity(const PerplexityArgs& a) {
  check(a.threads >= 1 && a.threads <= 256, "-t", "thread count must be 1..256, got {}", a.threads);
  std::ifstream in(a.text_file, std::ios::binary);
  check(static_cast<bool>(in), a.text_file, "cannot read text file");
  std::stringstream ss;
  ss << in.rdbuf();

  const auto model = load_model(a.model, a.tokenizer);
  const int n_ctx = a.context;
  check(n_ctx >= 8 && n_ctx <= model->config.context_length, "-c",
        "context must be 8..{} (the model's trained context), got {}", model->config.context_length, n_ctx);
  std::unique_ptr<Model> base_model;
  if (!a.kl_base.empty()) {
    base_model = load_model(a.kl_base);
    check(base_model->config.n_vocab == model->config.n_vocab, a.kl_base,
          "vocabulary of {} tokens, the model has {}", base_model->config.n_vocab, model->config.n_vocab);
  }
  const Tokenizer& tok = *model->tokenizer;
  const auto tokens = tok.encode(ss.str(), true);
  int n_chunks = static_cast<int>(tokens.size()) / n_ctx;
  if (a.max_chunks >= 0) n_chunks = std::min(n_chunks, a.max_chunks);
  check(n_chunks >= 1, a.text_file, "the text has {} tokens, fewer than one context of {} (use a smaller -c)",
        tokens.size(), n_ctx);

  ChunkRunner runner(*model, a);
  std::unique_ptr<ChunkRunner> base_runner;
  if (base_model) {
    PerplexityArgs base_args = a;
    base_args.weights = "auto";  // the base runs as stored, over an f32 cache: it is the yardstick
    base_args.kv_type = "f32";
    base_args.output_head = "auto";
    base_runner = std::make_unique<ChunkRunner>(*base_model, base_args);
  }
  const int n_vocab = model->config.n_vocab;
  const int first = n_ctx / 2;
  double nll_sum = 0, base_nll_sum = 0, kl_sum = 0;
  int64_t n_scored = 0, same_top = 0;
  std::vector<double> chunk_ppl;
  std::vector<float> logits, base_logits;
  std::vector<double> logp, base_logp;
  std::vector<int32_t> chunk(n_ctx);
  ProgressBar bar("perplexity");
  const double t0 = now_seconds();
  for (int c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + static_cast<size_t>(c) * n_ctx, n_ctx, chunk.begin());
    if (tok.vocab().bos >= 0) chunk[0] = tok.vocab().bos;
    runner.run(std::span<const int32_t>(chunk).first(n_ctx - 1), logits);
    if (base_runner) base_runner->run(std::span<const int32_t>(chunk).first(n_ctx - 1), base_logits);
    for (int i = first; i < n_ctx - 1; ++i) {
      const float* row = logits.data() + static_cast<size_t>(i) * n_vocab;
      log_softmax(row, n_vocab, logp);
      nll_sum -= logp[chunk[i + 1]];
      ++n_scored;
      if (base_runner) {
        const float* base_row = base_logits.data() + static_cast<size_t>(i) * n_vocab;
        log_softmax(base_row, n_vocab, base_logp);
        base_nll_sum -= base_logp[chunk[i + 1]];
        double kl = 0;
        for (int v = 0; v < n_vocab; ++v) kl += std::exp(base_logp[v]) * (base_logp[v] - logp[v]);
        kl_sum += kl;
        same_top += argmax(row, n_vocab) == argmax(base_row, n_vocab);
      }
    }
    chunk_ppl.push_back(std::exp(nll_sum / n_scored));
    bar.update(c + 1, n_chunks);
  }
  bar.finish();
  const double ppl = std::exp(nll_sum / n_scored);
  const double seconds = now_seconds() - t0;
  nlohmann::json j{{"model", a.model},        {"text", a.text_file},         {"context", n_ctx},
                   {"chunks", n_chunks},      {"scored_tokens", n_scored},   {"perplexity", ppl},
                   {"backend", runner.backend()}, {"running_perplexity", chunk_ppl}, {"seconds", seconds},
                   {"peak_rss_mib", peak_rss_bytes() / 1048576.0}};
  if (base_runner) {
    j["base_model"] = a.kl_base;
    j["base_perplexity"] = std::exp(base_nll_sum / n_scored);
    j["mean_kl_divergence"] = kl_sum / n_scored;
    j["same_top_token"] = static_cast<double>(same_top) / n_scored;
  }
  if (a.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("tokens %zu, context %d, chunks %d, scored %lld, %s\n", tokens.size(), n_ctx, n_chunks,
              static_cast<long long>(n_scored), runner.backend().c_str());
  for (size_t i = 0; i < chunk_ppl.size(); ++i) std::printf("[%zu]%.4f ", i + 1, chunk_ppl[i]);
  std::printf("\nperplexity: %.4f (%.1f s)\n", ppl, seconds);
  if (base_runner) {
    const double base_ppl = j["base_perplexity"];
    std::printf("base perplexity: %.4f, increase %.4f (%.2f%%)\n", base_ppl, ppl - base_ppl,
                100.0 * (ppl / base_ppl - 1));
    std::printf("mean KL divergence from base: %.6f\n", kl_sum / n_scored);
    std::printf("same top token as base: %.2f%%\n", 100.0 * same_top / n_scored);
  }
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
  cmd->add_option("--kl-divergence", args->kl_base,
                  "Base model (e.g. the F32 original) to measure KL divergence against");
  cmd->add_option("-t,--threads", args->threads, "Worker threads")->capture_default_str();
  cmd->add_flag("--reference", args->reference, "Use the plain f32 reference forward pass");
  cmd->add_option("--weights", args->weights, "Layer weights: auto, int4, int8, f32")->capture_default_str();
  cmd->add_option("--output-head", args->output_head, "Output head: auto, int4, int8, f32")->capture_default_str();
  add_kv_type_flag(cmd, &args->kv_type);
  cmd->add_flag("--json", args->json, "Print a JSON object");
  cmd->callback([args, selected] { *selected = [args] { return run_perplexity(*args); }; });
}

}  // namespace chorus::tools
