// PEFT LoRA adapters: adapter_config.json (rank, alpha, rsLoRA, targets) and
// adapter_model.safetensors holding, per adapted projection,
//   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight  [r, in]
//   base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight  [out, r]
// (mlp.gate_proj / up_proj / down_proj alike). Hugging Face q/k weights use
// rotate-half RoPE; their lora_B rows are permuted to the base model's GGUF
// order as llama.cpp's converter does.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/lora_internal.h"
#include "model/safetensors.h"
#include "util/error.h"

namespace chorus {
namespace lora_internal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct PeftConfig {
  int r = 0;
  float alpha = 8.0f;  // PEFT's LoraConfig default
  bool use_rslora = false;
};

std::optional<LoraTarget> target_from_hf(std::string_view module) {
  for (int t = 0; t < kLoraTargets; ++t) {
    if (lora_target_hf_name(static_cast<LoraTarget>(t)) == module)
      return static_cast<LoraTarget>(t);
  }
  return std::nullopt;
}

// A present, non-null, non-empty value (PEFT writes {} / null / false for
// features left off).
bool set(const json& cfg, const char* key) {
  const auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_object() || it->is_array() || it->is_string()) return !it->empty();
  return true;
}

PeftConfig read_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.is_open(), path,
        "cannot open (a PEFT adapter needs adapter_config.json beside its safetensors)");
  json cfg;
  try {
    cfg = json::parse(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const json::exception& e) {
    throw Error(path, fmt::format("not valid JSON: {}", e.what()));
  }
  check(cfg.is_object(), path, "not a JSON object");

  if (const auto it = cfg.find("peft_type"); it != cfg.end()) {
    if (!it->is_string() || it->get<std::string>() != "LORA") {
      throw Error(path,
                  fmt::format("peft_type is {}, chorus loads LORA adapters only", it->dump()));
    }
  }
  PeftConfig c;
  const auto r = cfg.find("r");
  check(r != cfg.end() && r->is_number_integer(), path, "missing or non-integer 'r'");
  const int64_t rank = r->get<int64_t>();
  check(rank > 0 && rank <= (1 << 20), path, "r = {} is not a valid LoRA rank", rank);
  c.r = static_cast<int>(rank);
  if (const auto it = cfg.find("lora_alpha"); it != cfg.end()) {
    check(it->is_number(), path, "lora_alpha is not a number");
    const double alpha = it->get<double>();
    check(std::isfinite(alpha) && alpha >= 0 && alpha < 1e9, path,
          "lora_alpha = {} is out of range", alpha);
    c.alpha = static_cast<float>(alpha);
  }
  if (const auto it = cfg.find("use_rslora"); it != cfg.end() && !it->is_null()) {
    check(it->is_boolean(), path, "use_rslora is not a boolean");
    c.use_rslora = it->get<bool>();
  }

  // Variants that change what the tensors mean: refused rather than applied
  // wrongly.
  check(!set(cfg, "rank_pattern"), path, "rank_pattern (per-module ranks) is not supported");
  check(!set(cfg, "alpha_pattern"), path, "alpha_pattern (per-module alphas) is not supported");
  check(!set(cfg, "use_dora"), path, "DoRA adapters (use_dora) are not supported");
  check(!set(cfg, "fan_in_fan_out"), path, "fan_in_fan_out (transposed weights) is not supported");
  check(!set(cfg, "modules_to_save"), path,
        "modules_to_save (fully trained extra modules) is not supported");
  if (const auto it = cfg.find("target_modules"); it != cfg.end() && it->is_array()) {
    // A string here is a regular expression (or "all-linear"); the tensor
    // names decide then, and are checked one by one.
    for (const json& m : *it) {
      if (!m.is_string())
        throw Error(path, fmt::format("target_modules holds a non-string {}", m.dump()));
      const std::string name = m.get<std::string>();
      check(target_from_hf(name).has_value(), path,
            "target module '{}' is not supported (chorus adapts q_proj, k_proj, v_proj, o_proj, "
            "gate_proj, up_proj and down_proj)",
            name);
    }
  } else if (it != cfg.end()) {
    check(it->is_string() || it->is_null(), path, "target_modules is neither a list nor a string");
  }
  return c;
}

struct PeftName {
  int layer = 0;
  LoraTarget target = LoraTarget::kQ;
  bool is_b = false;
  std::string partner;
};

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

