// The HTTP transport under the OpenAI handlers (cpp-httplib): a worker pool
// large enough that idle keep-alive connections and slow or silent clients
// never leave the others waiting for a worker, read and write time-outs
// that drop a connection which stops talking, TCP_NODELAY, the body limit,
// and server-sent events.
#pragma once

#include <httplib.h>

#include <string>

namespace chorus::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: a free one
  // Workers: each connection holds one while it is open (cpp-httplib's
  // model), so this bounds the open connections served at once.
  int threads = 256;
  int timeout_seconds = 30;         // a read or write that waits longer drops the connection
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
};

// Throws chorus::Error when an option is out of range.
void configure_transport(httplib::Server& svr, const HttpOptions& o);

// Binds the listening socket; returns the port (the free one for port 0).
// Throws chorus::Error naming the address when it cannot listen.
int bind_listener(httplib::Server& svr, const HttpOptions& o);

// Server-sent events over a chunked response: "data: <text>\n\n" per event.
class SseWriter {
 public:
  explicit SseWriter(httplib::DataSink& sink) : sink_(sink) {}
  // False (and nothing more is written) once the client is gone.
  bool send(const std::string& data);
  bool open() const { return open_; }
  void done();  // sends "data: [DONE]" and closes the stream

 private:
  httplib::DataSink& sink_;
  bool open_ = true;
};

}  // namespace chorus::server
