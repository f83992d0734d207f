// llama.cpp GGUF LoRA adapters: general.type = adapter, adapter.type = lora,
// adapter.lora.alpha, and per adapted projection
//   blk.N.attn_q.weight.lora_a  GGUF dims [in, r]  (r rows of in)
//   blk.N.attn_q.weight.lora_b  GGUF dims [r, out] (out rows of r)
// already in the base model's GGUF row order (the converter permuted q/k).
#include <cmath>
#include <string>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "model/lora.h"
#include "model/lora_internal.h"
#include "util/error.h"

namespace chorus {
namespace lora_internal {
namespace {

struct GgufName {
  int layer = 0;
  LoraTarget target = LoraTarget::kQ;
  bool is_b = false;
  std::string partner;
};

// blk.N.<stem>.weight.lora_<a|b>
GgufName parse_name(const std::string& name, const std::string& where) {
  const bool a = name.ends_with(".weight.lora_a");
  const bool b = name.ends_with(".weight.lora_b");
  for (const char* stem : {"token_embd", "output"}) {
    check(!name.starts_with(std::string(stem) + "."), where, "LoRA of {} is not supported", stem);
  }
  constexpr std::string_view kSuffix = ".weight.lora_a";
  check((a || b) && name.starts_with("blk.") && name.size() > 4 + kSuffix.size(), where,
        "is not a LoRA tensor of a known projection (expected blk.N.attn_q.weight.lora_a and the "
        "like)");
  const std::string_view body = std::string_view(name).substr(4, name.size() - 4 - kSuffix.size());
  const size_t dot = body.find('.');
  check(dot != std::string_view::npos, where, "is not a LoRA tensor of a known projection");
  GgufName n;
  const auto layer = parse_layer_index(body.substr(0, dot));
  check(layer.has_value(), where, "layer index '{}' is not a layer number", body.substr(0, dot));
  n.layer = *layer;
  const std::string_view stem = body.substr(dot + 1);
  bool found = false;
  for (int t = 0; t < kLoraTargets && !found; ++t) {
    if (lora_target_gguf_name(static_cast<LoraTarget>(t)) == stem) {
      n.target = static_cast<LoraTarget>(t);
      found = true;
    }
  }
  check(found, where,
        "projection '{}' is not supported (attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, "
        "ffn_down)",
        stem);
  n.is_b = b;
  n.partner = name.substr(0, name.size() - 1) + (b ? "a" : "b");
  return n;
}

}  // namespace

LoraAdapter read_gguf_lora(const std::string& path, const ModelConfig* base) {
  const gguf::Reader r = gguf::Reader::open(path);
  const auto type = r.find_string("general.type");
  check(type.has_value(), path,
        "general.type is missing: not a LoRA adapter (llama.cpp adapters say general.type = "
        "adapter)");
  check(*type == "adapter", path, "general.type is '{}', not 'adapter'", *type);
  const auto adapter_type = r.find_string("adapter.type");
  check(adapter_type.has_value(), path, "adapter.type is missing (a LoRA adapter says 'lora')");
  check(*adapter_type == "lora", path, "adapter.type is '{}'; only 'lora' adapters are supported",
        *adapter_type);
  // An activated LoRA applies only after its invocation tokens; applying it
  // everywhere would silently change what it does.
  for (const auto& [key, value] : r.metadata()) {
    check(!key.starts_with("adapter.alora."), path, "activated LoRA ({}) is not supported", key);
  }
  LoraAdapter a;
  a.path = path;
  a.format = "gguf";
  a.architecture = r.get_string("general.architecture");
  if (base != nullptr) {
    check(a.architecture == base->architecture, path,
          "adapter is for architecture '{}', the model is '{}'", a.architecture,
          base->architecture);
  }
  // llama.cpp reads a missing alpha as 0, i.e. scale = user scale (alpha = rank).
  const double alpha = r.find_float("adapter.lora.alpha").value_or(0.0);
  check(std::isfinite(alpha) && alpha >= 0 && alpha < 1e9, path,
        "adapter.lora.alpha = {} is out of range", alpha);
  a.alpha = static_cast<float>(alpha);

  LoraBuilder builder(base);
  for (const gguf::TensorInfo& t : r.tensors()) {
    const std::string where = fmt::format("{}: tensor '{}'", path, t.name);
    const GgufName n = parse_name(t.name, where);
    check(t.type == gguf::TensorType::kF32 || t.type == gguf::TensorType::kF16 ||
              t.type == gguf::TensorType::kBF16,
          where, "type {} is not supported (f32, f16 or bf16 only)", gguf::type_name(t.type));
    check(t.dims.size() == 2, where, "has {} dimensions, a LoRA matrix has 2", t.dims.size());
    LoraTensor lt;
    lt.where = where;
    lt.partner = n.partner;
    lt.rows = t.dims[1];
    lt.cols = t.dims[0];
    lt.n_bytes = t.n_bytes;
    lt.read = [&t] {
      std::vector<float> out(static_cast<size_t>(t.n_elements));
      const size_t rb = gguf::row_bytes(t.type, t.cols());
      for (int64_t row = 0; row < t.rows(); ++row) {
        gguf::dequantize_row(t.type, t.data + row * rb, out.data() + row * t.cols(), t.cols());
      }
      return out;
    };
    builder.add(n.layer, n.target, n.is_b, std::move(lt));
  }
  return builder.finish(std::move(a), path, /*config_rank=*/0, /*hf_rope_order=*/false);
}

}  // namespace lora_internal

LoraAdapter load_gguf_lora(const std::string& path, const ModelConfig& base) {
  return lora_internal::read_gguf_lora(path, &base);
}

}  // namespace chorus
