// The f32 reference forward pass: one token at a time through every layer,
// with a plain [layer][pos][kv_dim] cache. Slow on purpose (scalar, single
// thread); it is the yardstick every fast step is checked against.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv_type.h"
#include "model/model.h"

namespace chorus {

class ReferenceForward {
 public:
  // context_length <= 0 uses the model's trained context. The model must
  // outlive this object. kv_type rounds what the cache keeps as an engine
  // cache of that type does (kF32: the plain f32 yardstick).
  ReferenceForward(const Model& model, int context_length = 0, KvType kv_type = KvType::kF32);

  // Runs `token` at position `pos` and returns the logits (n_vocab floats,
  // valid until the next call). Positions must be filled in order: pos may
  // be at most the number of cached positions, and running an earlier pos
  // drops everything after it (rewind). Throws Error for a token out of
  // range or pos outside [0, n_cached()] or >= context_length().
  std::span<const float> forward(int32_t token, int pos);

  // Runs tokens at positions start_pos, start_pos + 1, ... and returns the
  // logits of the last one (copied).
  std::vector<float> forward_all(std::span<const int32_t> tokens, int start_pos = 0);

  void reset() { n_cached_ = 0; }
  int n_cached() const { return n_cached_; }
  int context_length() const { return context_length_; }
  const Model& model() const { return *model_; }

 private:
  float* key_row(int layer, int pos) { return key_cache_.data() + cache_offset(layer, pos); }
  float* value_row(int layer, int pos) { return value_cache_.data() + cache_offset(layer, pos); }
  size_t cache_offset(int layer, int pos) const {
    return (static_cast<size_t>(layer) * context_length_ + pos) * config_.kv_dim();
  }

  const Model* model_;
  ModelConfig config_;
  int context_length_;
  KvType kv_type_;
  int n_cached_ = 0;

  // Norm weights as f32, whatever type the file stores them in.
  std::vector<std::vector<float>> attn_norm_, ffn_norm_;
  std::vector<float> output_norm_;

  // Activations of the current token (llama2.c's RunState).
  std::vector<float> x_, xb_, xb2_, q_, k_, v_, hb_, hb2_, att_, logits_;
  std::vector<float> key_cache_, value_cache_;  // [layer][pos][kv_dim]
};

}  // namespace chorus
