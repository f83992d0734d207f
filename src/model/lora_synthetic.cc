// Random LoRA adapters for tests and benchmarks, written as a PEFT directory
// or a llama.cpp GGUF adapter. Both forms hold the same values: each matrix
// is drawn from its own seeded generator in GGUF row order, and the PEFT
// writer only moves q/k B rows back to Hugging Face order.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "gguf/quants.h"
#include "gguf/writer.h"
#include "model/lora.h"
#include "model/safetensors.h"
#include "util/error.h"
#include "util/half.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;

void check_spec(const ModelConfig& c, const SyntheticLoraSpec& s, const std::string& where) {
  check(c.n_layers > 0 && c.dim > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.head_dim > 0 &&
            c.ffn_dim > 0,
        where, "the base model's shape is empty");
  check(c.head_dim % 2 == 0, where, "head dim {} is odd; q/k rows cannot be RoPE-permuted",
        c.head_dim);
  check(s.rank > 0 && s.rank <= 65536, where, "rank {} is out of range (1..65536)", s.rank);
  check(std::isfinite(s.alpha) && s.alpha >= 0, where, "alpha {} is not a non-negative number",
        s.alpha);
  check(std::isfinite(s.stddev) && s.stddev >= 0, where, "stddev {} is not a non-negative number",
        s.stddev);
  bool any = false;
  for (bool t : s.targets) any = any || t;
  check(any, where, "no target projection selected");
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// One matrix of one pair, in GGUF row order: A is [rank x in], B [out x
// rank]. Its own generator (mt19937_64, whose output the standard fixes)
// makes it independent of which other targets are written; the normal
// deviate is a scaled sum of four uniforms, plain arithmetic that no
// standard library implements differently.
std::vector<float> matrix(const ModelConfig& c, const SyntheticLoraSpec& s, int layer, LoraTarget t,
                          bool is_b) {
  const int in = lora_target_in(c, t);
  const int out = lora_target_out(c, t);
  const size_t n = static_cast<size_t>(s.rank) * (is_b ? out : in);
  const uint64_t stream =
      (static_cast<uint64_t>(layer) * kLoraTargets + static_cast<int>(t)) * 2 + is_b;
  std::mt19937_64 rng(splitmix64(s.seed ^ splitmix64(stream)));
  std::vector<float> m(n);
  for (float& v : m) {
    float sum = 0;
    for (int i = 0; i < 4; ++i) sum += static_cast<float>(rng() >> 40) * (1.0f / 16777216.0f);
    v = (sum - 2.0f) * 1.7320508f * s.stddev;  // the sum of 4 U(0,1) has variance 1/3
    if (s.f16) v = f16_to_f32(f32_to_f16(v));
  }
  return m;
}

bool is_rope_target(LoraTarget t) { return t == LoraTarget::kQ || t == LoraTarget::kK; }

}  // namespace

