// Assembles LoRA pairs from the tensors a loader found, with the checks
// common to every file format.
#include <algorithm>
#include <string>
#include <utility>

#include "model/lora_internal.h"
#include "util/error.h"

namespace chorus::lora_internal {
namespace {

// Widths beyond this cannot come from a model chorus runs; without a base
// model they bound what a file can make us allocate per row.
constexpr int64_t kMaxWidth = 1 << 24;

}  // namespace

std::optional<int> parse_layer_index(std::string_view s) {
  if (s.empty() || s.size() > 6 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > kMaxLayerIndex) return std::nullopt;
  return v;
}

void LoraBuilder::add(int layer, LoraTarget t, bool is_b, LoraTensor tensor) {
  if (base_ != nullptr) {
    check(layer < base_->n_layers, tensor.where, "is for layer {}, but the model has {} layers",
          layer, base_->n_layers);
  }
  Halves& h = pairs_[{layer, static_cast<int>(t)}];
  std::optional<LoraTensor>& slot = is_b ? h.b : h.a;
  check(!slot.has_value(), tensor.where, "appears twice for layer {} {}", layer,
        lora_target_name(t));
  slot = std::move(tensor);
}

LoraAdapter LoraBuilder::finish(LoraAdapter adapter, const std::string& where, int config_rank,
                                bool hf_rope_order) {
  check(!pairs_.empty(), where, "holds no LoRA tensors");
  int n_layers = 0;
  if (base_ != nullptr) {
    n_layers = base_->n_layers;
  } else {
    n_layers = pairs_.rbegin()->first.first + 1;
  }
  adapter.layers.assign(static_cast<size_t>(n_layers), {});
  adapter.max_rank = 0;
  adapter.file_tensor_bytes = 0;

  for (auto& [key, h] : pairs_) {
    const auto [layer, target_index] = key;
    const auto target = static_cast<LoraTarget>(target_index);
    const std::string_view tname = lora_target_name(target);
    if (!h.a || !h.b) {
      const LoraTensor& present = h.a ? *h.a : *h.b;
      throw Error(present.where, fmt::format("has no partner: '{}' is missing", present.partner));
    }
    const LoraTensor& a = *h.a;
    const LoraTensor& b = *h.b;
    check(a.rows > 0, a.where, "has rank {}; a LoRA rank must be positive", a.rows);
    check(b.cols == a.rows, b.where, "has rank {} but its partner '{}' has rank {}", b.cols,
          b.partner, a.rows);
    check(a.rows <= kMaxWidth, a.where, "rank {} is absurd", a.rows);
    if (config_rank > 0) {
      check(a.rows == config_rank, a.where, "has rank {}, but the adapter's configured r is {}",
            a.rows, config_rank);
    }
    if (base_ != nullptr) {
      const int in = lora_target_in(*base_, target);
      const int out = lora_target_out(*base_, target);
      check(a.cols == in, a.where,
            "takes {} inputs, but the model's {} projection takes {} (adapter for another model?)",
            a.cols, tname, in);
      check(b.rows == out, b.where,
            "gives {} outputs, but the model's {} projection gives {} (adapter for another model?)",
            b.rows, tname, out);
    } else {
      check(a.cols > 0 && a.cols <= kMaxWidth, a.where, "has an absurd input width {}", a.cols);
      check(b.rows > 0 && b.rows <= kMaxWidth, b.where, "has an absurd output width {}", b.rows);
    }

    LoraPair p;
    p.rank = static_cast<int>(a.rows);
    p.in = static_cast<int>(a.cols);
    p.out = static_cast<int>(b.rows);
    p.a = a.read();
    p.b = b.read();
    // The readers convert exactly rows x cols values; a mismatch is a bug
    // in a loader, reported rather than trusted.
    check(p.a.size() == static_cast<size_t>(p.rank) * p.in &&
              p.b.size() == static_cast<size_t>(p.out) * p.rank,
          a.where, "internal error: converted sizes do not match the shape");
    if (hf_rope_order && base_ != nullptr &&
        (target == LoraTarget::kQ || target == LoraTarget::kK)) {
      const int heads = target == LoraTarget::kQ ? base_->n_heads : base_->n_kv_heads;
      permute_rope_rows(p.b, heads, base_->head_dim, p.rank);
    }
    adapter.max_rank = std::max(adapter.max_rank, p.rank);
    adapter.file_tensor_bytes += a.n_bytes + b.n_bytes;
    adapter.layers[static_cast<size_t>(layer)][static_cast<size_t>(target_index)] = std::move(p);
  }
  return adapter;
}

}  // namespace chorus::lora_internal