// base_model.model.model.layers.N.<self_attn|mlp>.<x>_proj.<lora_A|lora_B>.weight
PeftName parse_name(const std::string& name, const std::string& where) {
  check(name.find("lora_embedding_") == std::string::npos, where,
        "embedding LoRA (lora_embedding_A/B) is not supported");
  check(name.find("embed_tokens") == std::string::npos, where,
        "LoRA of embed_tokens (the token embedding) is not supported");
  check(name.find("lm_head") == std::string::npos, where,
        "LoRA of lm_head (the output head) is not supported");
  const auto p = split_dots(name);
  const bool shape_ok = p.size() == 9 && p[0] == "base_model" && p[1] == "model" &&
                        p[2] == "model" && p[3] == "layers" && p[8] == "weight";
  check(shape_ok, where,
        "is not a PEFT LoRA tensor (expected "
        "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight and the like)");
  PeftName n;
  const auto layer = parse_layer_index(p[4]);
  check(layer.has_value(), where, "layer index '{}' is not a layer number", p[4]);
  n.layer = *layer;
  const auto target = target_from_hf(p[6]);
  check(target.has_value(), where,
        "module '{}' is not supported (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, "
        "down_proj)",
        p[6]);
  n.target = *target;
  const bool attn = n.target == LoraTarget::kQ || n.target == LoraTarget::kK ||
                    n.target == LoraTarget::kV || n.target == LoraTarget::kO;
  const std::string_view group = attn ? "self_attn" : "mlp";
  check(p[5] == group, where, "{} belongs under {}, not '{}'", p[6], group, p[5]);
  check(p[7] == "lora_A" || p[7] == "lora_B", where, "'{}' is not lora_A or lora_B", p[7]);
  n.is_b = p[7] == "lora_B";
  n.partner = name;
  n.partner.replace(name.rfind(p[7]), p[7].size(), n.is_b ? "lora_A" : "lora_B");
  return n;
}

}  // namespace

LoraAdapter read_peft_lora(const std::string& config_path, const std::string& tensors_path,
                           const ModelConfig* base) {
  const PeftConfig cfg = read_config(config_path);
  if (base != nullptr) {
    check(base->architecture == "llama", tensors_path,
          "PEFT adapters are read as LLaMA adapters; the model is '{}'", base->architecture);
  }
  const SafetensorsFile file = SafetensorsFile::open(tensors_path);
  LoraBuilder builder(base);
  for (const SafetensorsTensor& t : file.tensors()) {
    const std::string where = fmt::format("{}: tensor '{}'", tensors_path, t.name);
    const PeftName n = parse_name(t.name, where);
    check(SafetensorsFile::readable_dtype(t.dtype), where,
          "dtype {} is not supported (F32, F16 or BF16 only)", t.dtype);
    check(t.shape.size() == 2, where, "has {} dimensions, a LoRA matrix has 2", t.shape.size());
    LoraTensor lt;
    lt.where = where;
    lt.partner = n.partner;
    lt.rows = t.shape[0];
    lt.cols = t.shape[1];
    lt.n_bytes = t.n_bytes;
    lt.read = [&file, &t] { return file.read_f32(t); };
    builder.add(n.layer, n.target, n.is_b, std::move(lt));
  }
  LoraAdapter a;
  a.path = tensors_path;
  a.format = "peft";
  a.architecture = "llama";
  a.alpha = cfg.alpha;
  a.use_rslora = cfg.use_rslora;
  return builder.finish(std::move(a), tensors_path, cfg.r, /*hf_rope_order=*/true);
}

LoraAdapter read_peft_dir(const std::string& dir, const ModelConfig* base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  check(fs::is_directory(dir, ec), dir, "is not a directory (a PEFT adapter is a directory)");
  const fs::path d(dir);
  const std::string tensors = (d / "adapter_model.safetensors").string();
  if (!fs::exists(tensors, ec) && fs::exists(d / "adapter_model.bin", ec)) {
    throw Error((d / "adapter_model.bin").string(),
                "pickled PyTorch adapters are not supported; save with safe_serialization=True");
  }
  check(fs::exists(d / "adapter_config.json", ec), dir,
        "is not a PEFT adapter directory (no adapter_config.json)");
  LoraAdapter a = read_peft_lora((d / "adapter_config.json").string(), tensors, base);
  a.path = dir;  // what the user named; errors still name the file at fault
  return a;
}

}  // namespace lora_internal

LoraAdapter load_peft_lora(const std::string& dir, const ModelConfig& base) {
  return lora_internal::read_peft_dir(dir, &base);
}

}  // namespace chorus
