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

json bytes_json(const std::string& b) {
  json a = json::array();
  for (unsigned char c : b) a.push_back(static_cast<int>(c));
  return a;
}

// Chat: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}.
json chat_logprobs_json(std::span<const GeneratedLogprob> logprobs) {
  json content = json::array();
  for (const GeneratedLogprob& g : logprobs) {
    json top = json::array();
    for (const TokenLogprob& t : g.top) {
      top.push_back({{"token", t.bytes}, {"logprob", t.logprob}, {"bytes", bytes_json(t.bytes)}});
    }
    content.push_back({{"token", g.bytes},
                       {"logprob", g.logprob},
                       {"bytes", bytes_json(g.bytes)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

// Completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}],
// text_offset}; offsets count bytes of the tokens' text from *offset on.
json completion_logprobs_json(std::span<const GeneratedLogprob> logprobs, int64_t* offset) {
  json tokens = json::array(), values = json::array(), tops = json::array(),
       offsets = json::array();
  for (const GeneratedLogprob& g : logprobs) {
    tokens.push_back(g.bytes);
    values.push_back(g.logprob);
    json top = json::object();
    for (const TokenLogprob& t : g.top) {
      // json keys must be valid UTF-8 when dumped; dump() replaces bad bytes.
      top[t.bytes] = t.logprob;
    }
    tops.push_back(std::move(top));
    offsets.push_back(*offset);
    *offset += static_cast<int64_t>(g.bytes.size());
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(values)},
          {"top_logprobs", std::move(tops)},
          {"text_offset", std::move(offsets)}};
}

json logprobs_json(const OpenAiRequest& req, std::span<const GeneratedLogprob> logprobs,
                   int64_t* offset) {
  if (req.request.logprobs < 0) return nullptr;
  return is_chat(req) ? chat_logprobs_json(logprobs) : completion_logprobs_json(logprobs, offset);
}

}  // namespace

int64_t first_text_offset(const OpenAiRequest& req) {
  return req.echo ? static_cast<int64_t>(req.request.prompt.size()) : 0;
}

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
    int64_t offset = first_text_offset(req);
    if (is_chat(req)) {
      c["message"] = {{"role", "assistant"}, {"content", s.text}};
    } else {
      c["text"] = req.echo ? req.request.prompt + s.text : s.text;
    }
    c["logprobs"] = logprobs_json(req, s.logprobs, &offset);
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
                 std::string_view piece, std::span<const GeneratedLogprob> logprobs,
                 int64_t* text_offset) {
  json j = envelope(req, head, true);
  const std::string text(piece);
  json c = chunk_choice(req, index, is_chat(req) ? json{{"content", text}} : json(text), nullptr);
  int64_t unused = 0;
  if (req.request.logprobs >= 0)
    c["logprobs"] = logprobs_json(req, logprobs, text_offset != nullptr ? text_offset : &unused);
  j["choices"] = json::array({std::move(c)});
  return j;
}

json finish_chunk(const OpenAiRequest& req, const ResponseHead& head, const Result& r,
                  const std::vector<std::vector<GeneratedLogprob>>* leftover,
                  std::vector<int64_t>* text_offset) {
  json j = envelope(req, head, true);
  json choices = json::array();
  for (size_t i = 0; i < r.streams.size(); ++i) {
    json c = chunk_choice(req, static_cast<int>(i), is_chat(req) ? json::object() : json(""),
                          finish_reason(r.streams[i].finish));
    if (req.request.logprobs >= 0 && leftover != nullptr && !(*leftover)[i].empty()) {
      int64_t unused = 0;
      c["logprobs"] = logprobs_json(req, (*leftover)[i],
                                    text_offset != nullptr ? &(*text_offset)[i] : &unused);
    }
    choices.push_back(std::move(c));
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
