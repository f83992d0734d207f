// `chorus info MODEL`: architecture, shapes, tensor types, vocabulary and size
// of a model file, so a user can see what chorus will run before running it.
// `chorus info ADAPTER [-m MODEL]` describes a LoRA adapter and whether it
// fits the model. For a model it also names the kernel table chorus picks
// on this CPU and every table the CPU runs, and the KV cache's bytes.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "chat/chat_template.h"
#include "engine/kv_type.h"
#include "gguf/reader.h"
#include "kernels/kernels.h"
#include "model/lora.h"
#include "model/model.h"
#include "tools/commands.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

struct InfoArgs {
  std::string model;
  std::string tokenizer;
  bool metadata = false;
  bool tensors = false;
  std::string base;  // -m: the model an adapter should fit
};

// The family `chorus run --chat` (and the server) would format chats with.
std::string chat_template_line(const std::string& jinja) {
  if (jinja.empty()) return "none (chat needs --chat-template NAME)";
  try {
    return chat::describe(chat::recognise_template(jinja, "tokenizer.chat_template"));
  } catch (const Error&) {
    return fmt::format("not recognised ({} bytes; chat needs --chat-template NAME, one of: {})",
                       jinja.size(), fmt::join(chat::template_names(), ", "));
  }
}

void print_config(const Model& m) {
  const ModelConfig& c = m.config;
  std::printf("file          %s (%s, %.2f MiB)\n", m.path.c_str(), m.format.c_str(),
              m.file_bytes / 1048576.0);
  std::printf("architecture  %s%s%s\n", c.architecture.c_str(), c.name.empty() ? "" : "  name: ",
              c.name.c_str());
  std::printf("dim           %d\n", c.dim);
  std::printf("layers        %d\n", c.n_layers);
  std::printf("heads         %d (kv %d, head dim %d%s)\n", c.n_heads, c.n_kv_heads, c.head_dim,
              c.n_kv_heads < c.n_heads ? ", grouped-query" : "");
  std::printf("ffn           %d (SwiGLU)\n", c.ffn_dim);
  std::printf("context       %d\n", c.context_length);
  std::printf("rope          theta %g, %d dims%s\n", c.rope_theta, c.rope_dim,
              c.rope_scaling.factor > 0 ? ", llama3 scaling" : "");
  std::printf("rms eps       %g\n", c.rms_eps);
  std::printf("output head   %s\n", c.tied_output ? "tied to the token embedding" : "separate");

  // Parameter count and bytes per tensor type, over the weights chorus uses.
  std::map<std::string, std::pair<int64_t, size_t>> by_type;
  int64_t params = 0;
  auto add = [&](const WeightView& w) {
    auto& e = by_type[std::string(gguf::type_name(w.type))];
    e.first += w.rows * w.cols;
    e.second += w.rows * w.row_bytes();
    params += w.rows * w.cols;
  };
  add(m.weights.token_embedding);
  add(m.weights.output_norm);
  if (!c.tied_output) add(m.weights.output);
  for (const auto& l : m.weights.layers) {
    for (const auto* w : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up,
                          &l.w_down}) {
      add(*w);
    }
  }
  std::printf("parameters    %.3f M\n", params / 1e6);
  for (const auto& [type, e] : by_type) {
    std::printf("  %-6s      %.3f M params, %.2f MiB\n", type.c_str(), e.first / 1e6, e.second / 1048576.0);
  }

  const Vocab& v = m.tokenizer->vocab();
  std::printf("vocabulary    %d tokens, %s%s, bos %d, eos %d%s\n", v.size(),
              v.kind == TokenizerKind::kSpm ? "SentencePiece (llama)" : "byte-level BPE (gpt2), pre ",
              v.kind == TokenizerKind::kSpm ? "" : v.pre.c_str(), v.bos, v.eos,
              v.add_bos ? ", adds bos" : "");
  std::printf("chat template %s\n", chat_template_line(v.chat_template).c_str());

  // Keys and values of every layer per position.
  const double kv_values = 2.0 * c.n_layers * c.kv_dim();
  std::printf("kv cache      %.2f KiB per token as f16 (the default), %.2f KiB as f32 (--kv-type)\n",
              kv_values * kv_type_bytes(KvType::kF16) / 1024.0, kv_values * kv_type_bytes(KvType::kF32) / 1024.0);
  std::string tables;
  for (const kernels::KernelTable* t : kernels::available_kernel_tables()) {
    tables += (tables.empty() ? "" : " ") + std::string(t->name);
  }
  std::printf("kernels       %s (this CPU runs: %s; CHORUS_ISA picks another)\n",
              std::string(kernels::best_kernel_table().name).c_str(), tables.c_str());
}

