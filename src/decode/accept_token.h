// The one accept path for a generated token, shared by every decoder (the
// plain loop, DS2D's verification walk, the first token of multi-stream
// runs and the scheduler): end-of-generation check, history, the token to
// feed next, the count, the caller, the length limit. Written once so the
// decoders cannot drift apart in what they report or when they stop.
#pragma once

#include <cstdint>
#include <span>

#include "decode/stream_state.h"

namespace chorus {

// Accepts `id` as the next token of stream `s` (index `index` for the
// callback), which the model chose from `logits`, the stream's last logits
// row (read only for limits.top_logprobs >= 0):
//  - an end-of-generation token (Tokenizer::is_eog, unless ignore_eos) ends
//    the stream and is not reported;
//  - otherwise it joins the history, becomes s.next and is reported through
//    on_token; false from on_token ends the stream (kCallback);
//  - a stream that has reported limits.n_predict tokens ends (kLength); its
//    last token is never fed, since nothing would read its logits.
// Returns true while the stream goes on (s.done false).
bool accept_token(StreamState& s, int index, int32_t id, std::span<const float> logits,
                  const DecodeLimits& limits, const OnStreamToken& on_token);

// The rank-th most likely token of `logits` (0 = argmax; ties go to the
// lower id): the smart-reply way to start k distinct streams.
int32_t ranked_token(std::span<const float> logits, int rank);

// A stream's first token from the logits after its prompt: the rank-th most
// likely one when rank >= 0, else drawn by the stream's sampler; then
// accepted as above. A stream with n_predict = 0 ends at once (kLength)
// without a token. Returns true while the stream goes on.
bool accept_first_token(StreamState& s, int index, std::span<const float> logits, int rank,
                        const DecodeLimits& limits, const OnStreamToken& on_token);

}  // namespace chorus
