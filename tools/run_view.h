// How `chorus run` shows a multi-stream result: one labelled block per
// stream on stdout, timings per stream and in total on stderr, or one JSON
// object holding an object per stream.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chorus/chorus.h"

namespace chorus::tools {

// What the user asked of each stream, for the labels.
struct StreamLabel {
  std::string adapter;  // empty: base model
  std::string suffix;
  int first_token_rank = -1;
  uint64_t seed = 0;
};

struct RunView {
  std::string model;
  std::string prompt;  // as given
  std::string backend;
  int threads = 0;
  uint64_t seed = 0;
  double load_seconds = 0;
  double pack_seconds = 0;
};

// The prompt once, then each stream's text under a label on stdout (in
// columns of a `side_by_side`-wide terminal when > 0 and they fit, else one
// block per stream), and the timing lines on stderr.
void print_streams(const RunView& view, const std::vector<StreamLabel>& labels, const Result& r,
                   const std::string& shown_prompt, int side_by_side = 0);

// The same texts in columns, one per stream, each under a short label,
// within `width` terminal columns; false (nothing printed) when the columns
// would be narrower than 16 characters.
bool print_side_by_side(const std::vector<StreamLabel>& labels, const Result& r, int width);

// One object: shared fields, "streams" (an object per stream) and "timings".
nlohmann::json streams_json(const RunView& view, const std::vector<StreamLabel>& labels,
                            const Result& r);

}  // namespace chorus::tools
