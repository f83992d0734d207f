// Helpers shared by the engine's tests: the stories260K model, small engine
// options that fork every stage, row builders and logit comparisons.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "model/model.h"
#include "test_data/stories260k.h"

namespace chorus::testing {

inline const std::string kSource = CHORUS_SOURCE_DIR;

// tests/data/stories260K_greedy_ids.txt: greedy from BOS, the first 100 ids.
inline const std::vector<int32_t>& kReferenceIds = test_data::stories260k_greedy_ids();

// BOS and the first reference ids: a prompt the model finds natural.
inline const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 432, 383};

inline std::unique_ptr<Model> load_stories() { return load_model(kSource + "/models/stories260K.gguf"); }

inline EngineOptions small_options() {
  EngineOptions o;
  o.max_rows = 16;
  o.context = 256;
  o.threads = 2;
  o.min_parallel_work = 0;  // every stage forks, even on this tiny model
  // The tests comparing masks, trees and streams with the f32 reference
  // hold them to 1e-4; an f16 cache moves logits by up to ~1e-3 (see
  // Engine.PrefillThenDecodeMatchesReference), so they run on f32 cells.
  // The f16 default is held bit for bit by the invariance tests.
  o.kv_type = KvType::kF32;
  return o;
}

inline int32_t argmax(std::span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// max |a - b| relative to max |b|: the scale of the logits, so it does not
// blow up on logits near zero.
inline double max_rel_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

inline double rel_l2(std::span<const float> a, std::span<const float> b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
    norm += b[i] * static_cast<double>(b[i]);
  }
  return std::sqrt(diff / norm);
}

// Rows for tokens at positions start, start + 1, ... in one stream, each the
// parent of the next; all want logits.
inline std::vector<Row> chain(std::span<const int32_t> tokens, int start, int16_t stream = 0) {
  std::vector<Row> rows;
  for (size_t i = 0; i < tokens.size(); ++i) {
    Row r;
    r.token = tokens[i];
    r.pos = start + static_cast<int>(i);
    r.stream = stream;
    r.parent = i == 0 ? -1 : static_cast<int32_t>(i - 1);
    r.want_logits = true;
    rows.push_back(r);
  }
  return rows;
}

inline Row single(int32_t token, int pos, int16_t stream = 0) {
  Row r;
  r.token = token;
  r.pos = pos;
  r.stream = stream;
  r.want_logits = true;
  return r;
}

inline std::span<const float> logits_of(std::span<const float> all, int i, int n_vocab) {
  return all.subspan(static_cast<size_t>(i) * n_vocab, n_vocab);
}

}  // namespace chorus::testing
