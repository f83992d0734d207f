// `chorus serve`: an OpenAI-compatible HTTP server over the public API
// (include/chorus/chorus.h). One Runtime, loaded at start with its adapters;
// /v1/completions and /v1/chat/completions map `n` choices onto k streams
// decoded together in one forward pass per token, `model` (or the
// `adapters` extension) onto adapters. Requests are served one at a time:
// a mutex guards the Runtime, which is not thread-safe.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <httplib.h>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chorus/chorus.h"
#include "tools/commands.h"
#include "tools/runtime_flags.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

using nlohmann::json;

constexpr size_t kMaxBodyBytes = 1 << 20;  // larger bodies get 413
constexpr int kMaxStopStrings = 4;

struct ServeArgs {
  std::string model;
  std::string tokenizer;
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 2;
  int context = 0;
  int max_streams = 8;
  std::vector<std::string> loras;  // NAME=PATH[:SCALE]
  Ds2dFlags ds2d;
  std::string kv_type = "f16";
};

// A request the client got wrong: answered with `status` and an OpenAI error body.
struct BadRequest {
  int status;
  std::string message;
  std::string param;
};

[[noreturn]] void bad(const std::string& param, const std::string& message, int status = 400) {
  throw BadRequest{status, message, param};
}

json error_body(const std::string& message, const std::string& type, const std::string& param) {
  json e = {{"message", message}, {"type", type}, {"code", nullptr}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  return {{"error", e}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}


// ---- request parsing --------------------------------------------------------

// What both endpoints share once the body is read.
struct Job {
  bool chat = false;
  bool stream = false;
  std::string model;  // as echoed back
  Request request;
};

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number_field(const json& body, const char* name, double lo, double hi, double def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_number()) bad(name, fmt::format("'{}' must be a number", name));
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, x));
  return x;
}

int64_t int_field(const json& body, const char* name, int64_t lo, int64_t hi, int64_t def) {
  const json* v = field(body, name);
  if (v == nullptr) return def;
  if (!v->is_number_integer() && !v->is_number_unsigned())
    bad(name, fmt::format("'{}' must be an integer", name));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi))
    bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, v->get<uint64_t>()));
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) bad(name, fmt::format("'{}' must be in [{}, {}], got {}", name, lo, hi, x));
  return x;
}

