// `chorus quantize IN OUT --type T`: rewrites a GGUF model's weight matrices
// in another type. The output is a standard GGUF (llama.cpp loads it too);
// chorus repacks Q4_0/Q4_1/Q4_K into its own INT4 layout losslessly at load.
#include <cstdio>
#include <string>

#include "gguf/quantize_file.h"
#include "gguf/types.h"
#include "tools/commands.h"
#include "tools/progress.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type = "q4_0";
  std::string embedding_type;
  std::string output_type = "q8_0";
  bool allow_requantize = false;
};

int run_quantize(const QuantizeArgs& a) {
  gguf::QuantizeFileOptions o;
  o.type = gguf::parse_type_name(a.type);
  if (!a.embedding_type.empty()) o.embedding_type = gguf::parse_type_name(a.embedding_type);
  o.output_type = gguf::parse_type_name(a.output_type);
  o.allow_requantize = a.allow_requantize;
  ProgressBar bar("quantize");
  const gguf::QuantizeFileReport r =
      gguf::quantize_file(a.input, a.output, o, [&](size_t done, size_t total) { bar.update(done, total); });
  bar.finish();
  std::fprintf(stderr, "%s: %.2f MiB -> %s: %.2f MiB (%s)\n", a.input.c_str(), r.bytes_in / 1048576.0,
               a.output.c_str(), r.bytes_out / 1048576.0, a.type.c_str());
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Convert a GGUF model's weights to another type");
  cmd->add_option("input", args->input, "Input GGUF model")->required();
  cmd->add_option("output", args->output, "Output GGUF path")->required();
  cmd->add_option("--type", args->type, "Type of the weight matrices: q4_0, q4_1, q4_K, q8_0, f16, bf16, f32")
      ->capture_default_str();
  cmd->add_option("--embedding-type", args->embedding_type, "Type of token_embd (default: --type)");
  cmd->add_option("--output-type", args->output_type, "Type of the output head")->capture_default_str();
  cmd->add_flag("--allow-requantize", args->allow_requantize,
                "Allow quantizing tensors that are already quantized");
  cmd->callback([args, selected] { *selected = [args] { return run_quantize(*args); }; });
}

}  // namespace chorus::tools
