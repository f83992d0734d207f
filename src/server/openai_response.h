// OpenAI response mapping: chorus results to the JSON OpenAI clients read
// (completion objects, stream chunks, usage, models, errors).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "chorus/chorus.h"
#include "server/openai_request.h"

namespace chorus::server {

using nlohmann::json;

// What every response of one request shares.
struct ResponseHead {
  std::string id;                  // cmpl-... / chatcmpl-...
  int64_t created = 0;             // Unix seconds
  std::string model;               // as the client named it
  std::string system_fingerprint;  // chorus-<version>-<kernel table>
};

// "length", "stop" (end of generation, stop string) or "abort" (the
// generation was cut short: the server is stopping or the client left).
const char* finish_reason(FinishReason f);

json usage_json(const Result& r);
json completion_json(const OpenAiRequest& req, const ResponseHead& head, const Result& r);

// Stream chunks: the assistant role (chat only, first), one text piece of
// one choice, every choice's finish reason (with the usage unless it comes
// in its own chunk), and the usage chunk of stream_options.include_usage.
// With logprobs asked for, a piece carries the log-probabilities of the
// tokens that completed it, and the finish chunk those of each choice's
// tokens no piece carried (`leftover[i]`: held back, part of a stop
// string), so a stream reports every generated token as a reply does.
// `text_offset[i]`: completions' running offset of choice i's next token.
json role_chunk(const OpenAiRequest& req, const ResponseHead& head, int index);
json piece_chunk(const OpenAiRequest& req, const ResponseHead& head, int index,
                 std::string_view piece, std::span<const GeneratedLogprob> logprobs = {},
                 int64_t* text_offset = nullptr);
json finish_chunk(const OpenAiRequest& req, const ResponseHead& head, const Result& r,
                  const std::vector<std::vector<GeneratedLogprob>>* leftover = nullptr,
                  std::vector<int64_t>* text_offset = nullptr);
json usage_chunk(const OpenAiRequest& req, const ResponseHead& head, const Result& r);

// The bytes where a completion's text starts: after the prompt with echo.
int64_t first_text_offset(const OpenAiRequest& req);

json error_json(const std::string& message, const std::string& type, const std::string& param);
json model_json(const std::string& id, int64_t created, const std::string& parent);

// JSON text; invalid UTF-8 (never produced by chorus) is replaced, not thrown on.
std::string dump(const json& j);

}  // namespace chorus::server
