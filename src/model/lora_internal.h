// What the LoRA file loaders share (not part of the model layer's interface):
// LoraBuilder turns the A/B tensors a loader finds into a LoraAdapter,
// applying the checks every format needs (partners, ranks, shapes against
// the base model) in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/lora.h"

namespace chorus::lora_internal {

// Layer indices above this are rejected even without a base model, so a
// hostile name cannot size a huge layer table.
inline constexpr int kMaxLayerIndex = 1 << 16;

// One A or B tensor as found in a file, not yet converted.
struct LoraTensor {
  std::string where;                         // "path: tensor 'name'", for errors
  std::string partner;                       // the name its A or B partner must have
  int64_t rows = 0;                          // A: rank, B: out
  int64_t cols = 0;                          // A: in, B: rank
  size_t n_bytes = 0;                        // in the file
  std::function<std::vector<float>()> read;  // row-major f32, rows x cols
};

class LoraBuilder {
 public:
  // `base` may be null (inspecting a file without a model): then only the
  // pairs' own consistency is checked and the layer table is as long as the
  // largest layer index found.
  explicit LoraBuilder(const ModelConfig* base) : base_(base) {}

  // Records A (is_b = false) or B of one projection. Throws Error for a layer
  // beyond the base model or a tensor seen twice.
  void add(int layer, LoraTarget t, bool is_b, LoraTensor tensor);

  // Checks every pair (both halves present, equal positive ranks, rank =
  // `config_rank` when that is > 0, widths of the base projection), reads
  // the values and, when `hf_rope_order` and a base is known, permutes q/k B
  // rows to GGUF order. `adapter` arrives with its header fields filled;
  // `where` names the file for adapter-wide errors.
  LoraAdapter finish(LoraAdapter adapter, const std::string& where, int config_rank,
                     bool hf_rope_order);

 private:
  struct Halves {
    std::optional<LoraTensor> a, b;
  };
  const ModelConfig* base_;
  std::map<std::pair<int, int>, Halves> pairs_;  // (layer, target)
};

// Parses a non-negative decimal layer index without sign or leading zeros;
// nullopt when `s` is not one or exceeds kMaxLayerIndex.
std::optional<int> parse_layer_index(std::string_view s);

// The format readers behind load_lora / inspect_lora (`base` may be null).
LoraAdapter read_peft_lora(const std::string& config_path, const std::string& tensors_path,
                           const ModelConfig* base);
// A PEFT directory: adapter_config.json + adapter_model.safetensors.
LoraAdapter read_peft_dir(const std::string& dir, const ModelConfig* base);
LoraAdapter read_gguf_lora(const std::string& path, const ModelConfig* base);

}  // namespace chorus::lora_internal
