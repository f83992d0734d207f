// Operations around the OpenAI endpoints: API-key checks, CORS, the
// Prometheus counters behind /metrics and the access log.
#pragma once

#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "chorus/chorus.h"

namespace chorus::server {

struct AccessOptions {
  std::string api_key;                    // empty: no key asked for
  std::vector<std::string> cors_origins;  // empty: no CORS headers; "*": any origin
};

// Runs before routing. Answers by itself (and returns true) a CORS
// preflight and, when a key is set, a request without "Authorization:
// Bearer KEY" (401, OpenAI's error body; /health stays open). Otherwise
// adds the CORS headers the response needs and returns false.
bool guard_request(const AccessOptions& o, const httplib::Request& req, httplib::Response& res);

// Counters for /metrics, safe to update from every worker.
class Metrics {
 public:
  void count_request(const std::string& path, int status);
  void count_result(const Result& r);
  // Requests waiting for the runtime (it serves one at a time) and running.
  void enter_queue() { ++waiting_; }
  void start_running() {
    --waiting_;
    ++running_;
  }
  void stop_running() { --running_; }

  // The Prometheus text exposition format (version 0.0.4).
  std::string prometheus_text(const RuntimeInfo& info) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;  // (path, status)
  std::map<std::string, int64_t> choices_by_adapter_;        // "" is the base model
  std::map<std::string, int64_t> finishes_;
  int64_t prompt_tokens_ = 0;
  int64_t generated_tokens_ = 0;
  int64_t prefill_rows_ = 0;
  double generation_seconds_ = 0;
  size_t kv_bytes_last_ = 0;
  std::atomic<int> waiting_{0};
  std::atomic<int> running_{0};
};

// A path as a metrics label: the endpoint it names, or "other" (so that
// probing random paths cannot grow the label set).
std::string path_label(const std::string& path);

// One line per request on stderr: client, method, path, status, time, size.
void log_access(const httplib::Request& req, const httplib::Response& res, double ms);

}  // namespace chorus::server
