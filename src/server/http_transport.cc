// See http_transport.h.
#include "server/http_transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "util/error.h"

namespace chorus::server {
namespace {

// Debian 12's cpp-httplib (0.11, a compiled library, so its
// CPPHTTPLIB_LISTEN_BACKLOG cannot be changed here) listens with a backlog
// of 5: a burst of new connections while the accept loop waits for a core
// overflows it and the kernel drops them. Calling listen() again on the
// bound socket sets a larger backlog; the socket is found as the listening
// TCP socket of this process bound to `port`.
void widen_backlog(int port) {
  for (int fd = 0; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int bound = -1;
    if (addr.ss_family == AF_INET) bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
}

}  // namespace

void configure_transport(httplib::Server& svr, const HttpOptions& o) {
  check(o.threads >= 1 && o.threads <= 4096, "--threads-http", "must be 1..4096, got {}",
        o.threads);
  check(o.timeout_seconds >= 1 && o.timeout_seconds <= 86400, "--timeout",
        "must be 1..86400 seconds, got {}", o.timeout_seconds);
  const size_t threads = static_cast<size_t>(o.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // A connection that sends part of a request and then nothing, or stops
  // reading a reply, is dropped after the time-out.
  svr.set_read_timeout(o.timeout_seconds, 0);
  svr.set_write_timeout(o.timeout_seconds, 0);
  // A kept-alive connection (or one that never sends a byte) holds a worker
  // while it waits for the next request: a few seconds, never more than the
  // time-out.
  svr.set_keep_alive_timeout(std::min(o.timeout_seconds, 5));
  svr.set_keep_alive_max_count(1000);
  svr.set_payload_max_length(o.max_body_bytes);
  // A reply leaves as two writes (headers, then body); with Nagle's
  // algorithm on, the body waits for the client's delayed ACK (~40 ms) on a
  // kept-alive connection.
  svr.set_tcp_nodelay(true);
}

int bind_listener(httplib::Server& svr, const HttpOptions& o) {
  check(o.port >= 0 && o.port <= 65535, "--port", "must be 0..65535, got {}", o.port);
  if (o.port == 0) {
    const int port = svr.bind_to_any_port(o.host);
    check(port > 0, o.host, "cannot listen (bind to a free port failed)");
    widen_backlog(port);
    return port;
  }
  check(svr.bind_to_port(o.host, o.port), fmt::format("{}:{}", o.host, o.port),
        "cannot listen (address in use or not available)");
  widen_backlog(o.port);
  return o.port;
}

bool SseWriter::send(const std::string& data) {
  if (!open_) return false;
  const std::string event = "data: " + data + "\n\n";
  open_ = sink_.write(event.data(), event.size());
  return open_;
}

void SseWriter::done() {
  send("[DONE]");
  sink_.done();
}

}  // namespace chorus::server
