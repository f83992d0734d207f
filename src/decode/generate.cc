// The reference generation loop; see generate.h.
#include "decode/generate.h"

#include <algorithm>

#include "util/error.h"
#include "util/resources.h"

namespace chorus {

GenerateStats generate(ReferenceForward& forward, std::span<const int32_t> prompt,
                       const GenerateParams& params, const OnToken& on_token) {
  ReferenceSource source(forward);
  return generate(source, prompt, params, on_token);
}

GenerateStats generate(LogitsSource& forward, std::span<const int32_t> prompt,
                       const GenerateParams& params, const OnToken& on_token) {
  validate(params.sampler);
  check(!prompt.empty(), "prompt", "is empty; it needs at least one token (usually BOS)");
  check(params.n_predict >= 0, "n_predict", "must be >= 0, got {}", params.n_predict);
  const int n_prompt = static_cast<int>(prompt.size());
  check(static_cast<int64_t>(n_prompt) + params.n_predict <= forward.context_length(), "n_predict",
        "{} prompt tokens + {} to generate exceed the context of {}", n_prompt, params.n_predict,
        forward.context_length());
  const Tokenizer* tok = forward.model().tokenizer.get();

  GenerateStats stats;
  stats.n_prompt = n_prompt;
  forward.reset();
  const double t0 = now_seconds();
  std::span<const float> logits = forward.advance(prompt, 0);
  const double t1 = now_seconds();
  stats.prompt_seconds = t1 - t0;

  Sampler sampler(params.sampler);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  history.reserve(n_prompt + params.n_predict);
  for (int i = 0; i < params.n_predict; ++i) {
    const int32_t id = sampler.sample(logits, history);
    if (!params.ignore_eos && tok != nullptr && tok->is_eog(id)) {
      stats.stop_reason = StopReason::kEndOfGeneration;
      break;
    }
    history.push_back(id);
    ++stats.n_generated;
    if (!on_token(id)) {
      stats.stop_reason = StopReason::kCallback;
      break;
    }
    // The last token is never fed back: nothing would read its logits.
    if (i + 1 < params.n_predict) logits = forward.advance(std::span<const int32_t>(&id, 1), n_prompt + i);
  }
  stats.generation_seconds = now_seconds() - t1;
  return stats;
}

}  // namespace chorus
