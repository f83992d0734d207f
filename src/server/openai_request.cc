// See openai_request.h.
#include "server/openai_request.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "server/api_error.h"

namespace chorus::server {
namespace {

using nlohmann::json;

constexpr int kMaxStopStrings = 4;
constexpr int kMaxChatTopLogprobs = 20;       // OpenAI's limits
constexpr int kMaxCompletionLogprobs = 5;

// A field that is present and not null.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number_field(const json& body, const char* name, double lo, double hi, double def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_number()) bad_request(name, fmt::format("'{}' must be a number", name));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad_request(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, x));
  return x;
}

// Integers; an integral float such as 8.0 counts (JavaScript clients send them).
int64_t int_field(const json& body, const char* name, int64_t lo, int64_t hi, int64_t def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  auto out_of_range = [&](const std::string& got) {
    bad_request(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, got));
  };
  if (v->is_number_float()) {
    const double x = v->get<double>();
    if (!std::isfinite(x) || x != std::floor(x))
      bad_request(name, fmt::format("'{}' must be an integer", name));
    // Doubles at or past 2^63 do not convert to int64_t.
    if (x < static_cast<double>(lo) || x >= 9223372036854775808.0 || x > static_cast<double>(hi))
      out_of_range(fmt::format("{}", x));
    return static_cast<int64_t>(x);
  }
  if (!v->is_number_integer() && !v->is_number_unsigned())
    bad_request(name, fmt::format("'{}' must be an integer", name));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    out_of_range(fmt::format("{}", v->get<uint64_t>()));
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) out_of_range(fmt::format("{}", x));
  return x;
}

bool bool_field(const json& body, const char* name, bool def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_boolean()) bad_request(name, fmt::format("'{}' must be a boolean", name));
  return v->get<bool>();
}

// OpenAI fields chorus does not implement. Their neutral values (false,
// 0, 1, empty) are accepted; any other value would change the answer, so
// the request is refused rather than answered as if it had not asked.
void refuse_unsupported(const json& body, Endpoint endpoint) {
  auto refuse = [](const char* name, const char* what) {
    bad_request(name, fmt::format("'{}' is not supported by chorus ({})", name, what));
  };
  auto non_empty = [&](const char* name) {
    const json* v = field(body, name);
    return v != nullptr && !(v->is_array() && v->empty()) && !(v->is_object() && v->empty()) &&
           !(v->is_string() && v->get<std::string>() == "none");
  };
  for (const char* name : {"tools", "tool_choice", "functions", "function_call"}) {
    if (non_empty(name)) refuse(name, "no tool or function calling");
  }
  if (const json* v = field(body, "response_format")) {
    if (!(v->is_object() && v->value("type", "") == "text"))
      refuse("response_format", "no JSON mode or schemas; only {\"type\": \"text\"}");
  }
  if (non_empty("logit_bias")) refuse("logit_bias", "no logit biases");
  if (endpoint == Endpoint::kChat) {
    if (const json* v = field(body, "echo"); v != nullptr && !(v->is_boolean() && !v->get<bool>()))
      refuse("echo", "chat completions do not echo; /v1/completions takes 'echo'");
  } else if (const json* v = field(body, "top_logprobs");
             v != nullptr && !(v->is_number() && v->get<double>() == 0)) {
    bad_request("top_logprobs",
                "'top_logprobs' is a chat completions field; /v1/completions takes the number "
                "of alternatives in 'logprobs'");
  }
  if (const json* v = field(body, "suffix");
      v != nullptr && !(v->is_string() && v->get<std::string>().empty()))
    refuse("suffix", "no insertion after a suffix");
  if (const json* v = field(body, "best_of");
      v != nullptr && !(v->is_number() && v->get<double>() == 1))
    refuse("best_of", "use n");
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    if (const json* v = field(body, name);
        v != nullptr && !(v->is_number() && v->get<double>() == 0))
      refuse(name, "use repeat_penalty");
  }
}

