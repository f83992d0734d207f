// The endpoints of `chorus serve`: OpenAI's /v1/completions,
// /v1/chat/completions and /v1/models[/{id}], plus /health, /tokenize,
// /detokenize, /props and /metrics. One Runtime serves one generation at a
// time (a mutex; it is not thread-safe); the other endpoints never wait for
// it. `n` choices are k streams decoded in one pass, `model` or the
// `adapters` extension picks adapters.
#pragma once

#include <httplib.h>

#include <atomic>
#include <mutex>
#include <string>

#include "chorus/chorus.h"
#include "server/chat_prompt.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/ops.h"

namespace chorus::server {

struct HandlerOptions {
  size_t max_body_bytes = 1 << 20;
  AccessOptions access;
  // Turns chat messages into the prompt (today's fixed template by default)
  // and names what it does for /props.
  ChatFormatter chat_formatter = format_fixed;
  std::string chat_template = "fixed: message contents joined by newlines";
};

class OpenAiServer {
 public:
  OpenAiServer(Runtime& rt, HandlerOptions o);

  // Routes, the error and exception handlers, access checks and the log.
  void install(httplib::Server& svr);
  // Ends running generations at their next token (finish_reason "abort").
  void stop_generation() { stopping_ = true; }

 private:
  void generate(const httplib::Request& http, httplib::Response& res, Endpoint endpoint);
  void stream(OpenAiRequest req, ResponseHead head, httplib::Response& res);
  Result run(const Request& request, const TokenCallback& on_token,
             const LogprobCallback& on_logprob = {});
  void tokenize(const httplib::Request& http, httplib::Response& res) const;
  void detokenize(const httplib::Request& http, httplib::Response& res) const;
  nlohmann::json models() const;
  nlohmann::json props() const;
  std::string new_id(Endpoint endpoint);

  Runtime& rt_;
  HandlerOptions opt_;
  RuntimeInfo info_;
  ServedModels served_;
  std::string fingerprint_;
  int64_t created_ = 0;
  Metrics metrics_;
  std::mutex runtime_mutex_;  // one generation at a time on the Runtime
  std::mutex id_mutex_;
  std::atomic<bool> stopping_{false};
};

// chorus-<version>-<kernel table>, OpenAI's system_fingerprint: changes when
// the build or the kernels (hence the exact numbers) change.
std::string system_fingerprint(const RuntimeInfo& info);

}  // namespace chorus::server
