// Rotary position embedding from precomputed angles; see rope.h.
#include "engine/rope.h"

#include <cmath>

namespace chorus {

void rope_angles(int pos, const ref::RopeParams& p, float* cos, float* sin) {
  for (int i = 0; i < p.rope_dim / 2; ++i) {
    // Same expression as ref::rope, so the rotation is bit-identical to it.
    double angle = pos * static_cast<double>(p.freq_scale) *
                   std::pow(static_cast<double>(p.theta), -2.0 * i / p.rope_dim);
    if (p.freq_factors != nullptr) angle /= p.freq_factors[i];
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
}

void rope_rotate(float* vec, int n_heads, int head_dim, int rope_dim, const float* cos,
                 const float* sin) {
  const int pairs = rope_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = vec + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < pairs; ++i) {
      const float v0 = v[2 * i];
      const float v1 = v[2 * i + 1];
      v[2 * i] = v0 * cos[i] - v1 * sin[i];
      v[2 * i + 1] = v0 * sin[i] + v1 * cos[i];
    }
  }
}

}  // namespace chorus
