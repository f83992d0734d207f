// See server.h.
#include "server/server.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "util/error.h"

namespace chorus::server {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // wakes the signal thread at a normal exit
  return set;
}

}  // namespace

void block_stop_signals() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error return, not a signal
}

int serve(Runtime& rt, const ServerOptions& o) {
  OpenAiServer server(rt, o.handlers);
  httplib::Server svr;
  configure_transport(svr, o.http);
  server.install(svr);
  const int port = bind_listener(svr, o.http);

  const sigset_t set = stop_signals();
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
  const auto adapters = rt.adapters();
  std::fprintf(
      stderr,
      "[chorus] serving %s (%s, context %d, up to %d streams%s, %d HTTP workers, time-out %d s%s) "
      "on http://%s:%d\n",
      info.model_path.c_str(), info.kernels.c_str(), info.context, info.max_streams,
      adapters.empty() ? "" : fmt::format(", adapters: {}", fmt::join(adapters, ", ")).c_str(),
      o.http.threads, o.http.timeout_seconds,
      o.handlers.access.api_key.empty() ? "" : ", API key required", o.http.host.c_str(), port);
  std::fflush(stderr);
  const bool ok = svr.listen_after_bind();
  if (!signalled) kill(getpid(), SIGUSR1);
  waiter.join();
  check(ok || signalled, fmt::format("{}:{}", o.http.host, port),
        "the server stopped unexpectedly");
  return 0;
}

}  // namespace chorus::server