std::string text_of_content(const json& content, size_t i) {
  const std::string param = fmt::format("messages[{}].content", i);
  if (content.is_string()) return content.get<std::string>();
  if (content.is_array()) {  // [{"type":"text","text":...}, ...]
    std::string out;
    for (const json& part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        bad(param, "content parts must be {\"type\": \"text\", \"text\": string}");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  bad(param, "'content' must be a string or an array of text parts");
}

// The fixed chat template (base models such as stories260K have none): the
// contents of the messages, in order, joined by newlines; roles are checked
// but not rendered.
std::string render_chat(const json& messages) {
  if (!messages.is_array()) bad("messages", "'messages' must be an array");
  if (messages.empty()) bad("messages", "'messages' must not be empty");
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string param = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad(param, "each message must be an object");
    if (!m.contains("role") || !m["role"].is_string() || kRoles.count(m["role"].get<std::string>()) == 0)
      bad(param + ".role", "'role' must be one of system, developer, user, assistant, tool");
    if (!m.contains("content")) bad(param + ".content", "a message needs 'content'");
    if (i > 0) prompt += "\n";
    prompt += text_of_content(m["content"], i);
  }
  return prompt;
}

class Server {
 public:
  Server(const ServeArgs& a, Runtime& rt) : a_(a), rt_(rt), info_(rt.info()) {
    base_id_ = std::filesystem::path(a.model).stem().string();
    const auto names = rt.adapters();
    adapters_.insert(names.begin(), names.end());
    created_ = static_cast<int64_t>(std::time(nullptr));
  }

  void stop_generation() { stopping_ = true; }

  void install(httplib::Server& svr) {
    svr.set_payload_max_length(kMaxBodyBytes);
    // A reply leaves as two writes (headers, then body); with Nagle's
    // algorithm on, the body waits for the client's delayed ACK (~40 ms) on
    // a kept-alive connection.
    svr.set_tcp_nodelay(true);
    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}});
    });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, models());
    });
    svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, false);
    });
    svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      handle(req, res, true);
    });
    // Every error httplib answers by itself (404, 405, 413, 400 on a broken
    // request line) gets the OpenAI error shape; ours already have a body.
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      std::string msg;
      switch (res.status) {
        case 404: msg = fmt::format("no such endpoint: {} {}", req.method, req.path); break;
        case 413: msg = fmt::format("the request body is larger than {} bytes", kMaxBodyBytes); break;
        default: msg = fmt::format("HTTP {}", res.status);
      }
      res.set_content(dump(error_body(msg, res.status >= 500 ? "server_error" : "invalid_request_error", "")),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string msg = "internal error";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        msg = e.what();
      } catch (...) {
      }
      send_json(res, 500, error_body(msg, "server_error", ""));
    });
  }

 private:
  json models() const {
    json data = json::array();
    data.push_back({{"id", base_id_}, {"object", "model"}, {"created", created_}, {"owned_by", "chorus"}});
    for (const std::string& name : adapters_) {
      data.push_back({{"id", name}, {"object", "model"}, {"created", created_},
                      {"owned_by", "chorus"}, {"parent", base_id_}});
    }
    return {{"object", "list"}, {"data", data}};
  }

  // "" (base model) for the base id, "none" or absent; else a loaded adapter.
  std::string adapter_for(const std::string& name, const std::string& param) const {
    if (name.empty() || name == base_id_ || name == "none" || name == a_.model) return "";
    if (adapters_.count(name) == 0)
      bad(param, fmt::format("The model '{}' does not exist (served: {}{})", name, base_id_,
                             adapters_.empty() ? "" : fmt::format(", {}", fmt::join(adapters_, ", "))),
          404);
    return name;
  }

  Job parse(const std::string& text, bool chat) const {
    json body;
    try {
      body = json::parse(text);
    } catch (const json::exception& e) {
      bad("", fmt::format("the body is not valid JSON: {}", e.what()));
    }
    if (!body.is_object()) bad("", "the body must be a JSON object");
    Job job;
    job.chat = chat;
    Request& r = job.request;

    if (chat) {
      if (!body.contains("messages")) bad("messages", "'messages' is required");
      r.prompt = render_chat(body["messages"]);
    } else {
      const json* p = field(body, "prompt");
      if (p == nullptr) bad("prompt", "'prompt' is required");
      if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) p = &(*p)[0];
      if (!p->is_string()) bad("prompt", "'prompt' must be a string (or an array of one string)");
      r.prompt = p->get<std::string>();
    }

    const json* model = field(body, "model");
    if (model != nullptr && !model->is_string()) bad("model", "'model' must be a string");
    job.model = model != nullptr ? model->get<std::string>() : base_id_;
    const std::string adapter = adapter_for(job.model, "model");

    const json* stream = field(body, "stream");
    if (stream != nullptr && !stream->is_boolean()) bad("stream", "'stream' must be a boolean");
    job.stream = stream != nullptr && stream->get<bool>();

    // Adapters per choice (extension): choice i runs adapters[i].
    std::vector<std::string> per_choice;
    if (const json* ad = field(body, "adapters")) {
      if (!ad->is_array() || ad->empty()) bad("adapters", "'adapters' must be a non-empty array of names");
      for (size_t i = 0; i < ad->size(); ++i) {
        const std::string param = fmt::format("adapters[{}]", i);
        if (!(*ad)[i].is_string()) bad(param, "adapter names must be strings");
        per_choice.push_back(adapter_for((*ad)[i].get<std::string>(), param));
      }
    }
    const int64_t n_default = per_choice.empty() ? 1 : static_cast<int64_t>(per_choice.size());
    const int n = static_cast<int>(int_field(body, "n", 1, a_.max_streams, n_default));
    if (!per_choice.empty() && static_cast<int64_t>(per_choice.size()) != n)
      bad("adapters", fmt::format("{} adapters for n = {} choices (give one per choice)",
                                  per_choice.size(), n));

    // Omitted sampling fields take chorus run's defaults.
    Sampling& s = r.sampling;
    s.temperature = static_cast<float>(number_field(body, "temperature", 0, 100, s.temperature));
    s.top_p = static_cast<float>(number_field(body, "top_p", 0, 1, s.top_p));
    s.top_k = static_cast<int>(int_field(body, "top_k", 0, 1 << 20, s.top_k));
    s.min_p = static_cast<float>(number_field(body, "min_p", 0, 1, s.min_p));
    s.repeat_penalty = static_cast<float>(number_field(body, "repeat_penalty", 0, 100, s.repeat_penalty));
    if (field(body, "seed") != nullptr) {
      s.seed = static_cast<uint64_t>(int_field(body, "seed", INT64_MIN, INT64_MAX, 0));
    } else {
      s.seed = std::random_device{}();
    }
    r.ignore_eos = false;
    if (const json* ie = field(body, "ignore_eos")) {
      if (!ie->is_boolean()) bad("ignore_eos", "'ignore_eos' must be a boolean");
      r.ignore_eos = ie->get<bool>();
    }

    if (const json* st = field(body, "stop")) {
      std::vector<std::string> stops;
      if (st->is_string()) {
        stops.push_back(st->get<std::string>());
      } else if (st->is_array()) {
        for (const json& x : *st) {
          if (!x.is_string()) bad("stop", "'stop' must be a string or an array of strings");
          stops.push_back(x.get<std::string>());
        }
      } else {
        bad("stop", "'stop' must be a string or an array of strings");
      }
      if (static_cast<int>(stops.size()) > kMaxStopStrings)
        bad("stop", fmt::format("at most {} stop strings", kMaxStopStrings));
      for (std::string& x : stops)
        if (!x.empty()) r.stop.push_back(std::move(x));
    }

    for (int i = 0; i < n; ++i) {
      StreamOptions so;
      so.adapter = per_choice.empty() ? adapter : per_choice[i];
      // Distinct greedy choices of one model: choice i starts with the i-th
      // likeliest token (as chorus run --streams); per-choice adapters differ anyway.
      if (n > 1 && s.temperature == 0.0f && per_choice.empty()) so.first_token_rank = i;
      r.streams.push_back(so);
    }

    // Room in the context: checked here so that a streamed response never
    // starts with a request the runtime would refuse.
    const auto prompt = rt_.tokenize(r.prompt, r.add_bos);
    const int64_t p = static_cast<int64_t>(prompt.size());
    const int64_t ctx = info_.context;
    if (p == 0) bad(chat ? "messages" : "prompt", "the prompt is empty");
    if (p >= ctx)
      bad(chat ? "messages" : "prompt",
          fmt::format("the prompt has {} tokens, the context holds {}", p, ctx));
    std::set<std::string> groups;
    for (const StreamOptions& so : r.streams) groups.insert(so.adapter);
    const int64_t room_by_pos = ctx - p;
    const int64_t room_by_cells = (ctx - p * static_cast<int64_t>(groups.size())) / n;
    const int64_t room = std::min(room_by_pos, room_by_cells);
    if (room < 1)
      bad(chat ? "messages" : "prompt",
          fmt::format("no room to generate: {} choices over a {}-token prompt fill the context of {}",
                      n, p, ctx));
    // Absent max_tokens: 16 for completions (as OpenAI), the rest of the
    // context for chat.
    const json* mt = field(body, "max_tokens");
    if (chat && mt == nullptr) mt = field(body, "max_completion_tokens");
    if (mt == nullptr) {
      r.n_predict = chat ? static_cast<int>(room) : static_cast<int>(std::min<int64_t>(16, room));
    } else {
      const char* name = field(body, "max_tokens") != nullptr ? "max_tokens" : "max_completion_tokens";
      const int64_t m = int_field(body, name, 1, INT64_MAX, 16);
      if (m > room)
        bad(name, fmt::format("{} = {} does not fit: the prompt has {} tokens and {} choice{} share{} a "
                              "context of {} (at most {})",
                              name, m, p, n, n == 1 ? "" : "s", n == 1 ? "s" : "", ctx, room));
      r.n_predict = static_cast<int>(m);
    }
    return job;
  }

  static const char* finish(FinishReason f) {
    return f == FinishReason::kLength ? "length" : "stop";
  }

  json usage(const Result& r) const {
    int64_t completion = 0;
    for (const StreamResult& s : r.streams) completion += static_cast<int64_t>(s.tokens.size());
    const int64_t prompt = static_cast<int64_t>(r.prompt_tokens.size());
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion},
            {"total_tokens", prompt + completion}};
  }

  std::string new_id(bool chat) {
    static std::mt19937_64 rng{std::random_device{}()};
    return fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", rng());
  }

  json envelope(const Job& job, const std::string& id, bool chunk) const {
    const char* object = job.chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                  : "text_completion";
    return {{"id", id}, {"object", object}, {"created", static_cast<int64_t>(std::time(nullptr))},
            {"model", job.model}};
  }

  void handle(const httplib::Request& http, httplib::Response& res, bool chat) {
    Job job;
    try {
      job = parse(http.body, chat);
    } catch (const BadRequest& b) {
      send_json(res, b.status, error_body(b.message, "invalid_request_error", b.param));
      return;
    } catch (const Error& e) {  // from tokenizing
      send_json(res, 400, error_body(e.what(), "invalid_request_error", ""));
      return;
    }
    std::string id;
    {
      std::lock_guard<std::mutex> lock(id_mutex_);
      id = new_id(chat);
    }
    if (job.stream) {
      stream(std::move(job), id, res);
      return;
    }
    Result r;
    try {
      std::lock_guard<std::mutex> lock(runtime_mutex_);
      r = rt_.generate(job.request, [this](int, int32_t, std::string_view) { return !stopping_.load(); });
    } catch (const Error& e) {
      send_json(res, 400, error_body(e.what(), "invalid_request_error", ""));
      return;
    }
    json out = envelope(job, id, false);
    json choices = json::array();
    for (size_t i = 0; i < r.streams.size(); ++i) {
      const StreamResult& s = r.streams[i];
      json c = {{"index", i}, {"finish_reason", finish(s.finish)}};
      if (chat) {
        c["message"] = {{"role", "assistant"}, {"content", s.text}};
      } else {
        c["text"] = s.text;
        c["logprobs"] = nullptr;
      }
      if (!s.adapter.empty()) c["adapter"] = s.adapter;
      choices.push_back(std::move(c));
    }
    out["choices"] = std::move(choices);
    out["usage"] = usage(r);
    send_json(res, 200, out);
  }

  // Server-sent events: one chunk per token and choice, a last chunk with
  // every finish_reason and the usage, then [DONE].
  void stream(Job job_in, const std::string& id, httplib::Response& res) {
    auto job = std::make_shared<Job>(std::move(job_in));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [this, job, id](size_t, httplib::DataSink& sink) {
          bool open = true;
          auto send = [&](const json& j) {
            if (!open) return false;
            const std::string line = "data: " + dump(j) + "\n\n";
            open = sink.write(line.data(), line.size());
            return open;
          };
          auto chunk = [&](int i, const std::string& piece, const json& finish_reason) {
            json j = envelope(*job, id, true);
            json c = {{"index", i}, {"finish_reason", finish_reason}};
            if (job->chat) {
              c["delta"] = piece.empty() && finish_reason.is_null()
                               ? json{{"role", "assistant"}, {"content", ""}}
                               : (piece.empty() ? json::object() : json{{"content", piece}});
            } else {
              c["text"] = piece;
              c["logprobs"] = nullptr;
            }
            j["choices"] = json::array({c});
            return j;
          };
          std::lock_guard<std::mutex> lock(runtime_mutex_);
          if (job->chat) {
            for (size_t i = 0; i < job->request.streams.size(); ++i)
              send(chunk(static_cast<int>(i), "", nullptr));
          }
          Result r;
          try {
            r = rt_.generate(job->request, [&](int i, int32_t, std::string_view piece) {
              if (!piece.empty()) send(chunk(i, std::string(piece), nullptr));
              return open && !stopping_.load();
            });
          } catch (const Error& e) {
            send(error_body(e.what(), "invalid_request_error", ""));
            if (open) sink.write("data: [DONE]\n\n", 14);
            sink.done();
            return false;
          }
          json last = envelope(*job, id, true);
          json choices = json::array();
          for (size_t i = 0; i < r.streams.size(); ++i) {
            json c = chunk(static_cast<int>(i), "", finish(r.streams[i].finish))["choices"][0];
            choices.push_back(std::move(c));
          }
          last["choices"] = std::move(choices);
          last["usage"] = usage(r);
          send(last);
          if (open) sink.write("data: [DONE]\n\n", 14);
          sink.done();
          return true;
        });
  }

  const ServeArgs& a_;
  Runtime& rt_;
  RuntimeInfo info_;
  std::string base_id_;
  std::set<std::string> adapters_;
  int64_t created_ = 0;
  std::mutex runtime_mutex_;  // one request at a time on the Runtime
  std::mutex id_mutex_;
  std::atomic<bool> stopping_{false};
};