void print_lora(const LoraAdapter& l) {
  int min_rank = l.max_rank, used_layers = 0;
  for (const auto& layer : l.layers) {
    bool any = false;
    for (const auto& p : layer) {
      if (p) min_rank = std::min(min_rank, p->rank);
      any = any || p.has_value();
    }
    used_layers += any;
  }
  std::string targets;
  const auto on = l.targets();
  for (int t = 0; t < kLoraTargets; ++t) {
    if (!on[t]) continue;
    if (!targets.empty()) targets += ' ';
    targets += lora_target_name(static_cast<LoraTarget>(t));
  }
  std::printf("file          %s (LoRA adapter, %s)\n", l.path.c_str(), l.format.c_str());
  std::printf("architecture  %s\n", l.architecture.c_str());
  std::printf("alpha         %g%s\n", l.alpha, l.alpha > 0 ? "" : " (none: alpha = rank)");
  if (min_rank == l.max_rank) {
    std::printf("rank          %d\n", l.max_rank);
  } else {
    std::printf("rank          %d..%d\n", min_rank, l.max_rank);
  }
  std::printf("rslora        %s\n",
              l.use_rslora ? "yes (scale alpha / sqrt(rank))" : "no (scale alpha / rank)");
  std::printf("targets       %s\n", targets.c_str());
  std::printf("layers        %d (%d pairs)\n", used_layers, l.n_pairs());
  std::printf("tensor bytes  %zu (%.2f MiB)\n", l.file_tensor_bytes,
              l.file_tensor_bytes / 1048576.0);
}

int run_info_lora(const InfoArgs& a) {
  print_lora(inspect_lora(a.model));
  if (a.base.empty()) return 0;
  const auto base = load_model(a.base);
  try {
    (void)load_lora(a.model, base->config);
  } catch (const Error&) {
    std::printf("fits          no: %s (the error below says why)\n", a.base.c_str());
    throw;
  }
  std::printf("fits          yes: %s\n", a.base.c_str());
  return 0;
}

int run_info(const InfoArgs& a) {
  if (is_lora_path(a.model)) return run_info_lora(a);
  check(a.base.empty(), "-m", "is for adapters; {} is a model", a.model);
  const auto model = load_model(a.model, a.tokenizer);
  print_config(*model);
  if ((a.metadata || a.tensors) && model->format == "gguf") {
    const auto file = gguf::Reader::open(a.model);
    if (a.metadata) {
      std::printf("\nmetadata (GGUF v%u, %zu keys)\n", file.version(), file.metadata().size());
      for (const auto& [key, value] : file.metadata()) {
        std::printf("  %-44s %s\n", key.c_str(), value.to_string().c_str());
      }
    }
    if (a.tensors) {
      std::printf("\ntensors (%zu)\n", file.tensors().size());
      for (const auto& t : file.tensors()) {
        std::string dims;
        for (int64_t d : t.dims) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
        std::printf("  %-32s %-6s %-20s %10zu bytes\n", t.name.c_str(),
                    std::string(gguf::type_name(t.type)).c_str(), dims.c_str(), t.n_bytes);
      }
    }
  }
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<InfoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Describe a model file (shapes, tensor types, vocabulary, size) or a LoRA adapter");
  cmd->add_option("model", args->model, "GGUF or llama2.c model, or a LoRA adapter")->required();
  cmd->add_option("-m,--model", args->base, "For an adapter: check it fits this model");
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.bin for a llama2.c model");
  cmd->add_flag("--metadata", args->metadata, "Also list every GGUF metadata key");
  cmd->add_flag("--tensors", args->tensors, "Also list every tensor");
  cmd->callback([args, selected] { *selected = [args] { return run_info(*args); }; });
}

}  // namespace chorus::tools
