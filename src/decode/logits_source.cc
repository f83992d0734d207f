#include "decode/logits_source.h"

#include <algorithm>

#include "util/error.h"

namespace chorus {

std::span<const float> ReferenceSource::advance(std::span<const int32_t> tokens, int start_pos) {
  check(!tokens.empty(), "advance", "no tokens");
  std::span<const float> logits;
  for (size_t i = 0; i < tokens.size(); ++i) logits = forward_->forward(tokens[i], start_pos + static_cast<int>(i));
  return logits;
}

EngineSource::EngineSource(Engine& engine, const Model& model) : engine_(&engine), model_(&model) {
  rows_.reserve(engine.options().max_rows);
}

void EngineSource::reset() { engine_->kv_cache().clear_stream(0); }

std::span<const float> EngineSource::advance(std::span<const int32_t> tokens, int start_pos) {
  check(!tokens.empty(), "advance", "no tokens");
  const size_t chunk = static_cast<size_t>(engine_->options().max_rows);
  std::span<const float> logits;
  for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
    const size_t end = std::min(tokens.size(), begin + chunk);
    rows_.clear();
    for (size_t i = begin; i < end; ++i) {
      Row r;
      r.token = tokens[i];
      r.pos = start_pos + static_cast<int>(i);
      r.parent = i == begin ? -1 : static_cast<int32_t>(i - begin - 1);
      r.want_logits = i + 1 == tokens.size();
      rows_.push_back(r);
    }
    logits = engine_->step(rows_);
  }
  return logits;
}

}  // namespace chorus
