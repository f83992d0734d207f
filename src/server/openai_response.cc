// See openai_response.h.
#include "server/openai_response.h"

namespace chorus::server {
namespace {

bool is_chat(const OpenAiRequest& req) { return req.endpoint == Endpoint::kChat; }

json envelope(const OpenAiRequest& req, const ResponseHead& head, bool chunk) {
  const char* object =
      is_chat(req) ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", head.id},
          {"object", object},
          {"created", head.created},
          {"model", head.model},
          {"system_fingerprint", head.system_fingerprint}};
}

// One choice of a chunk: a delta (chat) or a text piece (completions).
json chunk_choice(const OpenAiRequest& req, int index, const json& delta_or_text,
                  const json& finish) {
  json c = {{"index", index}, {"finish_reason", finish}};
  if (is_chat(req)) {
    c["delta"] = delta_or_text;
  } else {
    c["text"] = delta_or_text;
    c["logprobs"] = nullptr;
  }
  return c;
}

}  // namespace

const char* finish_reason(FinishReason f) {
  switch (f) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEndOfGeneration:
    case FinishReason::kStopString:
      return "stop";
    case FinishReason::kCallback:
      return "abort";
  }
  return "stop";
}

json usage_json(const Result& r) {
  int64_t completion = 0;
  for (const StreamResult& s : r.streams) completion += static_cast<int64_t>(s.tokens.size());
  const int64_t prompt = static_cast<int64_t>(r.prompt_tokens.size());
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

json completion_json(const OpenAiRequest& req, const ResponseHead& head, const Result& r) {
  json out = envelope(req, head, false);
  json choices = json::array();
  for (size_t i = 0; i < r.streams.size(); ++i) {
    const StreamResult& s = r.streams[i];
    json c = {{"index", i}, {"finish_reason", finish_reason(s.finish)}};
    if (is_chat(req)) {
      c["message"] = {{"role", "assistant"}, {"content", s.text}};
      c["logprobs"] = nullptr;
    } else {
      c["text"] = s.text;
      c["logprobs"] = nullptr;
    }
    if (!s.adapter.empty()) c["adapter"] = s.adapter;
    choices.push_back(std::move(c));
  }
  out["choices"] = std::move(choices);
  out["usage"] = usage_json(r);
  return out;
}

json role_chunk(const OpenAiRequest& req, const ResponseHead& head, int index) {
  json j = envelope(req, head, true);
  j["choices"] =
      json::array({chunk_choice(req, index, {{"role", "assistant"}, {"content", ""}}, nullptr)});
  return j;
}

json piece_chunk(const OpenAiRequest& req, const ResponseHead& head, int index,
                 std::string_view piece) {
  json j = envelope(req, head, true);
  const std::string text(piece);
  j["choices"] = json::array(
      {chunk_choice(req, index, is_chat(req) ? json{{"content", text}} : json(text), nullptr)});
  return j;
}

json finish_chunk(const OpenAiRequest& req, const ResponseHead& head, const Result& r) {
  json j = envelope(req, head, true);
  json choices = json::array();
  for (size_t i = 0; i < r.streams.size(); ++i) {
    choices.push_back(chunk_choice(req, static_cast<int>(i),
                                   is_chat(req) ? json::object() : json(""),
                                   finish_reason(r.streams[i].finish)));
  }
  j["choices"] = std::move(choices);
  // Without include_usage the usage rides on this chunk (as before OpenAI
  // had the option); with it, it comes alone in the chunk after.
  if (!req.include_usage) j["usage"] = usage_json(r);
  return j;
}

json usage_chunk(const OpenAiRequest& req, const ResponseHead& head, const Result& r) {
  json j = envelope(req, head, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(r);
  return j;
}

json error_json(const std::string& message, const std::string& type, const std::string& param) {
  json e = {{"message", message}, {"type", type}, {"code", nullptr}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  return {{"error", e}};
}

json model_json(const std::string& id, int64_t created, const std::string& parent) {
  json m = {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "chorus"}};
  if (!parent.empty()) m["parent"] = parent;
  return m;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace chorus::server
