// See ops.h.
#include "server/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "server/openai_response.h"

namespace chorus::server {
namespace {

bool origin_allowed(const AccessOptions& o, const std::string& origin) {
  return std::any_of(o.cors_origins.begin(), o.cors_origins.end(),
                     [&](const std::string& x) { return x == "*" || x == origin; });
}

// Compares without stopping at the first difference, so the time taken
// does not tell how much of a guessed key was right.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(i < b.size() ? b[i] : 0);
  return diff == 0;
}

// Escapes a label value for the Prometheus text format.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

bool guard_request(const AccessOptions& o, const httplib::Request& req, httplib::Response& res) {
  const std::string origin = req.get_header_value("Origin");
  const bool cors = !origin.empty() && origin_allowed(o, origin);
  if (cors) {
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Vary", "Origin");
    if (req.method == "OPTIONS") {  // preflight: never needs the key
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
      res.status = 204;
      return true;
    }
  }
  if (o.api_key.empty() || req.path == "/health") return false;
  const std::string auth = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (auth.size() > prefix.size() && auth.compare(0, prefix.size(), prefix) == 0 &&
      same_secret(auth.substr(prefix.size()), o.api_key))
    return false;
  res.status = 401;
  res.set_header("WWW-Authenticate", "Bearer");
  res.set_content(dump(error_json(auth.empty() ? "missing API key: send Authorization: Bearer KEY"
                                               : "invalid API key",
                                  "invalid_request_error", "")),
                  "application/json");
  return true;
}

std::string path_label(const std::string& path) {
  static const char* const kPaths[] = {
      "/health",   "/v1/models",  "/v1/completions", "/v1/chat/completions",
      "/tokenize", "/detokenize", "/props",          "/metrics"};
  for (const char* p : kPaths) {
    if (path == p) return path;
  }
  if (path.rfind("/v1/models/", 0) == 0) return "/v1/models/{id}";
  return "other";
}

void Metrics::count_request(const std::string& path, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{path_label(path), status}];
}

void Metrics::count_result(const Result& r) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += static_cast<int64_t>(r.prompt_tokens.size());
  for (const StreamResult& s : r.streams) {
    generated_tokens_ += static_cast<int64_t>(s.tokens.size());
    ++choices_by_adapter_[s.adapter];
    ++finishes_[to_string(s.finish)];
  }
  prefill_rows_ += r.timings.prefill_rows;
  generation_seconds_ += r.timings.total_seconds;
  kv_bytes_last_ = r.timings.kv_bytes_used;
}

std::string Metrics::prometheus_text(const RuntimeInfo& info) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto head = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  head("chorus_http_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, n] : requests_)
    out += fmt::format("chorus_http_requests_total{{path=\"{}\",status=\"{}\"}} {}\n",
                       label(key.first), key.second, n);
  head("chorus_prompt_tokens_total", "counter", "Prompt tokens of completed generations.");
  out += fmt::format("chorus_prompt_tokens_total {}\n", prompt_tokens_);
  head("chorus_generated_tokens_total", "counter", "Tokens generated, all choices.");
  out += fmt::format("chorus_generated_tokens_total {}\n", generated_tokens_);
  head("chorus_prefill_rows_total", "counter", "Prompt and suffix rows run through the model.");
  out += fmt::format("chorus_prefill_rows_total {}\n", prefill_rows_);
  head("chorus_generation_seconds_total", "counter", "Time spent generating.");
  out += fmt::format("chorus_generation_seconds_total {:.6f}\n", generation_seconds_);
  head("chorus_choices_total", "counter", "Choices (streams) generated, by adapter.");
  for (const auto& [adapter, n] : choices_by_adapter_)
    out += fmt::format("chorus_choices_total{{adapter=\"{}\"}} {}\n",
                       adapter.empty() ? "base" : label(adapter), n);
  head("chorus_finish_total", "counter", "Choices by finish reason.");
  for (const auto& [reason, n] : finishes_)
    out += fmt::format("chorus_finish_total{{reason=\"{}\"}} {}\n", reason, n);
  head("chorus_requests_waiting", "gauge", "Generation requests waiting for the runtime.");
  out += fmt::format("chorus_requests_waiting {}\n", waiting_.load());
  head("chorus_requests_running", "gauge", "Generation requests running.");
  out += fmt::format("chorus_requests_running {}\n", running_.load());
  head("chorus_kv_bytes_used", "gauge", "KV cache bytes the last request held at its end.");
  out += fmt::format("chorus_kv_bytes_used {}\n", kv_bytes_last_);
  head("chorus_kv_bytes", "gauge", "KV cache bytes reserved.");
  out += fmt::format("chorus_kv_bytes {}\n", info.kv_bytes);
  head("chorus_context_cells", "gauge", "KV cells of the runtime.");
  out += fmt::format("chorus_context_cells {}\n", info.context);
  return out;
}

void log_access(const httplib::Request& req, const httplib::Response& res, double ms) {
  const std::string size = res.body.empty() ? "-" : std::to_string(res.body.size());
  std::fprintf(stderr, "[chorus] %s \"%s %s\" %d %.1f ms %s\n", req.remote_addr.c_str(),
               req.method.c_str(), req.path.c_str(), res.status, ms, size.c_str());
}

}  // namespace chorus::server
