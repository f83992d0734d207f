// See handlers.h.
#include "server/handlers.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <random>
#include <regex>

#include "server/api_error.h"
#include "server/http_transport.h"
#include "util/error.h"

#ifndef CHORUS_VERSION
#define CHORUS_VERSION "dev"
#endif

namespace chorus::server {
namespace {

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, error_json(e.message, e.type, e.param));
}

json parse_body(const httplib::Request& http) {
  try {
    json body = json::parse(http.body);
    if (!body.is_object()) bad_request("", "the body must be a JSON object");
    return body;
  } catch (const json::exception& e) {
    bad_request("", fmt::format("the body is not valid JSON: {}", e.what()));
  }
}

// Every route with its methods: a known path asked with another method is
// answered 405 with Allow, not 404.
struct Route {
  const char* pattern;
  const char* methods;
};
constexpr Route kRoutes[] = {
    {"/health", "GET"},
    {"/v1/models", "GET"},
    {"/v1/models/.+", "GET"},
    {"/v1/completions", "POST"},
    {"/v1/chat/completions", "POST"},
    {"/tokenize", "POST"},
    {"/detokenize", "POST"},
    {"/props", "GET"},
    {"/metrics", "GET"},
};

const char* allowed_methods(const std::string& path) {
  for (const Route& r : kRoutes) {
    if (std::regex_match(path, std::regex(r.pattern))) return r.methods;
  }
  return nullptr;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// When the request on this worker began (for the access log).
thread_local std::chrono::steady_clock::time_point request_start;

}  // namespace

std::string system_fingerprint(const RuntimeInfo& info) {
  return fmt::format("chorus-{}-{}", CHORUS_VERSION, info.kernels);
}

OpenAiServer::OpenAiServer(Runtime& rt, HandlerOptions o)
    : rt_(rt), opt_(std::move(o)), info_(rt.info()) {
  served_.base_id = std::filesystem::path(info_.model_path).stem().string();
  served_.model_path = info_.model_path;
  const auto names = rt.adapters();
  served_.adapters.insert(names.begin(), names.end());
  served_.max_streams = info_.max_streams;
  fingerprint_ = system_fingerprint(info_);
  created_ = static_cast<int64_t>(std::time(nullptr));
}

void OpenAiServer::install(httplib::Server& svr) {
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_start = std::chrono::steady_clock::now();
    return guard_request(opt_.access, req, res) ? httplib::Server::HandlerResponse::Handled
                                                : httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics_.count_request(req.path, res.status);
    log_access(req, res, ms_since(request_start));
  });
  // /health answers from the worker alone: it never waits for the runtime.
  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, models());
  });
  svr.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const json all = models();
    for (const json& m : all["data"]) {
      if (m["id"] == id) return send_json(res, 200, m);
    }
    send_error(res, ApiError{404, fmt::format("The model '{}' does not exist", id), "model"});
  });
  svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, Endpoint::kCompletions);
  });
  svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    generate(req, res, Endpoint::kChat);
  });
  svr.Post("/tokenize",
           [this](const httplib::Request& req, httplib::Response& res) { tokenize(req, res); });
  svr.Post("/detokenize",
           [this](const httplib::Request& req, httplib::Response& res) { detokenize(req, res); });
  svr.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, props());
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.prometheus_text(info_), "text/plain; version=0.0.4");
  });
  // Every error httplib answers by itself (404, 413, 400 on a broken
  // request line) gets the OpenAI error shape; ours already have a body.
  svr.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        std::string msg;
        if (res.status == 404) {
          if (const char* allow = allowed_methods(req.path)) {
            res.status = 405;
            res.set_header("Allow", allow);
            msg = fmt::format("{} does not take {} (allowed: {})", req.path, req.method, allow);
          } else {
            msg = fmt::format("no such endpoint: {} {}", req.method, req.path);
          }
        } else if (res.status == 413) {
          msg = fmt::format("the request body is larger than {} bytes", opt_.max_body_bytes);
        } else {
          msg = fmt::format("HTTP {}", res.status);
        }
        res.set_content(
            dump(error_json(msg, res.status >= 500 ? "server_error" : "invalid_request_error", "")),
            "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string msg = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          msg = e.what();
        } catch (...) {
        }
        send_json(res, 500, error_json(msg, "server_error", ""));
      });
}

json OpenAiServer::models() const {
  json data = json::array();
  data.push_back(model_json(served_.base_id, created_, ""));
  for (const std::string& name : served_.adapters)
    data.push_back(model_json(name, created_, served_.base_id));
  return {{"object", "list"}, {"data", data}};
}

json OpenAiServer::props() const {
  return {{"model", served_.base_id},
          {"model_path", info_.model_path},
          {"adapters", served_.adapters},
          {"n_ctx", info_.context},
          {"n_ctx_train", info_.trained_context},
          {"n_vocab", info_.n_vocab},
          {"max_streams", info_.max_streams},
          {"kernels", info_.kernels},
          {"system_fingerprint", fingerprint_},
          {"chat_template", opt_.chat_template},
          {"version", CHORUS_VERSION}};
}

std::string OpenAiServer::new_id(Endpoint endpoint) {
  std::lock_guard<std::mutex> lock(id_mutex_);
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}-{:016x}", endpoint == Endpoint::kChat ? "chatcmpl" : "cmpl", rng());
}