int run_serve(const ServeArgs& a) {
  check(a.port >= 0 && a.port <= 65535, "--port", "must be 0..65535, got {}", a.port);
  check(a.max_streams >= 1 && a.max_streams <= 64, "--max-streams", "must be 1..64, got {}",
        a.max_streams);
  RuntimeOptions ro;
  ro.tokenizer = a.tokenizer;
  ro.threads = a.threads;
  ro.context = a.context;
  ro.max_streams = a.max_streams;
  ro.adapters = parse_loras(a.loras);
  std::set<std::string> names;  // for the start-up line, sorted
  for (const AdapterFile& f : ro.adapters) names.insert(f.name);
  ro.speculation = speculation_options(a.ds2d);
  ro.kv_type = a.kv_type;

  // SIGINT and SIGTERM go to one thread that stops the server: blocked here,
  // before the runtime's and httplib's threads exist, so they inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // wakes the signal thread at a normal exit
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Runtime rt(a.model, ro);
  Server server(a, rt);
  httplib::Server svr;
  server.install(svr);
  int port = a.port;
  if (port == 0) {
    port = svr.bind_to_any_port(a.host);
    check(port > 0, a.host, "cannot listen (bind to a free port failed)");
  } else {
    check(svr.bind_to_port(a.host, port), fmt::format("{}:{}", a.host, port),
          "cannot listen (address in use or not available)");
  }
  std::atomic<bool> signalled{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR1) {
      signalled = true;
      std::fprintf(stderr, "[chorus] %s: shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
      server.stop_generation();
      svr.stop();
    }
  });
  const RuntimeInfo info = rt.info();
  std::fprintf(stderr,
               "[chorus] serving %s (%s, context %d, up to %d streams%s) on http://%s:%d\n",
               a.model.c_str(), info.kernels.c_str(), info.context, info.max_streams,
               names.empty() ? "" : fmt::format(", adapters: {}", fmt::join(names, ", ")).c_str(),
               a.host.c_str(), port);
  std::fflush(stderr);
  const bool ok = svr.listen_after_bind();
  if (!signalled) kill(getpid(), SIGUSR1);
  waiter.join();
  check(ok || signalled, fmt::format("{}:{}", a.host, port), "the server stopped unexpectedly");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /v1/models)");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.bin for a llama2.c model (default: beside it)");
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port (0: a free one, printed at start)")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Worker threads")->capture_default_str();
  cmd->add_option("-c,--ctx-size", args->context,
                  "KV cells shared by a request's choices (default: min(model context, 4096))");
  cmd->add_option("--max-streams", args->max_streams, "Largest n (choices decoded in one pass)")
      ->capture_default_str();
  cmd->add_option("--lora", args->loras,
                  "Load an adapter: NAME=PATH[:SCALE] (repeatable); requests pick it as model NAME");
  add_ds2d_flags(cmd, &args->ds2d);
  add_kv_type_flag(cmd, &args->kv_type);
  cmd->callback([args, selected] { *selected = [args] { return run_serve(*args); }; });
}

}  // namespace chorus::tools
