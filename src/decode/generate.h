// The plain generation loop on the reference forward pass: prefill the
// prompt, then sample one token at a time until a limit, an end-of-generation
// token or the caller says stop.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "decode/sampler.h"
#include "decode/logits_source.h"
#include "engine/reference_forward.h"

namespace chorus {

struct GenerateParams {
  int n_predict = 128;      // tokens to generate at most (>= 0)
  bool ignore_eos = false;  // keep going past end-of-generation tokens
  SamplerParams sampler;
};

// Stop strings are applied above the decode loops, on text, by the public
// API (src/api/stop_matcher.h): to a loop they are the caller saying stop.
// kCancelled: the request was cancelled from outside its callback (the
// scheduler's cancel()).
enum class StopReason { kLength, kEndOfGeneration, kCallback, kCancelled };

struct GenerateStats {
  int n_prompt = 0;
  int n_generated = 0;            // tokens passed to on_token
  double prompt_seconds = 0;      // prefill of the prompt
  double generation_seconds = 0;  // sampling + forward of the generated tokens
  StopReason stop_reason = StopReason::kLength;

  double prompt_tokens_per_second() const {
    return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0;
  }
  double generation_tokens_per_second() const {
    return generation_seconds > 0 ? n_generated / generation_seconds : 0;
  }
};

// Returns false to stop generating after this token.
using OnToken = std::function<bool(int32_t id)>;

// Resets `forward`, prefills `prompt` (at least one token, usually starting
// with BOS) and generates up to params.n_predict tokens, passing each to
// on_token. An end-of-generation token ends the loop without being passed on
// (unless ignore_eos).
// Throws Error when the prompt is empty, n_predict < 0, or
// prompt + n_predict exceeds forward.context_length().
GenerateStats generate(LogitsSource& forward, std::span<const int32_t> prompt,
                       const GenerateParams& params, const OnToken& on_token);
// The same on the f32 reference pass.
GenerateStats generate(ReferenceForward& forward, std::span<const int32_t> prompt,
                       const GenerateParams& params, const OnToken& on_token);

}  // namespace chorus
