// The parts of an adapter common to every file format; the loaders live in
// lora_peft.cc and lora_gguf.cc.
#include "model/lora.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "util/error.h"

namespace chorus {
namespace {

struct TargetNames {
  std::string_view name, gguf, hf;
};

constexpr std::array<TargetNames, kLoraTargets> kNames{{
    {"q", "attn_q", "q_proj"},
    {"k", "attn_k", "k_proj"},
    {"v", "attn_v", "v_proj"},
    {"o", "attn_output", "o_proj"},
    {"gate", "ffn_gate", "gate_proj"},
    {"up", "ffn_up", "up_proj"},
    {"down", "ffn_down", "down_proj"},
}};

}  // namespace

std::string_view lora_target_name(LoraTarget t) { return kNames[static_cast<int>(t)].name; }
std::string_view lora_target_gguf_name(LoraTarget t) { return kNames[static_cast<int>(t)].gguf; }
std::string_view lora_target_hf_name(LoraTarget t) { return kNames[static_cast<int>(t)].hf; }

int lora_target_in(const ModelConfig& c, LoraTarget t) {
  switch (t) {
    case LoraTarget::kO: return c.q_dim();
    case LoraTarget::kDown: return c.ffn_dim;
    default: return c.dim;
  }
}

int lora_target_out(const ModelConfig& c, LoraTarget t) {
  switch (t) {
    case LoraTarget::kQ: return c.q_dim();
    case LoraTarget::kK:
    case LoraTarget::kV: return c.kv_dim();
    case LoraTarget::kGate:
    case LoraTarget::kUp: return c.ffn_dim;
    default: return c.dim;
  }
}

float LoraAdapter::pair_scale(const LoraPair& p, float user_scale) const {
  if (p.rank <= 0) return 0.0f;
  // PEFT and llama.cpp both read a missing (zero) alpha as alpha = rank.
  const float a = alpha > 0.0f ? alpha : static_cast<float>(p.rank);
  const float r = use_rslora ? std::sqrt(static_cast<float>(p.rank)) : static_cast<float>(p.rank);
  return user_scale * a / r;
}

int LoraAdapter::n_pairs() const {
  int n = 0;
  for (const auto& layer : layers) {
    for (const auto& p : layer) n += p.has_value();
  }
  return n;
}

std::array<bool, kLoraTargets> LoraAdapter::targets() const {
  std::array<bool, kLoraTargets> seen{};
  for (const auto& layer : layers) {
    for (int t = 0; t < kLoraTargets; ++t) seen[t] = seen[t] || layer[t].has_value();
  }
  return seen;
}

void permute_rope_rows(std::vector<float>& m, int n_heads, int head_dim, int cols, bool inverse) {
  check(n_heads > 0 && head_dim > 0 && head_dim % 2 == 0 && cols >= 0 &&
            m.size() == static_cast<size_t>(n_heads) * head_dim * cols,
        "permute_rope_rows", "{} values are not {} heads x {} (even) rows x {} columns", m.size(),
        n_heads, head_dim, cols);
  // llama.cpp's convert_hf_to_gguf.py permute: reshape(n_head, 2, head_dim / 2,
  // cols).swapaxes(1, 2), i.e. GGUF row 2i + j of a head is HF row
  // j * head_dim / 2 + i: the two halves rotated together become neighbours.
  std::vector<float> out(m.size());
  const int half = head_dim / 2;
  const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < half; ++i) {
      for (int j = 0; j < 2; ++j) {
        const size_t gguf_row = static_cast<size_t>(h) * head_dim + 2 * i + j;
        const size_t hf_row = static_cast<size_t>(h) * head_dim + j * half + i;
        const size_t src = inverse ? gguf_row : hf_row;
        const size_t dst = inverse ? hf_row : gguf_row;
        if (row_bytes) std::memcpy(&out[dst * cols], &m[src * cols], row_bytes);
      }
    }
  }
  m.swap(out);
}

}  // namespace chorus
