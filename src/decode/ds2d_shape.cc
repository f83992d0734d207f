// Choosing the forecast chains of a tree; see ds2d_shape.h.
#include "decode/ds2d_shape.h"

#include <algorithm>
#include <functional>

namespace chorus {
namespace {

// Chain counts tried per f (choosing runs every few steps, so a handful).
constexpr int kChainCounts[] = {1, 2, 3, 4, 6, 8};

}  // namespace

void end_probabilities(std::span<const DraftNode> nodes, std::vector<float>* out) {
  out->resize(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) (*out)[i] = nodes[i].prob;
  for (size_t i = 1; i < nodes.size(); ++i) (*out)[nodes[i].parent] -= nodes[i].prob;
  // Sibling estimates come from separate statistics and may add up to a
  // little more than their parent's.
  for (float& p : *out) p = std::max(p, 0.0f);
}

TreeShape ShapeChooser::choose(const AcceptanceStats& stats, const ShapeRequest& req) {
  const int budget = std::max(1, req.budget);
  // f forecast rows need room for the node itself plus f.
  const int f_max =
      std::clamp(std::min(req.max_forecasts, budget - 1), 0, AcceptanceStats::kMaxDepth);
  const int width = std::clamp(req.max_width, 1, AcceptanceStats::kMaxRank);
  TreeShape best;
  best.max_nodes = budget;  // f = 0: every row a node (n-gram drafts only)
  if (f_max == 0) return best;

  // Steady-state candidates: width distinct tokens at each depth.
  dummy_.resize(static_cast<size_t>(f_max) * width);
  for (size_t i = 0; i < dummy_.size(); ++i) dummy_[i] = static_cast<int32_t>(i);

  float best_score = 1.0f;
  bool have_best = false;
  auto consider = [&](const TreeShape& shape, int rows, float expected) {
    const float score = expected / (1 + req.row_cost * static_cast<float>(rows - 1));
    if (score > best_score || (req.fixed_forecasts >= 0 && !have_best)) {
      best_score = score;
      best = shape;
      have_best = true;
    }
  };
  const int f_lo = req.fixed_forecasts >= 0 ? std::min(req.fixed_forecasts, f_max) : 1;
  const int f_hi = req.fixed_forecasts >= 0 ? f_lo : f_max;
  for (int f = f_lo; f <= f_hi; ++f) {
    DraftCandidates cand;
    cand.forecast = dummy_;
    cand.forecast_depth = f;
    cand.forecast_stride = width;
    TreeLimits limits;
    limits.max_depth = std::min(f, req.max_depth);
    limits.max_width = width;
    limits.row_cost = req.row_cost;
    if (req.fixed_chains <= 0) {  // a chain after every node
      limits.max_nodes = budget / (1 + f);
      limits.forecast_rows = f;
      const float expected = build_draft_tree(0, cand, stats, limits, &nodes_, &work_);
      const int rows = static_cast<int>(nodes_.size()) * (1 + f);
      consider({f, 0, limits.max_nodes, expected}, rows, expected);
    }
    if (req.fixed_chains == 0) continue;
    // An end without a chain borrows its parent's (at best), whose row k
    // forecasts next tree's depth k - 1 with depth k's accuracy: valued as
    // a chain of top-1 guesses, one depth short and one depth shifted.
    float borrowed = 1, reach = 1;
    for (int k = 2; k <= f; ++k) {
      reach *= stats.forecast(k, 0);
      borrowed += reach;
    }
    for (const int c : kChainCounts) {
      if (req.fixed_chains > 0 && c != req.fixed_chains) continue;
      limits.max_nodes = budget - c * f;
      if (limits.max_nodes < c) break;
      limits.forecast_rows = 0;  // the c chains are paid for up front
      const float expected = build_draft_tree(0, cand, stats, limits, &nodes_, &work_);
      end_probabilities(nodes_, &ends_);
      const int chained = std::min(c, static_cast<int>(ends_.size()));
      std::partial_sort(ends_.begin(), ends_.begin() + chained, ends_.end(), std::greater<>());
      float covered = 0;
      for (int i = 0; i < chained; ++i) covered += ends_[i];
      covered = std::min(covered, 1.0f);
      const float value = covered * expected + (1 - covered) * borrowed;
      const int rows = static_cast<int>(nodes_.size()) + chained * f;
      consider({f, c, limits.max_nodes, value}, rows, value);
    }
  }
  return best;
}

}  // namespace chorus
