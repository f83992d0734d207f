// `chorus serve`: the command line of the OpenAI-compatible HTTP server
// (src/server/): flags to options, the Runtime opened, then serve().
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "chorus/chorus.h"
#include "server/chat_prompt.h"
#include "server/server.h"
#include "tools/commands.h"
#include "tools/runtime_flags.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

struct ServeArgs {
  std::string model;
  std::string tokenizer;
  int threads = 2;
  int context = 0;
  int max_streams = 8;
  std::vector<std::string> loras;  // NAME=PATH[:SCALE]
  Ds2dFlags ds2d;
  std::string kv_type = "f16";
  server::HttpOptions http;
  std::string api_key;
  std::string api_key_file;
  std::string cors;  // comma-separated origins, or *
  std::string chat_template;  // a name or a Jinja file; empty: the model's own
};

// The first line of the file, without surrounding white space.
std::string read_api_key(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), path, "cannot read the API key file");
  std::string line;
  std::getline(in, line);
  const size_t b = line.find_first_not_of(" \t\r");
  const size_t e = line.find_last_not_of(" \t\r");
  check(b != std::string::npos, path, "the API key file's first line is empty");
  return line.substr(b, e - b + 1);
}

std::vector<std::string> split_origins(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  check(!out.empty(), "--cors", "give origins separated by commas, or *");
  return out;
}

int run_serve(const ServeArgs& a) {
  check(a.max_streams >= 1 && a.max_streams <= 64, "--max-streams", "must be 1..64, got {}",
        a.max_streams);
  check(a.api_key.empty() || a.api_key_file.empty(), "--api-key",
        "give --api-key or --api-key-file, not both");
  server::ServerOptions so;
  so.http = a.http;
  so.handlers.max_body_bytes = so.http.max_body_bytes;
  so.handlers.access.api_key = a.api_key_file.empty() ? a.api_key : read_api_key(a.api_key_file);
  if (!a.cors.empty()) so.handlers.access.cors_origins = split_origins(a.cors);

  RuntimeOptions ro;
  ro.tokenizer = a.tokenizer;
  ro.threads = a.threads;
  ro.context = a.context;
  ro.max_streams = a.max_streams;
  ro.adapters = parse_loras(a.loras);
  ro.speculation = speculation_options(a.ds2d);
  ro.kv_type = a.kv_type;

  server::block_stop_signals();  // before the Runtime's threads exist
  Runtime rt(a.model, ro);
  const RuntimeInfo info = rt.info();
  // A base model without a template (stories260K) keeps the fixed one, and
  // says so; a template that is there but not recognised is an error here,
  // at start-up, since a wrongly formatted chat degrades answers silently.
  if (a.chat_template.empty() && info.chat_template.empty()) {
    std::fprintf(stderr,
                 "chorus serve: the model has no chat template; chat uses the fixed one (message "
                 "contents joined by newlines); --chat-template NAME picks one\n");
  } else {
    const chat::ChatTemplate t = chat::choose_template(a.chat_template, info.chat_template);
    so.handlers.chat_template = chat::describe(t);
    so.handlers.chat_formatter = server::template_formatter(t, info);
    std::fprintf(stderr, "chorus serve: chat template %s\n", so.handlers.chat_template.c_str());
  }
  return server::serve(rt, so);
}

}  // namespace

void add_serve_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions, /v1/models)");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model file")->required();
  cmd->add_option("--tokenizer", args->tokenizer,
                  "tokenizer.bin for a llama2.c model (default: beside it)");
  cmd->add_option("--host", args->http.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->http.port, "Port (0: a free one, printed at start)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Compute threads")->capture_default_str();
  cmd->add_option("--threads-http", args->http.threads,
                  "HTTP workers: open connections served at once (idle keep-alive ones included)")
      ->capture_default_str();
  cmd->add_option("--timeout", args->http.timeout_seconds,
                  "Seconds a connection may stay silent mid-request before it is dropped")
      ->capture_default_str();
  cmd->add_option("-c,--ctx-size", args->context,
                  "KV cells shared by a request's choices (default: min(model context, 4096))");
  cmd->add_option("--max-streams", args->max_streams, "Largest n (choices decoded in one pass)")
      ->capture_default_str();
  cmd->add_option(
      "--lora", args->loras,
      "Load an adapter: NAME=PATH[:SCALE] (repeatable); requests pick it as model NAME");
  cmd->add_option("--api-key", args->api_key,
                  "Require 'Authorization: Bearer KEY' on every endpoint but /health");
  cmd->add_option("--api-key-file", args->api_key_file,
                  "Read the API key from the file's first line");
  cmd->add_option("--cors", args->cors,
                  "Allow browsers from these origins (comma-separated, or *) to call the server");
  cmd->add_option("--chat-template", args->chat_template,
                  fmt::format("Chat template: a name ({}) or a Jinja file (default: the model's "
                              "tokenizer.chat_template)",
                              fmt::join(chat::template_names(), ", ")));
  add_ds2d_flags(cmd, &args->ds2d);
  add_kv_type_flag(cmd, &args->kv_type);
  cmd->callback([args, selected] { *selected = [args] { return run_serve(*args); }; });
}

}  // namespace chorus::tools