Result OpenAiServer::run(const Request& request, const TokenCallback& on_token,
                         const LogprobCallback& on_logprob) {
  metrics_.enter_queue();
  std::unique_lock<std::mutex> lock(runtime_mutex_);
  metrics_.start_running();
  struct Done {
    Metrics& m;
    ~Done() { m.stop_running(); }
  } done{metrics_};
  Result r = rt_.generate(request, on_token, on_logprob);
  metrics_.count_result(r);
  return r;
}

void OpenAiServer::generate(const httplib::Request& http, httplib::Response& res,
                            Endpoint endpoint) {
  OpenAiRequest req;
  try {
    req = parse_openai_request(http.body, endpoint, served_);
    if (endpoint == Endpoint::kChat) opt_.chat_formatter(req.messages, req.request);
    // Room in the context is checked here, so that a streamed response
    // never starts with a request the runtime would refuse.
    const auto prompt =
        rt_.tokenize(req.request.prompt, req.request.add_bos, req.request.parse_special);
    fit_to_context(req, static_cast<int64_t>(prompt.size()), info_.context);
  } catch (const ApiError& e) {
    return send_error(res, e);
  } catch (const Error& e) {  // from formatting or tokenizing
    return send_error(res, ApiError{400, e.what(), ""});
  }
  ResponseHead head{new_id(endpoint), static_cast<int64_t>(std::time(nullptr)), req.model,
                    fingerprint_};
  if (req.stream) return stream(std::move(req), std::move(head), res);
  Result r;
  try {
    r = run(req.request, [this](int, int32_t, std::string_view) { return !stopping_.load(); });
  } catch (const Error& e) {  // what only the runtime checks (e.g. adapter scales)
    return send_error(res, ApiError{400, e.what(), ""});
  }
  send_json(res, 200, completion_json(req, head, r));
}

// Server-sent events: the role (chat), one chunk per text piece and choice,
// a chunk with every finish_reason, the usage chunk when asked, [DONE].
void OpenAiServer::stream(OpenAiRequest req_in, ResponseHead head, httplib::Response& res) {
  auto req = std::make_shared<OpenAiRequest>(std::move(req_in));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [this, req, head](size_t, httplib::DataSink& sink) {
        SseWriter sse(sink);
        if (req->endpoint == Endpoint::kChat) {
          for (size_t i = 0; i < req->request.streams.size(); ++i)
            sse.send(dump(role_chunk(*req, head, static_cast<int>(i))));
        }
        const size_t k = req->request.streams.size();
        if (req->echo) {
          for (size_t i = 0; i < k; ++i)
            sse.send(dump(piece_chunk(*req, head, static_cast<int>(i), req->request.prompt)));
        }
        // Log-probabilities of the tokens not yet carried by a piece.
        std::vector<std::vector<GeneratedLogprob>> pending(k);
        std::vector<int64_t> offset(k, first_text_offset(*req));
        Result r;
        try {
          r = run(
              req->request,
              [&](int i, int32_t, std::string_view piece) {
                if (!piece.empty()) {
                  sse.send(dump(piece_chunk(*req, head, i, piece, pending[i], &offset[i])));
                  pending[i].clear();
                }
                return sse.open() && !stopping_.load();
              },
              [&](int i, const GeneratedLogprob& g) { pending[i].push_back(g); });
        } catch (const Error& e) {
          sse.send(dump(error_json(e.what(), "invalid_request_error", "")));
          sse.done();
          return false;
        }
        sse.send(dump(finish_chunk(*req, head, r, &pending, &offset)));
        if (req->include_usage) sse.send(dump(usage_chunk(*req, head, r)));
        sse.done();
        return true;
      });
}

// llama.cpp's server shape: {"content": text, "add_special": bool} -> {"tokens": [...]}.
void OpenAiServer::tokenize(const httplib::Request& http, httplib::Response& res) const {
  try {
    const json body = parse_body(http);
    if (!body.contains("content") || !body["content"].is_string())
      bad_request("content", "'content' must be a string");
    bool add_special = true;
    if (body.contains("add_special")) {
      if (!body["add_special"].is_boolean())
        bad_request("add_special", "'add_special' must be a boolean");
      add_special = body["add_special"].get<bool>();
    }
    send_json(res, 200,
              {{"tokens", rt_.tokenize(body["content"].get<std::string>(), add_special)}});
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const Error& e) {
    send_error(res, ApiError{400, e.what(), "content"});
  }
}

// {"tokens": [ids]} -> {"content": text}.
void OpenAiServer::detokenize(const httplib::Request& http, httplib::Response& res) const {
  try {
    const json body = parse_body(http);
    if (!body.contains("tokens") || !body["tokens"].is_array())
      bad_request("tokens", "'tokens' must be an array of token ids");
    std::vector<int32_t> ids;
    for (const json& t : body["tokens"]) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= info_.n_vocab)
        bad_request("tokens", fmt::format("token ids must be integers in [0, {})", info_.n_vocab));
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    send_json(res, 200, {{"content", rt_.detokenize(ids)}});
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const Error& e) {
    send_error(res, ApiError{400, e.what(), "tokens"});
  }
}

}  // namespace chorus::server
