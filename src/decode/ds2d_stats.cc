// DS2D acceptance estimates and the decode report; see ds2d_stats.h.
#include "decode/ds2d_stats.h"

#include <algorithm>
#include <cmath>

namespace chorus {
namespace {

// Weight of the past per new observation: the last ~50 trials of a depth
// dominate its estimate.
constexpr float kDecay = 0.98f;
// Pseudo-trials of the prior: a handful, so two or three steps of evidence
// already move the shape.
constexpr float kPriorWeight = 2.0f;

// Before any evidence: forecasts are worth trying (the top candidate often
// right, lower ranks less so, deeper depths less again), n-gram matches a
// little more so the longer the match.
float forecast_prior(int depth, int rank) {
  return 0.35f * std::pow(0.5f, static_cast<float>(rank)) *
         std::pow(0.7f, static_cast<float>(depth - 1));
}
float ngram_prior(int match_len, int depth) {
  return std::min(0.6f, 0.2f + 0.1f * static_cast<float>(match_len)) *
         std::pow(0.8f, static_cast<float>(depth - 1));
}

}  // namespace

AcceptanceStats::AcceptanceStats() = default;

float AcceptanceStats::estimate(const Counts& c, float prior) {
  return (c.hits + kPriorWeight * prior) / (c.trials + kPriorWeight);
}

float AcceptanceStats::forecast(int depth, int rank) const {
  if (depth < 1 || depth > kMaxDepth || rank < 0 || rank >= kMaxRank) return 0;
  return estimate(forecast_[depth - 1][rank], forecast_prior(depth, rank));
}

float AcceptanceStats::ngram(int match_len, int depth) const {
  if (depth < 1 || depth > kMaxDepth || match_len < 1) return 0;
  const int n = std::min(match_len, kMaxNgram);
  return estimate(ngram_[n - 1][depth - 1], ngram_prior(n, depth));
}

void AcceptanceStats::observe_forecast(int depth, int rank) {
  if (depth < 1 || depth > kMaxDepth) return;
  for (int r = 0; r < kMaxRank; ++r) {
    Counts& c = forecast_[depth - 1][r];
    c.trials = c.trials * kDecay + 1;
    c.hits = c.hits * kDecay + (r == rank ? 1.0f : 0.0f);
  }
}

void AcceptanceStats::observe_ngram(int match_len, int depth, bool hit) {
  if (depth < 1 || depth > kMaxDepth || match_len < 1) return;
  Counts& c = ngram_[std::min(match_len, kMaxNgram) - 1][depth - 1];
  c.trials = c.trials * kDecay + 1;
  c.hits = c.hits * kDecay + (hit ? 1.0f : 0.0f);
}

float AcceptanceStats::chain_gain(int depth) const {
  float reach = 1, gain = 0;
  for (int d = 1; d <= std::min(depth, kMaxDepth); ++d) {
    reach *= forecast(d, 0);
    gain += reach;
  }
  return gain;
}

double Ds2dStats::acceptance(int depth) const {
  const size_t d = static_cast<size_t>(depth - 1);
  if (depth < 1 || d >= reached.size() || reached[d] == 0) return 0;
  return static_cast<double>(accepted[d]) / reached[d];
}

void Ds2dStats::count_accepted(int depth_reached, bool had_candidate, bool accepted_it) {
  // depth_reached: the depth of the node the walk stood on; its children are
  // at depth_reached + 1.
  if (!had_candidate) return;
  const size_t d = static_cast<size_t>(depth_reached);
  if (reached.size() <= d) {
    reached.resize(d + 1, 0);
    accepted.resize(d + 1, 0);
  }
  ++reached[d];
  if (accepted_it) ++accepted[d];
}

void Ds2dStats::add(const Ds2dStats& o) {
  steps += o.steps;
  trees += o.trees;
  tokens += o.tokens;
  rows += o.rows;
  draft_nodes += o.draft_nodes;
  forecast_rows += o.forecast_rows;
  ngram_nodes += o.ngram_nodes;
  auto add_vec = [](std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    if (a.size() < b.size()) a.resize(b.size(), 0);
    for (size_t i = 0; i < b.size(); ++i) a[i] += b[i];
  };
  add_vec(reached, o.reached);
  add_vec(accepted, o.accepted);
  add_vec(accepted_length, o.accepted_length);
  seconds += o.seconds;
  row_cost = o.row_cost;
}

}  // namespace chorus
