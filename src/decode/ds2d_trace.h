// DS2D acceptance traces, a benchmark hook: how many draft tokens each tree
// accepted, recorded from a real model (stories260K with trained forecasts)
// and replayed on a model of real size with random weights, whose own
// acceptance means nothing. In a replay the whole DS2D loop runs (trees,
// forecast rows, the step, the walk's sampling, KV commits, the tuner); only
// the walk's decision to go on follows the trace (walk_tree's
// replay_accepted), so every cost is real except the choice of tokens.
// Normal decoding never sets a trace: its output stays the model's own.
//
// File (text): a first line "chorus-ds2d-trace 1", then lines of "key
// values...": source (free text: what was recorded), forecasts (m of the
// recorded forecast file), lora_rank (rank of its forecast LoRA, 0: none),
// accepted (the lengths, tree by tree, in the order the loop verified them;
// the key may repeat, the lengths add up).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

struct AcceptanceTrace {
  std::string source;
  int forecasts = 0;  // m of the forecasts it was recorded with
  int lora_rank = 0;  // rank of their forecast LoRA (0: none)
  std::vector<int16_t> accepted;
  size_t cursor = 0;  // replay position; wraps around at the end

  // The next length to replay (0 for an empty trace).
  int next() {
    if (accepted.empty()) return 0;
    if (cursor >= accepted.size()) cursor = 0;
    return accepted[cursor++];
  }
  // Mean tokens per tree the trace stands for (accepted + the model's own).
  double tau() const;
};

// Throws Error naming the file and the line at fault.
AcceptanceTrace read_trace(const std::string& path);
void write_trace(const std::string& path, const AcceptanceTrace& trace);

}  // namespace chorus
