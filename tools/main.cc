// chorus command-line entry point: parses the subcommand and reports every
// chorus::Error as one line on stderr with a non-zero exit.
#include <cstdio>
#include <exception>
#include <new>

#include "tools/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"chorus: one frozen LLaMA-family model serving many tasks on a CPU", "chorus"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "chorus 0.1.0");
  chorus::tools::Command selected;
  chorus::tools::add_run_command(app, &selected);
  chorus::tools::add_info_command(app, &selected);
  chorus::tools::add_tokenize_command(app, &selected);
  chorus::tools::add_synth_command(app, &selected);
  chorus::tools::add_perplexity_command(app, &selected);
  chorus::tools::add_quantize_command(app, &selected);
  chorus::tools::add_bench_command(app, &selected);
  chorus::tools::add_forecast_command(app, &selected);
  chorus::tools::add_serve_command(app, &selected);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return selected();
  } catch (const chorus::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "chorus: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "chorus: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "chorus: internal error: %s\n", e.what());
    return 3;
  }
}