std::string text_of_content(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {  // [{"type":"text","text":...}, ...]
    std::string out;
    for (const json& part : content) {
      if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
          !part.contains("text") || !part["text"].is_string())
        bad_request(param, "content parts must be {\"type\": \"text\", \"text\": string}");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  bad_request(param, "'content' must be a string or an array of text parts");
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* messages = field(body, "messages");
  if (messages == nullptr) bad_request("messages", "'messages' is required");
  if (!messages->is_array()) bad_request("messages", "'messages' must be an array");
  if (messages->empty()) bad_request("messages", "'messages' must not be empty");
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad_request(param, "each message must be an object");
    if (!m.contains("role") || !m["role"].is_string() ||
        kRoles.count(m["role"].get<std::string>()) == 0)
      bad_request(param + ".role",
                  "'role' must be one of system, developer, user, assistant, tool");
    ChatMessage msg;
    msg.role = m["role"].get<std::string>();
    if (m.contains("tool_calls") && !m["tool_calls"].is_null())
      bad_request(param + ".tool_calls",
                  "'tool_calls' is not supported by chorus (no tool calling)");
    if (!m.contains("content")) bad_request(param + ".content", "a message needs 'content'");
    // An assistant turn may have null content (OpenAI allows it).
    if (m["content"].is_null()) {
      if (msg.role != "assistant")
        bad_request(param + ".content", "'content' may be null only in an assistant message");
    } else {
      msg.content = text_of_content(m["content"], param + ".content");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

// The adapter a model name selects: a loaded adapter by its name, anything
// else the base model (so a client's default such as "gpt-3.5-turbo" works).
std::string adapter_for(const std::string& name, const ServedModels& served) {
  return served.adapters.count(name) != 0 ? name : std::string();
}

// adapters (extension): one entry per choice, a name or {"name", "scale"}.
std::vector<StreamOptions> parse_adapters(const json& list, const ServedModels& served) {
  if (!list.is_array() || list.empty())
    bad_request("adapters",
                "'adapters' must be a non-empty array of names or {\"name\", \"scale\"}");
  std::vector<StreamOptions> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string param = fmt::format("adapters[{}]", i);
    const json& a = list[i];
    StreamOptions so;
    std::string name;
    if (a.is_string()) {
      name = a.get<std::string>();
    } else if (a.is_object() && a.contains("name") && a["name"].is_string()) {
      name = a["name"].get<std::string>();
      if (field(a, "scale") != nullptr)
        so.adapter_scale = static_cast<float>(number_field(a, "scale", 0, 100, 1));
    } else {
      bad_request(param, "an adapter is a name or {\"name\": string, \"scale\": number}");
    }
    // Here a name must be served: a typo should not silently run the base.
    if (name.empty() || name == "none" || name == served.base_id || name == served.model_path) {
      if (so.adapter_scale) bad_request(param + ".scale", "the base model has no adapter to scale");
    } else if (served.adapters.count(name) == 0) {
      bad_request(param,
                  fmt::format("no adapter '{}' is loaded (adapters: {})", name,
                              served.adapters.empty()
                                  ? "none"
                                  : fmt::format("{}", fmt::join(served.adapters, ", "))),
                  404);
    } else {
      so.adapter = name;
    }
    out.push_back(std::move(so));
  }
  return out;
}

std::vector<std::string> parse_stop(const json& body) {
  std::vector<std::string> stops;
  const json* st = field(body, "stop");
  if (st == nullptr) return stops;
  if (st->is_string()) {
    stops.push_back(st->get<std::string>());
  } else if (st->is_array()) {
    for (const json& x : *st) {
      if (!x.is_string()) bad_request("stop", "'stop' must be a string or an array of strings");
      stops.push_back(x.get<std::string>());
    }
  } else {
    bad_request("stop", "'stop' must be a string or an array of strings");
  }
  if (static_cast<int>(stops.size()) > kMaxStopStrings)
    bad_request("stop", fmt::format("at most {} stop strings", kMaxStopStrings));
  std::erase_if(stops, [](const std::string& s) { return s.empty(); });
  return stops;
}

// Chat: "logprobs": true and "top_logprobs": 0..20 alternatives.
// Completions: "logprobs": 0..5 alternatives (null: off) and "echo".
void parse_logprobs(const json& body, Endpoint endpoint, OpenAiRequest& out) {
  if (endpoint == Endpoint::kChat) {
    const bool on = bool_field(body, "logprobs", false);
    const int64_t top = int_field(body, "top_logprobs", 0, kMaxChatTopLogprobs, 0);
    if (!on && top > 0)
      bad_request("top_logprobs", "'top_logprobs' needs \"logprobs\": true");
    out.request.logprobs = on ? static_cast<int>(top) : -1;
    return;
  }
  const json* v = field(body, "logprobs");
  if (v != nullptr && v->is_boolean()) {
    // false is the neutral value some clients send; true names no count.
    if (v->get<bool>())
      bad_request("logprobs",
                  fmt::format("'logprobs' must be an integer (0..{} alternatives) in completions",
                              kMaxCompletionLogprobs));
  } else {
    out.request.logprobs =
        static_cast<int>(int_field(body, "logprobs", 0, kMaxCompletionLogprobs, -1));
  }
  out.echo = bool_field(body, "echo", false);
  if (out.echo && out.request.logprobs >= 0)
    bad_request("echo",
                "'echo' with 'logprobs' is not supported by chorus (the prompt tokens' "
                "log-probabilities are not computed); drop one of them");
}

}  // namespace

OpenAiRequest parse_openai_request(std::string_view text, Endpoint endpoint,
                                   const ServedModels& served) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    bad_request("", fmt::format("the body is not valid JSON: {}", e.what()));
  }
  if (!body.is_object()) bad_request("", "the body must be a JSON object");
  refuse_unsupported(body, endpoint);

  OpenAiRequest out;
  out.endpoint = endpoint;
  Request& r = out.request;
  if (endpoint == Endpoint::kChat) {
    out.messages = parse_messages(body);
  } else {
    const json* p = field(body, "prompt");
    if (p == nullptr) bad_request("prompt", "'prompt' is required");
    if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
    if (!p->is_string())
      bad_request("prompt", "'prompt' must be a string (or an array of one string)");
    r.prompt = p->get<std::string>();
  }

  const json* model = field(body, "model");
  if (model != nullptr && !model->is_string()) bad_request("model", "'model' must be a string");
  out.model = model != nullptr ? model->get<std::string>() : served.base_id;
  const std::string adapter = adapter_for(out.model, served);

  out.stream = bool_field(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad_request("stream_options", "'stream_options' must be an object");
    out.include_usage = bool_field(*so, "include_usage", false);
  }

  std::vector<StreamOptions> per_choice;
  if (const json* ad = field(body, "adapters")) per_choice = parse_adapters(*ad, served);
  const int64_t n_default = per_choice.empty() ? 1 : static_cast<int64_t>(per_choice.size());
  const int n = static_cast<int>(int_field(body, "n", 1, served.max_streams, n_default));
  if (!per_choice.empty() && static_cast<int64_t>(per_choice.size()) != n)
    bad_request("adapters", fmt::format("{} adapters for n = {} choices (give one per choice)",
                                        per_choice.size(), n));

  // Omitted sampling fields take chorus run's defaults.
  Sampling& s = r.sampling;
  s.temperature = static_cast<float>(number_field(body, "temperature", 0, 100, s.temperature));
  s.top_p = static_cast<float>(number_field(body, "top_p", 0, 1, s.top_p));
  s.top_k = static_cast<int>(int_field(body, "top_k", 0, 1 << 20, s.top_k));
  s.min_p = static_cast<float>(number_field(body, "min_p", 0, 1, s.min_p));
  s.repeat_penalty =
      static_cast<float>(number_field(body, "repeat_penalty", 0, 100, s.repeat_penalty));
  if (field(body, "seed") != nullptr) {
    s.seed = static_cast<uint64_t>(int_field(body, "seed", std::numeric_limits<int64_t>::min(),
                                             std::numeric_limits<int64_t>::max(), 0));
  } else {
    s.seed = std::random_device{}();
  }
  r.ignore_eos = bool_field(body, "ignore_eos", false);
  r.stop = parse_stop(body);
  parse_logprobs(body, endpoint, out);

  for (int i = 0; i < n; ++i) {
    StreamOptions so = per_choice.empty() ? StreamOptions{} : per_choice[i];
    if (per_choice.empty()) so.adapter = adapter;
    // Distinct greedy choices of one model: choice i starts with the i-th
    // likeliest token (as chorus run --streams); per-choice adapters differ anyway.
    if (n > 1 && s.temperature == 0.0f && per_choice.empty()) so.first_token_rank = i;
    r.streams.push_back(std::move(so));
  }

  const char* mt_name = "max_tokens";
  if (field(body, mt_name) == nullptr && field(body, "max_completion_tokens") != nullptr)
    mt_name = "max_completion_tokens";
  if (field(body, mt_name) != nullptr) {
    out.max_tokens = int_field(body, mt_name, 1, std::numeric_limits<int64_t>::max(), 16);
    out.max_tokens_field = mt_name;
  }
  return out;
}

