// libFuzzer target for the OpenAI request mapping (src/server/openai_request.h).
// The first byte picks the endpoint, the rest is the JSON body. Any body
// must either map to a request or end in ApiError with a 4xx status and a
// message; a mapped request is then fitted to a context the way the
// handler does (the prompt's bytes standing in for its tokens), and what
// comes out must satisfy what the Runtime relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/api_error.h"
#include "server/chat_prompt.h"
#include "server/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chorus::server;
  if (size == 0) return 0;
  const Endpoint endpoint = (data[0] & 1) ? Endpoint::kChat : Endpoint::kCompletions;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  ServedModels served;
  served.base_id = "base";
  served.model_path = "/models/base.gguf";
  served.adapters = {"dog", "sad"};
  served.max_streams = 4;
  constexpr int64_t kContext = 512;
  try {
    OpenAiRequest r = parse_openai_request(body, endpoint, served);
    if (endpoint == Endpoint::kChat) {
      if (r.messages.empty()) std::abort();  // chat needs at least one message
      r.request.prompt = join_message_contents(r.messages);
    }
    const size_t n = r.request.streams.size();
    if (n < 1 || n > 4) std::abort();
    for (const auto& s : r.request.streams) {
      if (!s.adapter.empty() && served.adapters.count(s.adapter) == 0) std::abort();
      if (s.adapter_scale && !(*s.adapter_scale >= 0)) std::abort();
    }
    if (r.request.stop.size() > 4) std::abort();
    fit_to_context(r, 1 + static_cast<int64_t>(r.request.prompt.size()), kContext);
    const int64_t p = 1 + static_cast<int64_t>(r.request.prompt.size());
    if (r.request.n_predict < 1 || p + r.request.n_predict > kContext) std::abort();
  } catch (const ApiError& e) {
    if (e.status < 400 || e.status > 499 || e.message.empty()) std::abort();
  }
  return 0;
}
