// `chorus synth`: writes a GGUF with random weights in a real model's shape,
// so speed can be measured at sizes no downloadable model has here; with
// --lora, a random LoRA adapter for a given model (PEFT directory or GGUF).
#include <algorithm>
#include <array>
#include <cstdio>
#include <string>

#include "gguf/types.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

struct SynthArgs {
  std::string shape;
  std::string out;
  std::string type = "q4_0";
  std::string embedding_type;
  std::string vocab;
  uint64_t seed = 1;
  bool list = false;
  // --lora: a random adapter for `model`.
  std::string lora;
  std::string model;
  int rank = 8;
  float alpha = 16.0f;
  bool rslora = false;
  std::string targets = "q,k,v,o,gate,up,down";
  std::string format;  // peft or gguf; default from the path
  bool f32 = false;
};

std::array<bool, kLoraTargets> parse_lora_targets(const std::string& list) {
  std::array<bool, kLoraTargets> on{};
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string name = list.substr(start, comma - start);
    bool found = false;
    for (int t = 0; t < kLoraTargets; ++t) {
      if (lora_target_name(static_cast<LoraTarget>(t)) == name) on[t] = found = true;
    }
    check(found, "--targets", "unknown target '{}' (known: q, k, v, o, gate, up, down)", name);
    start = comma + 1;
  }
  return on;
}

int run_synth_lora(const SynthArgs& a) {
  check(!a.model.empty(), "-m", "missing: the model the adapter is for");
  std::string format = a.format;
  if (format.empty()) format = a.lora.ends_with(".gguf") ? "gguf" : "peft";
  check(format == "peft" || format == "gguf", "--format", "'{}' is neither peft nor gguf", format);
  const auto model = load_model(a.model);
  SyntheticLoraSpec spec;
  spec.rank = a.rank;
  spec.alpha = a.alpha;
  spec.use_rslora = a.rslora;
  spec.targets = parse_lora_targets(a.targets);
  spec.seed = a.seed;
  spec.f16 = !a.f32;
  check(spec.rank > 0 && spec.rank <= 65536, "--rank", "{} is out of range (1..65536)", spec.rank);
  check(spec.alpha >= 0, "--alpha", "{} is negative", spec.alpha);
  if (format == "peft") {
    write_synthetic_lora_peft(a.lora, model->config, spec);
  } else {
    write_synthetic_lora_gguf(a.lora, model->config, spec);
  }
  std::fprintf(stderr, "wrote %s (%s LoRA, rank %d, alpha %g%s, for %s)\n", a.lora.c_str(),
               format.c_str(), spec.rank, spec.alpha, spec.use_rslora ? ", rsLoRA" : "",
               a.model.c_str());
  return 0;
}

int run_synth(const SynthArgs& a) {
  if (!a.lora.empty()) return run_synth_lora(a);
  if (a.list || a.shape.empty()) {
    std::printf("%-16s %6s %6s %5s %5s %6s %7s  %s\n", "shape", "dim", "layers", "heads", "kv", "ffn",
                "vocab", "description");
    for (const auto& s : synthetic_shapes()) {
      const auto& c = s.config;
      std::printf("%-16s %6d %6d %5d %5d %6d %7d  %s\n", s.name.c_str(), c.dim, c.n_layers, c.n_heads,
                  c.n_kv_heads, c.ffn_dim, c.n_vocab, s.description.c_str());
    }
    if (!a.list) throw Error("--shape", "missing: pick one of the shapes above");
    return 0;
  }
  check(!a.out.empty(), "-o", "missing output path");
  const SyntheticShape& shape = find_synthetic_shape(a.shape);
  SynthOptions o;
  o.type = gguf::parse_type_name(a.type);
  o.embedding_type = a.embedding_type.empty() ? o.type : gguf::parse_type_name(a.embedding_type);
  o.seed = a.seed;
  o.vocab_path = a.vocab.empty()
                     ? std::string(CHORUS_DATA_DIR) + "/vocab/ggml-vocab-" + shape.vocab_file + ".gguf"
                     : a.vocab;
  ProgressBar bar("synth " + shape.name);
  write_synthetic_model(shape, o, a.out, [&](size_t done, size_t total) { bar.update(done, total); });
  bar.finish();
  std::fprintf(stderr, "wrote %s\n", a.out.c_str());
  return 0;
}

}  // namespace

void add_synth_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* cmd = app.add_subcommand(
      "synth", "Write a GGUF model with random weights in a named shape, or a random LoRA adapter");
  cmd->add_option("--shape", args->shape, "Model shape (see --list)");
  cmd->add_option("-o,--output", args->out, "Output GGUF path");
  cmd->add_option("--type", args->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q4_K")
      ->capture_default_str();
  cmd->add_option("--embedding-type", args->embedding_type,
                  "Type of the embedding and output head (default: --type)");
  cmd->add_option("--vocab", args->vocab, "GGUF whose tokenizer to copy (default: the bundled one)");
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_flag("--list", args->list, "List the known shapes");
  // A random LoRA adapter instead of a model: its own options, which the
  // model ones exclude.
  CLI::Option* lora = cmd->add_option("--lora", args->lora,
                                      "Write a random LoRA adapter here instead (PEFT directory "
                                      "or .gguf file)");
  lora->excludes(cmd->get_option("--shape"))
      ->excludes(cmd->get_option("--output"))
      ->excludes(cmd->get_option("--type"))
      ->excludes(cmd->get_option("--embedding-type"))
      ->excludes(cmd->get_option("--vocab"))
      ->excludes(cmd->get_option("--list"));
  cmd->add_option("-m,--model", args->model, "--lora: the model the adapter is for")->needs(lora);
  cmd->add_option("--rank", args->rank, "--lora: rank")->capture_default_str()->needs(lora);
  cmd->add_option("--alpha", args->alpha, "--lora: lora_alpha")->capture_default_str()->needs(lora);
  cmd->add_flag("--rslora", args->rslora, "--lora: rank-stabilized scale alpha / sqrt(rank)")
      ->needs(lora);
  cmd->add_option("--targets", args->targets, "--lora: adapted projections")
      ->capture_default_str()
      ->needs(lora);
  cmd->add_option("--format", args->format, "--lora: peft or gguf (default: gguf for *.gguf)")
      ->needs(lora);
  cmd->add_flag("--f32", args->f32, "--lora: store f32 instead of f16")->needs(lora);
  cmd->callback([args, selected] { *selected = [args] { return run_synth(*args); }; });
}

}  // namespace chorus::tools