void write_synthetic_lora_peft(const std::string& dir, const ModelConfig& base,
                               const SyntheticLoraSpec& spec) {
  check_spec(base, spec, dir);
  std::error_code ec;
  fs::create_directory(dir, ec);
  check(!ec && fs::is_directory(dir, ec), dir, "cannot create the adapter directory{}{}",
        ec ? ": " : "", ec ? ec.message() : "");

  SafetensorsWriter st;
  st.set_metadata("format", "pt");  // what PEFT's save_pretrained writes
  std::vector<std::string> modules;
  for (int ti = 0; ti < kLoraTargets; ++ti) {
    if (spec.targets[ti]) modules.emplace_back(lora_target_hf_name(static_cast<LoraTarget>(ti)));
  }
  for (int l = 0; l < base.n_layers; ++l) {
    for (int ti = 0; ti < kLoraTargets; ++ti) {
      if (!spec.targets[ti]) continue;
      const auto t = static_cast<LoraTarget>(ti);
      const int in = lora_target_in(base, t);
      const int out = lora_target_out(base, t);
      std::vector<float> a = matrix(base, spec, l, t, false);
      std::vector<float> b = matrix(base, spec, l, t, true);
      if (is_rope_target(t)) {
        const int heads = t == LoraTarget::kQ ? base.n_heads : base.n_kv_heads;
        permute_rope_rows(b, heads, base.head_dim, spec.rank, /*inverse=*/true);
      }
      const std::string group = ti <= static_cast<int>(LoraTarget::kO) ? "self_attn" : "mlp";
      const std::string stem =
          fmt::format("base_model.model.model.layers.{}.{}.{}.", l, group, lora_target_hf_name(t));
      const auto add = spec.f16 ? &SafetensorsWriter::add_f16 : &SafetensorsWriter::add_f32;
      (st.*add)(stem + "lora_A.weight", {spec.rank, in}, a);
      (st.*add)(stem + "lora_B.weight", {out, spec.rank}, b);
    }
  }
  st.write((fs::path(dir) / "adapter_model.safetensors").string());

  // The keys PEFT's LoraConfig saves, with the features chorus refuses off.
  nlohmann::ordered_json cfg;
  cfg["alpha_pattern"] = nlohmann::json::object();
  cfg["base_model_name_or_path"] = base.name.empty() ? nullptr : nlohmann::json(base.name);
  cfg["bias"] = "none";
  cfg["fan_in_fan_out"] = false;
  cfg["inference_mode"] = true;
  cfg["lora_alpha"] = spec.alpha == std::floor(spec.alpha) && spec.alpha < 1e9f
                          ? nlohmann::json(static_cast<int64_t>(spec.alpha))
                          : nlohmann::json(spec.alpha);
  cfg["lora_dropout"] = 0.0;
  cfg["modules_to_save"] = nullptr;
  cfg["peft_type"] = "LORA";
  cfg["r"] = spec.rank;
  cfg["rank_pattern"] = nlohmann::json::object();
  cfg["target_modules"] = modules;
  cfg["task_type"] = "CAUSAL_LM";
  cfg["use_dora"] = false;
  cfg["use_rslora"] = spec.use_rslora;
  const std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  std::ofstream f(cfg_path, std::ios::trunc);
  check(f.is_open(), cfg_path, "cannot open for writing");
  f << cfg.dump(2) << "\n";
  f.close();
  check(static_cast<bool>(f), cfg_path, "write failed");
}

void write_synthetic_lora_gguf(const std::string& path, const ModelConfig& base,
                               const SyntheticLoraSpec& spec) {
  check_spec(base, spec, path);
  gguf::Writer w;
  w.set_string("general.architecture", base.architecture);
  w.set_string("general.type", "adapter");
  w.set_string("general.name", "chorus synthetic LoRA");
  w.set_string("adapter.type", "lora");
  // llama.cpp's format has no rsLoRA flag (scale = alpha / r): an rsLoRA
  // adapter's alpha / sqrt(r) travels as alpha' = alpha * sqrt(r), so both
  // forms scale alike.
  const float alpha =
      spec.use_rslora ? spec.alpha * std::sqrt(static_cast<float>(spec.rank)) : spec.alpha;
  w.set_float32("adapter.lora.alpha", alpha);
  const gguf::TensorType type = spec.f16 ? gguf::TensorType::kF16 : gguf::TensorType::kF32;
  for (int l = 0; l < base.n_layers; ++l) {
    for (int ti = 0; ti < kLoraTargets; ++ti) {
      if (!spec.targets[ti]) continue;
      const auto t = static_cast<LoraTarget>(ti);
      const int in = lora_target_in(base, t);
      const int out = lora_target_out(base, t);
      const std::string stem = fmt::format("blk.{}.{}.weight.", l, lora_target_gguf_name(t));
      // Values are generated when the writer streams each tensor, so a big
      // adapter never sits in memory whole.
      for (bool is_b : {false, true}) {
        const int64_t cols = is_b ? spec.rank : in;
        const int64_t rows = is_b ? out : spec.rank;
        w.add_tensor(stem + (is_b ? "lora_b" : "lora_a"), type, {cols, rows},
                     [&base, spec, l, t, is_b, type, cols, rows](std::span<uint8_t> dst) {
                       const std::vector<float> m = matrix(base, spec, l, t, is_b);
                       const size_t rb = gguf::row_bytes(type, cols);
                       for (int64_t r = 0; r < rows; ++r) {
                         gguf::quantize_row(type, m.data() + r * cols, dst.data() + r * rb, cols);
                       }
                     });
      }
    }
  }
  w.write(path);
}

}  // namespace chorus
