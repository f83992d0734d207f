// `chorus quantize IN OUT --type T`: rewrites a GGUF model's weight matrices
// in another type. The output is a standard GGUF (llama.cpp loads it too);
// chorus repacks Q4_0/Q4_1/Q4_K into its own INT4 layout losslessly at load.
#include <cstdio>
#include <string>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
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

bool is_float_type(gguf::TensorType t) {
  return t == gguf::TensorType::kF32 || t == gguf::TensorType::kF16 || t == gguf::TensorType::kBF16;
}

// The type a tensor gets: 1-D tensors (norms) stay as they are; matrices take
// the requested type if their rows fit its blocks, else stay as they are.
gguf::TensorType target_type(const gguf::TensorInfo& t, const QuantizeArgs& a) {
  if (t.dims.size() < 2) return t.type;
  gguf::TensorType want = gguf::parse_type_name(a.type);
  if (t.name == "token_embd.weight") {
    want = gguf::parse_type_name(a.embedding_type.empty() ? a.type : a.embedding_type);
  } else if (t.name == "output.weight") {
    want = gguf::parse_type_name(a.output_type);
  }
  if (t.cols() % gguf::type_traits(want).block_size != 0) return t.type;
  return want;
}

int run_quantize(const QuantizeArgs& a) {
  for (const std::string* name : {&a.type, &a.output_type, &a.embedding_type}) {
    if (name->empty()) continue;
    const auto t = gguf::parse_type_name(*name);
    check(gguf::can_quantize(t), "--type", "chorus cannot write {} tensors", *name);
  }
  const auto in = gguf::Reader::open(a.input);
  check(in.find_string("general.architecture").value_or("") == "llama", a.input,
        "general.architecture is not llama; chorus quantizes llama models only");

  gguf::Writer w;
  for (const auto& [key, value] : in.metadata()) {
    if (key != "general.alignment") w.set(key, value);
  }
  w.set_string("general.quantized_by", "chorus");

  size_t bytes_in = 0, bytes_out = 0;
  for (const gguf::TensorInfo& t : in.tensors()) {
    const gguf::TensorType to = target_type(t, a);
    bytes_in += t.n_bytes;
    bytes_out += gguf::row_bytes(to, t.cols()) * t.rows();
    if (to == t.type) {
      w.add_tensor(t.name, t.type, t.dims, std::span<const uint8_t>(t.data, t.n_bytes));
      continue;
    }
    check(is_float_type(t.type) || a.allow_requantize, a.input,
          "tensor '{}' is already quantized ({}); quantizing it again loses quality "
          "(pass --allow-requantize to do it anyway)",
          t.name, gguf::type_name(t.type));
    check(gguf::type_traits(t.type).supported, a.input, "tensor '{}' has type {}, which chorus cannot read",
          t.name, gguf::type_name(t.type));
    const gguf::TensorInfo* src = &t;
    w.add_tensor(t.name, to, t.dims, [src, to](std::span<uint8_t> dst) {
      const int64_t cols = src->cols();
      const size_t in_row = gguf::row_bytes(src->type, cols), out_row = gguf::row_bytes(to, cols);
      std::vector<float> row(cols);
      for (int64_t r = 0; r < src->rows(); ++r) {
        gguf::dequantize_row(src->type, src->data + r * in_row, row.data(), cols);
        gguf::quantize_row(to, row.data(), dst.data() + r * out_row, cols);
      }
    });
  }
  ProgressBar bar("quantize");
  w.write(a.output, [&](size_t done, size_t total) { bar.update(done, total); });
  bar.finish();
  std::fprintf(stderr, "%s: %.2f MiB -> %s: %.2f MiB (%s)\n", a.input.c_str(), bytes_in / 1048576.0,
               a.output.c_str(), bytes_out / 1048576.0, a.type.c_str());
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
