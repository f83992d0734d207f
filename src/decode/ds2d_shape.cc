// Choosing the forecast rows per node; see ds2d_shape.h.
#include "decode/ds2d_shape.h"

#include <algorithm>

namespace chorus {

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
  const int f_lo = req.fixed_forecasts >= 0 ? std::min(req.fixed_forecasts, f_max) : 1;
  const int f_hi = req.fixed_forecasts >= 0 ? f_lo : f_max;
  for (int f = f_lo; f <= f_hi; ++f) {
    DraftCandidates cand;
    cand.forecast = dummy_;
    cand.forecast_depth = f;
    cand.forecast_stride = width;
    TreeLimits limits;
    limits.max_nodes = budget / (1 + f);
    limits.max_depth = std::min(f, req.max_depth);
    limits.max_width = width;
    limits.forecast_rows = f;
    limits.row_cost = req.row_cost;
    const float expected = build_draft_tree(0, cand, stats, limits, &nodes_, &work_);
    const int rows = static_cast<int>(nodes_.size()) * (1 + f);
    const float score = expected / (1 + req.row_cost * static_cast<float>(rows - 1));
    if (score > best_score || req.fixed_forecasts >= 0) {
      best_score = score;
      best = {f, limits.max_nodes, expected};
    }
  }
  return best;
}

}  // namespace chorus
