// The subcommands of the `chorus` tool; each registers its options on the
// CLI11 app and returns the function that runs it.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace chorus::tools {

using Command = std::function<int()>;

// Each adds a subcommand to `app`; `*selected` is set to its runner when the
// user picks it.
void add_run_command(CLI::App& app, Command* selected);
void add_info_command(CLI::App& app, Command* selected);
void add_tokenize_command(CLI::App& app, Command* selected);
void add_synth_command(CLI::App& app, Command* selected);
void add_perplexity_command(CLI::App& app, Command* selected);
void add_quantize_command(CLI::App& app, Command* selected);
void add_bench_command(CLI::App& app, Command* selected);
void add_forecast_command(CLI::App& app, Command* selected);  // cmd_forecast.cc
void add_serve_command(CLI::App& app, Command* selected);     // cmd_serve.cc

}  // namespace chorus::tools
