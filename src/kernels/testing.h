// Helpers shared by the kernels' tests and benchmarks: random packed
// matrices in every layout variant, and owned storage for quantized
// activation rows (the engine uses its arena instead).
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/packed_matrix.h"
#include "util/half.h"

namespace chorus::kernels::testing {

// n rows of `cols` quantized activations with their own storage.
class ActivationRows {
 public:
  ActivationRows(int n, int64_t cols)
      : q_(static_cast<size_t>(n * cols)),
        scale_(static_cast<size_t>(n * cols / kQuantBlock)),
        scaled_sum_(static_cast<size_t>(n * cols / kQuantBlock)) {
    for (int t = 0; t < n; ++t) {
      views_.push_back({cols, q_.data() + t * cols, scale_.data() + t * cols / kQuantBlock,
                        scaled_sum_.data() + t * cols / kQuantBlock});
    }
  }
  // Quantizes x (n rows of cols, row stride ldx) with `table`.
  void quantize(const KernelTable& table, const float* x, int64_t ldx) {
    for (size_t t = 0; t < views_.size(); ++t) table.quantize_activations(x + t * ldx, views_[t].cols, views_[t]);
  }
  const QuantizedActivations* rows() const { return views_.data(); }
  const QuantizedActivations& operator[](size_t t) const { return views_[t]; }
  int n() const { return static_cast<int>(views_.size()); }

 private:
  AlignedBuffer<int8_t> q_;
  AlignedBuffer<float> scale_;
  AlignedBuffer<float> scaled_sum_;
  std::vector<QuantizedActivations> views_;
};

// Random codes, scales in [0.002, 0.02) and mins in [-0.16, 0) (LLaMA-like
// magnitudes), in either scale format; symmetric: mins are -8 * scales.
inline Int4Matrix random_int4(int64_t rows, int64_t cols, ScaleFormat format, std::mt19937& rng,
                              bool symmetric = false) {
  Int4Matrix m = Int4Matrix::allocate(rows, cols, format, symmetric);
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_real_distribution<float> scale(0.002f, 0.02f);
  uint8_t codes[kQuantBlock];
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < m.blocks(); ++b) {
      for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng));
      float s = scale(rng);
      if (format == ScaleFormat::kF16) s = f16_to_f32(f32_to_f16(s));
      const float mn = symmetric ? -8.0f * s : -8.0f * s * std::uniform_real_distribution<float>(0.5f, 1.0f)(rng);
      m.set_block(r, b, codes, s, mn);
    }
  }
  return m;
}

// Random int8 quants (including -128) with scales in [0.0005, 0.005).
inline Int8Matrix random_int8(int64_t rows, int64_t cols, std::mt19937& rng) {
  Int8Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.quants = AlignedBuffer<int8_t>(static_cast<size_t>(rows * cols));
  m.scales = AlignedBuffer<uint16_t>(static_cast<size_t>(rows * m.blocks()));
  std::uniform_int_distribution<int> q(-128, 127);
  for (size_t i = 0; i < m.quants.size(); ++i) m.quants[i] = static_cast<int8_t>(q(rng));
  std::uniform_real_distribution<float> scale(0.0005f, 0.005f);
  for (size_t i = 0; i < m.scales.size(); ++i) m.scales[i] = f32_to_f16(scale(rng));
  return m;
}

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float sigma = 1.0f) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

}  // namespace chorus::kernels::testing
