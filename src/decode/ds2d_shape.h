// The dynamic part of DS2D: how many forecast rows follow each tree node,
// and so how many nodes fit a stream's row budget, chosen every step from
// the stream's running acceptance estimates.
//
// Each node costs 1 + f rows (itself and its forecast chain), and f bounds
// the depth of the next tree. For every f in 0..m the shape module builds
// the best-first tree a steady state with f-deep forecasts would allow
// (nodes = budget / (1 + f)) and scores its expected tokens per unit of step
// cost; the best f wins. High acceptance at depth favours deep, narrow
// trees; low acceptance favours shallow, wide ones (more siblings at
// depth 1) or, with a row cost, fewer rows.
#pragma once

#include "decode/ds2d_stats.h"
#include "decode/ds2d_tree.h"

namespace chorus {

struct ShapeRequest {
  int budget = 1;         // rows this stream may use this step
  int max_forecasts = 0;  // m of its forecast file (0: none)
  int max_depth = 0;      // tree depth allowed
  int max_width = 4;
  float row_cost = 0.0f;     // see TreeLimits
  int fixed_forecasts = -1;  // >= 0: use this many forecast rows per node (a fixed shape)
};

struct TreeShape {
  int forecast_rows = 0;  // after each node
  int max_nodes = 1;      // root included
  float expected = 1.0f;  // expected tokens of the steady-state tree
};

class ShapeChooser {
 public:
  TreeShape choose(const AcceptanceStats& stats, const ShapeRequest& request);

 private:
  std::vector<int32_t> dummy_;  // distinct placeholder candidates
  std::vector<DraftNode> nodes_;
  TreeWorkspace work_;
};

}  // namespace chorus
