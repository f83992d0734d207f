// Checks on ModelConfig shared by every loader, and the llama3 rope
// frequency factors derived from a config.
#include "model/config.h"

#include <cmath>
#include <numbers>

#include "util/error.h"

namespace chorus {
namespace {

// Upper bounds far above any real model; they keep a corrupt header from
// turning into a multi-terabyte allocation or an integer overflow.
constexpr int kMaxVocab = 1 << 24;
constexpr int kMaxDim = 1 << 17;
constexpr int kMaxLayers = 1024;
constexpr int kMaxHeads = 1024;
constexpr int kMaxHeadDim = 1024;
constexpr int kMaxFfn = 1 << 20;
constexpr int kMaxContext = 1 << 24;

void check_range(int value, int lo, int hi, const std::string& where, const char* field) {
  check(value >= lo && value <= hi, where, "{} = {} is out of range [{}, {}]", field, value, lo,
        hi);
}

}  // namespace

void validate_config(const ModelConfig& c, const std::string& where) {
  check_range(c.n_vocab, 1, kMaxVocab, where, "n_vocab");
  check_range(c.dim, 1, kMaxDim, where, "dim");
  check_range(c.n_layers, 1, kMaxLayers, where, "n_layers");
  check_range(c.n_heads, 1, kMaxHeads, where, "n_heads");
  check_range(c.n_kv_heads, 1, c.n_heads, where, "n_kv_heads");
  check(c.n_heads % c.n_kv_heads == 0, where, "n_heads = {} is not a multiple of n_kv_heads = {}",
        c.n_heads, c.n_kv_heads);
  check_range(c.head_dim, 2, kMaxHeadDim, where, "head_dim");
  check(c.head_dim % 2 == 0, where, "head_dim = {} is odd", c.head_dim);
  check_range(c.ffn_dim, 1, kMaxFfn, where, "ffn_dim");
  check_range(c.context_length, 1, kMaxContext, where, "context_length");
  check_range(c.rope_dim, 2, c.head_dim, where, "rope_dim");
  check(c.rope_dim % 2 == 0, where, "rope_dim = {} is odd", c.rope_dim);
  check(std::isfinite(c.rope_theta) && c.rope_theta > 0, where, "rope_theta = {} must be > 0",
        c.rope_theta);
  check(std::isfinite(c.rope_freq_scale) && c.rope_freq_scale > 0, where,
        "rope frequency scale = {} must be > 0", c.rope_freq_scale);
  check(std::isfinite(c.rms_eps) && c.rms_eps >= 0, where, "rms_eps = {} must be >= 0", c.rms_eps);
  const RopeScaling& s = c.rope_scaling;
  check(std::isfinite(s.factor) && s.factor >= 0, where, "rope scaling factor = {} must be >= 0",
        s.factor);
  if (s.factor > 0) {
    check(s.low_freq_factor > 0 && s.high_freq_factor > s.low_freq_factor, where,
          "rope scaling needs 0 < low_freq_factor < high_freq_factor, got {} and {}",
          s.low_freq_factor, s.high_freq_factor);
    check(s.original_context > 0, where, "rope scaling original context = {} must be > 0",
          s.original_context);
  }
}

std::vector<float> llama3_rope_freq_factors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  if (s.factor <= 0) return {};
  // Same piecewise rule as Meta's reference and llama.cpp's converter: keep
  // short wavelengths, divide long ones by `factor`, blend in between.
  const double low_wavelen = s.original_context / static_cast<double>(s.low_freq_factor);
  const double high_wavelen = s.original_context / static_cast<double>(s.high_freq_factor);
  std::vector<float> factors(c.rope_dim / 2);
  for (int i = 0; i < c.rope_dim / 2; ++i) {
    const double freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.rope_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      factors[i] = 1.0f;
    } else if (wavelen > low_wavelen) {
      factors[i] = s.factor;
    } else {
      const double smooth = (s.original_context / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      factors[i] = static_cast<float>(1.0 / ((1 - smooth) / s.factor + smooth));
    }
  }
  return factors;
}

}  // namespace chorus
