// `chorus forecast`: DS2D forecast embeddings. derive (cmd_forecast.cc)
// writes a training-free set; eval (cmd_forecast_eval.cc) measures tau,
// acceptance per depth and speed against plain decoding.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/commands.h"

namespace chorus::tools {

void add_forecast_derive_command(CLI::App& forecast, Command* selected);
void add_forecast_eval_command(CLI::App& forecast, Command* selected);

}  // namespace chorus::tools