void fit_to_context(OpenAiRequest& r, int64_t p, int64_t ctx) {
  const bool chat = r.endpoint == Endpoint::kChat;
  const char* prompt_param = chat ? "messages" : "prompt";
  const int64_t n = static_cast<int64_t>(r.request.streams.size());
  if (p == 0) bad_request(prompt_param, "the prompt is empty");
  if (p >= ctx)
    bad_request(prompt_param,
                fmt::format("the prompt has {} tokens, the context holds {}", p, ctx));
  // The prompt is stored once per distinct adapter; every choice then needs
  // its own cells for what it generates.
  std::set<std::string> groups;
  for (const StreamOptions& so : r.request.streams) groups.insert(so.adapter);
  const int64_t room_by_pos = ctx - p;
  const int64_t room_by_cells = (ctx - p * static_cast<int64_t>(groups.size())) / n;
  const int64_t room = std::min(room_by_pos, room_by_cells);
  if (room < 1)
    bad_request(
        prompt_param,
        fmt::format("no room to generate: {} choices over a {}-token prompt fill the context of {}",
                    n, p, ctx));
  if (!r.max_tokens) {
    r.request.n_predict = static_cast<int>(chat ? room : std::min<int64_t>(16, room));
    return;
  }
  const int64_t m = *r.max_tokens;
  const std::string& name = r.max_tokens_field;
  if (m > room)
    bad_request(
        name,
        fmt::format("{} = {} does not fit: the prompt has {} tokens and {} choice{} share{} a "
                    "context of {} (at most {})",
                    name, m, p, n, n == 1 ? "" : "s", n == 1 ? "s" : "", ctx, room));
  r.request.n_predict = static_cast<int>(m);
}

}  // namespace chorus::server
