// LoRA adapters as loaded from the files people have: a PEFT directory
// (adapter_config.json + adapter_model.safetensors) or a llama.cpp GGUF
// adapter. Loading validates the adapter against a base model's shapes and
// brings every matrix to one form, in f32 and in the base model's (GGUF,
// interleaved-RoPE) row order, ready to be copied into an engine slot.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace chorus {

// The projections an adapter may target, in a fixed order.
enum class LoraTarget : uint8_t { kQ, kK, kV, kO, kGate, kUp, kDown };
inline constexpr int kLoraTargets = 7;

// "q", "k", "v", "o", "gate", "up", "down".
std::string_view lora_target_name(LoraTarget t);
// GGUF tensor stem: "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
// "ffn_up", "ffn_down".
std::string_view lora_target_gguf_name(LoraTarget t);
// PEFT / Hugging Face module: "q_proj", ..., "o_proj", "gate_proj", "up_proj", "down_proj".
std::string_view lora_target_hf_name(LoraTarget t);
// Input and output width of the base projection: q is [q_dim x dim], etc.
int lora_target_in(const ModelConfig& c, LoraTarget t);
int lora_target_out(const ModelConfig& c, LoraTarget t);

// delta W = scale * B A for one projection of one layer.
struct LoraPair {
  int rank = 0;
  int in = 0;            // A: [rank x in], row-major
  int out = 0;           // B: [out x rank], row-major
  std::vector<float> a;
  std::vector<float> b;  // rows already in GGUF order for q and k
};

struct LoraAdapter {
  std::string path;
  std::string format;        // "peft" or "gguf"
  std::string architecture;  // "llama" (GGUF general.architecture; PEFT: assumed)
  float alpha = 0.0f;        // lora_alpha; 0 in the file means alpha = rank
  bool use_rslora = false;   // scale alpha / sqrt(r) instead of alpha / r
  int max_rank = 0;          // largest rank over the pairs
  size_t file_tensor_bytes = 0;  // bytes of the adapter's tensors in the file
  // layers[l][target]: the pair, or nullopt where the adapter leaves the
  // projection alone.
  std::vector<std::array<std::optional<LoraPair>, kLoraTargets>> layers;

  // The multiplier of B A for one pair: user_scale * alpha / rank, or
  // user_scale * alpha / sqrt(rank) with rsLoRA.
  float pair_scale(const LoraPair& p, float user_scale) const;
  int n_pairs() const;
  // Which targets appear in at least one layer.
  std::array<bool, kLoraTargets> targets() const;
};

// Loads an adapter and checks it fits `base` (architecture, layer count,
// every shape). `path` is a PEFT directory, its adapter_model.safetensors,
// or a GGUF file with general.type = adapter. Throws Error naming the file
// and tensor at fault.
LoraAdapter load_lora(const std::string& path, const ModelConfig& base);
LoraAdapter load_peft_lora(const std::string& dir, const ModelConfig& base);
LoraAdapter load_gguf_lora(const std::string& path, const ModelConfig& base);

// Reads an adapter without a base model, to describe it (`chorus info`):
// the file and each pair's own consistency (partners, ranks) are checked,
// widths are taken from the file, layers run to the largest index found and
// PEFT q/k rows stay in HF order. Throws Error like load_lora.
LoraAdapter inspect_lora(const std::string& path);
// Whether `path` names an adapter rather than a model: a directory, a
// *.safetensors file or a GGUF whose general.type is "adapter". Never throws
// (a file that cannot be read is "not an adapter"; loading it then reports why).
bool is_lora_path(const std::string& path);

// What a test or benchmark needs from a random adapter.
struct SyntheticLoraSpec {
  int rank = 8;
  float alpha = 16.0f;
  bool use_rslora = false;
  std::array<bool, kLoraTargets> targets{true, true, true, true, true, true, true};
  uint64_t seed = 1;
  // Standard deviation of A and B entries; large enough that the delta moves
  // the logits visibly on a small model.
  float stddev = 0.05f;
  bool f16 = true;  // tensor type written (F16, else F32)
};

// Writes the same random adapter for `base` in both formats: a PEFT
// directory (HF row order for q/k, i.e. un-permuted) and a llama.cpp GGUF
// adapter. Loading either gives identical LoraAdapter matrices. GGUF has no
// rsLoRA flag: with use_rslora its alpha is alpha * sqrt(rank), so the pair
// scales agree.
void write_synthetic_lora_peft(const std::string& dir, const ModelConfig& base,
                               const SyntheticLoraSpec& spec);
void write_synthetic_lora_gguf(const std::string& path, const ModelConfig& base,
                               const SyntheticLoraSpec& spec);

// Permutes the rows of a [n_heads * head_dim x cols] matrix from Hugging
// Face's rotate-half order to GGUF's interleaved order (what llama.cpp's
// converter does to q/k weights), or back with inverse = true.
void permute_rope_rows(std::vector<float>& m, int n_heads, int head_dim, int cols,
                       bool inverse = false);

}  // namespace chorus
