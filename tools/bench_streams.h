// `chorus bench --streams-vs-sequential`: k streams decoded together in one
// pass vs the same k streams run one after another (issue 5's speed-up).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "tools/commands.h"

namespace chorus::tools {

// Adds the flag to the bench subcommand. The returned function, called once
// the command line is parsed, gives the benchmark's runner when the flag was
// set and an empty Command otherwise. The benchmark reads bench's own
// options: -m, --tokenizer, -p (prompt length, default 64), -n (new tokens
// per stream, default 32), --streams (default 1,4,8), -t, -r, --weights,
// --output-head, --lora FILES / --lora-rank R [--lora-alpha] (one adapter
// per stream), --json, -o.
std::function<Command()> add_streams_vs_sequential(CLI::App* bench);

}  // namespace chorus::tools
