// `chorus serve`'s life: the transport configured, the handlers installed,
// the port bound and announced, requests served until SIGINT or SIGTERM,
// then running generations ended (finish_reason "abort") and the workers
// joined.
#pragma once

#include <string>

#include "chorus/chorus.h"
#include "server/handlers.h"
#include "server/http_transport.h"

namespace chorus::server {

struct ServerOptions {
  HttpOptions http;
  HandlerOptions handlers;
};

// Blocks SIGINT and SIGTERM in the calling thread, so that every thread it
// starts later (the Runtime's, the workers) inherits the mask and one
// thread of serve() receives them. Call it before opening the Runtime.
void block_stop_signals();

// Serves `rt` until a stop signal; returns 0 after a clean stop. Throws
// chorus::Error when the options are wrong or the address cannot be bound.
int serve(Runtime& rt, const ServerOptions& o);

}  // namespace chorus::server
