// The reference forward pass; reads like llama2.c's forward(): embed, then a
// plain loop over layers (attention with a KV cache, SwiGLU FFN), then the
// output head.
#include "engine/reference_forward.h"

#include <algorithm>
#include <cmath>

#include "kernels/reference_ops.h"
#include "util/error.h"

namespace chorus {
namespace {

constexpr const char* kWhere = "reference forward";
constexpr int kMaxContext = 1 << 24;

void matvec(float* out, const WeightView& w, const float* x) {
  ref::matvec(out, w.type, w.data, w.rows, w.cols, x);
}

std::vector<float> to_f32(const WeightView& w) {
  std::vector<float> v(w.rows * w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    ref::dequantize_matrix_row(v.data() + r * w.cols, w.type, w.data, w.cols, r);
  }
  return v;
}

}  // namespace

ReferenceForward::ReferenceForward(const Model& model, int context_length, KvType kv_type)
    : model_(&model),
      config_(model.config),
      context_length_(context_length > 0 ? context_length : model.config.context_length),
      kv_type_(kv_type) {
  check(context_length_ <= kMaxContext, kWhere, "context length {} exceeds the limit of {}",
        context_length_, kMaxContext);
  const ModelConfig& c = config_;
  for (const LayerWeights& lw : model.weights.layers) {
    attn_norm_.push_back(to_f32(lw.attn_norm));
    ffn_norm_.push_back(to_f32(lw.ffn_norm));
  }
  output_norm_ = to_f32(model.weights.output_norm);

  x_.resize(c.dim);
  xb_.resize(std::max(c.dim, c.q_dim()));  // holds the attention output (q_dim) too
  xb2_.resize(c.dim);
  q_.resize(c.q_dim());
  k_.resize(c.kv_dim());
  v_.resize(c.kv_dim());
  hb_.resize(c.ffn_dim);
  hb2_.resize(c.ffn_dim);
  att_.resize(context_length_);
  logits_.resize(c.n_vocab);
  const size_t cache_floats = static_cast<size_t>(c.n_layers) * context_length_ * c.kv_dim();
  key_cache_.assign(cache_floats, 0.0f);
  value_cache_.assign(cache_floats, 0.0f);
}

std::span<const float> ReferenceForward::forward(int32_t token, int pos) {
  const ModelConfig& c = config_;
  const ModelWeights& w = model_->weights;
  check(token >= 0 && token < c.n_vocab, kWhere, "token id {} is out of range [0, {})", token,
        c.n_vocab);
  check(pos >= 0 && pos < context_length_, kWhere,
        "position {} is outside the context of {} tokens", pos, context_length_);
  check(pos <= n_cached_, kWhere, "position {} skips ahead of the {} cached positions", pos,
        n_cached_);
  n_cached_ = pos;  // rows after pos become stale as soon as row pos is rewritten

  const int dim = c.dim;
  const int head_dim = c.head_dim;
  const int heads_per_kv = c.n_heads / c.n_kv_heads;
  const float score_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  ref::RopeParams rope;
  rope.head_dim = head_dim;
  rope.rope_dim = c.rope_dim;
  rope.theta = c.rope_theta;
  rope.freq_scale = c.rope_freq_scale;
  rope.freq_factors = w.rope_freq_factors.empty() ? nullptr : w.rope_freq_factors.data();

  float* x = x_.data();
  ref::dequantize_matrix_row(x, w.token_embedding.type, w.token_embedding.data, dim, token);

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = w.layers[l];

    // Attention: q, k, v of this token; rotate q and k by position.
    ref::rmsnorm(xb_.data(), x, attn_norm_[l].data(), dim, c.rms_eps);
    matvec(q_.data(), lw.wq, xb_.data());
    matvec(k_.data(), lw.wk, xb_.data());
    matvec(v_.data(), lw.wv, xb_.data());
    ref::rope(q_.data(), c.n_heads, pos, rope);
    ref::rope(k_.data(), c.n_kv_heads, pos, rope);
    for (int i = 0; i < c.kv_dim(); ++i) {
      key_row(l, pos)[i] = kv_round(kv_type_, k_[i]);
      value_row(l, pos)[i] = kv_round(kv_type_, v_[i]);
    }

    // Causal attention over positions 0..pos; query heads share KV heads in
    // groups of heads_per_kv (GQA).
    for (int h = 0; h < c.n_heads; ++h) {
      const float* q = q_.data() + h * head_dim;
      const int kv_offset = (h / heads_per_kv) * head_dim;
      float* att = att_.data();
      for (int t = 0; t <= pos; ++t) {
        att[t] = ref::dot(q, key_row(l, t) + kv_offset, head_dim) * score_scale;
      }
      ref::softmax(att, pos + 1);
      float* out = xb_.data() + h * head_dim;
      std::fill(out, out + head_dim, 0.0f);
      for (int t = 0; t <= pos; ++t) {
        const float* v = value_row(l, t) + kv_offset;
        for (int i = 0; i < head_dim; ++i) out[i] += att[t] * v[i];
      }
    }
    matvec(xb2_.data(), lw.wo, xb_.data());
    for (int i = 0; i < dim; ++i) x[i] += xb2_[i];

    // Feed-forward: w_down(silu(w_gate(x)) * w_up(x)).
    ref::rmsnorm(xb_.data(), x, ffn_norm_[l].data(), dim, c.rms_eps);
    matvec(hb_.data(), lw.w_gate, xb_.data());
    matvec(hb2_.data(), lw.w_up, xb_.data());
    ref::silu(hb_.data(), c.ffn_dim);
    for (int i = 0; i < c.ffn_dim; ++i) hb_[i] *= hb2_[i];
    matvec(xb_.data(), lw.w_down, hb_.data());
    for (int i = 0; i < dim; ++i) x[i] += xb_[i];
  }

  ref::rmsnorm(x, x, output_norm_.data(), dim, c.rms_eps);
  matvec(logits_.data(), w.output, x);
  n_cached_ = pos + 1;
  return logits_;
}

std::vector<float> ReferenceForward::forward_all(std::span<const int32_t> tokens, int start_pos) {
  check(!tokens.empty(), kWhere, "forward_all needs at least one token");
  std::span<const float> logits;
  for (size_t i = 0; i < tokens.size(); ++i) {
    logits = forward(tokens[i], start_pos + static_cast<int>(i));
  }
  return {logits.begin(), logits.end()};
}

}  // namespace chorus
