// Hyperparameters of a LLaMA-family model, as read from GGUF metadata or a
// llama2.c header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

struct RopeScaling {  // llama3-style frequency scaling; factor 0 = none
  float factor = 0.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_context = 8192;
};

struct ModelConfig {
  std::string architecture = "llama";
  std::string name;
  int n_vocab = 0;
  int dim = 0;          // embedding / residual width
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;   // < n_heads for grouped-query attention
  int head_dim = 0;     // usually dim / n_heads
  int ffn_dim = 0;      // SwiGLU hidden width
  int context_length = 0;  // trained context
  int rope_dim = 0;     // rotated dimensions per head (<= head_dim)
  float rope_theta = 10000.0f;
  float rope_freq_scale = 1.0f;  // linear position interpolation (1 / rope.scaling.factor)
  RopeScaling rope_scaling;
  float rms_eps = 1e-5f;
  bool tied_output = false;  // output head shares the token embedding

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
};

// Throws Error(where, ...) unless the hyperparameters describe a model chorus
// can run: positive sizes within sane limits, heads dividing evenly into
// KV groups, an even rope_dim no larger than head_dim.
void validate_config(const ModelConfig& config, const std::string& where);

// The llama3 divisor of each of the rope_dim / 2 rotation frequencies
// (what llama.cpp's converter stores as rope_freqs.weight); empty when
// rope_scaling.factor is 0.
std::vector<float> llama3_rope_freq_factors(const ModelConfig& config);

}  // namespace chorus
