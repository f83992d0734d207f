// What the single-sequence generation loop needs from a forward pass: feed
// tokens at consecutive positions, get the logits of the last one. Two
// implementations: the f32 reference pass (exact, slow) and the engine's
// fixed-capacity step (the fast path). Called once per token, so one
// virtual call is noise next to the step itself.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "engine/reference_forward.h"
#include "model/model.h"

namespace chorus {

class LogitsSource {
 public:
  virtual ~LogitsSource() = default;
  virtual void reset() = 0;
  // Runs tokens at positions start_pos, start_pos + 1, ... of the sequence
  // (start_pos = tokens fed so far) and returns the logits of the last one,
  // valid until the next call.
  virtual std::span<const float> advance(std::span<const int32_t> tokens, int start_pos) = 0;
  virtual int context_length() const = 0;
  virtual const Model& model() const = 0;
};

class ReferenceSource final : public LogitsSource {
 public:
  explicit ReferenceSource(ReferenceForward& forward) : forward_(&forward) {}
  void reset() override { forward_->reset(); }
  std::span<const float> advance(std::span<const int32_t> tokens, int start_pos) override;
  int context_length() const override { return forward_->context_length(); }
  const Model& model() const override { return forward_->model(); }

 private:
  ReferenceForward* forward_;
};

// Drives stream 0 of an engine: a prompt goes in chunks of max_rows rows
// (each chunk a chain: row j attends through row j - 1), decoding one row a
// step.
class EngineSource final : public LogitsSource {
 public:
  EngineSource(Engine& engine, const Model& model);
  void reset() override;
  std::span<const float> advance(std::span<const int32_t> tokens, int start_pos) override;
  int context_length() const override { return engine_->options().context; }
  const Model& model() const override { return *model_; }

 private:
  Engine* engine_;
  const Model* model_;
  std::vector<Row> rows_;  // reserved for max_rows: decoding allocates nothing
};

}  // namespace chorus
