// OpenAI request mapping: a JSON body of /v1/completions or
// /v1/chat/completions to a chorus::Request, every field checked. Fields
// OpenAI defines that chorus does not implement and that would change the
// answer (tools, response_format, logit_bias, ...) are refused
// with a 400 naming them instead of being ignored. Errors are ApiError.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chorus/chorus.h"
#include "server/chat_prompt.h"

namespace chorus::server {

enum class Endpoint { kCompletions, kChat };

// What the server offers, as requests may name it.
struct ServedModels {
  std::string base_id;     // the model file's stem, e.g. "stories260K"
  std::string model_path;  // also accepted as the base model's name
  std::set<std::string> adapters;
  int max_streams = 8;  // largest n
};

struct OpenAiRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  std::string model;                  // as the client named it (echoed back)
  std::vector<ChatMessage> messages;  // chat only; the prompt is formatted from them
  // Prompt, sampling, stop strings and streams (one per choice); n_predict
  // is set by fit_to_context once the prompt's length is known.
  Request request;
  std::optional<int64_t> max_tokens;
  std::string max_tokens_field = "max_tokens";  // or max_completion_tokens
  // Completions: the prompt's text comes before the completion's. The
  // logprobs asked for are request.logprobs (-1: none).
  bool echo = false;
};

// Parses and checks a body; for chat, `request.prompt` is left empty.
OpenAiRequest parse_openai_request(std::string_view body, Endpoint endpoint,
                                   const ServedModels& served);

// Checks that the prompt (`prompt_tokens` long) and the choices fit the
// context and sets request.n_predict: max_tokens, or when absent 16 for
// completions (as OpenAI) and the rest of the context for chat.
void fit_to_context(OpenAiRequest& r, int64_t prompt_tokens, int64_t context);

}  // namespace chorus::server
