// `chorus synth`: writes a GGUF with random weights in a real model's shape,
// so speed can be measured at sizes no downloadable model has here.
#include <cstdio>
#include <string>

#include "gguf/types.h"
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
};

int run_synth(const SynthArgs& a) {
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
  CLI::App* cmd = app.add_subcommand("synth", "Write a GGUF model with random weights in a named shape");
  cmd->add_option("--shape", args->shape, "Model shape (see --list)");
  cmd->add_option("-o,--output", args->out, "Output GGUF path");
  cmd->add_option("--type", args->type, "Weight type: f32, f16, bf16, q8_0, q4_0, q4_1, q4_K")
      ->capture_default_str();
  cmd->add_option("--embedding-type", args->embedding_type,
                  "Type of the embedding and output head (default: --type)");
  cmd->add_option("--vocab", args->vocab, "GGUF whose tokenizer to copy (default: the bundled one)");
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_flag("--list", args->list, "List the known shapes");
  cmd->callback([args, selected] { *selected = [args] { return run_synth(*args); }; });
}

}  // namespace chorus::tools
