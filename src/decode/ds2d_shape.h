// The dynamic part of DS2D: how many forecast rows follow each tree node,
// and so how many nodes fit a stream's row budget, chosen every step from
// the stream's running acceptance estimates.
//
// A forecast chain of f rows bounds the depth of the next tree, and only
// the chain after the node where the walk stops (the deepest accepted node)
// is used. So chains go to the c nodes where the walk most likely ends, not
// to every node: the rest of the budget buys nodes. When the walk stops at
// a node without a chain, the chain of its nearest accepted ancestor j
// levels up still proposes depths 1..f - j (ds2d.cc).
//
// For every f in 1..m and c in 1..(all nodes) the shape module builds the
// best-first tree a steady state with f-deep forecasts would allow, takes
// the probability that its c likeliest end nodes hold the walk's end, and
// scores expected tokens per unit of step cost, counting an uncovered end
// as a next tree that is only the parent's chain, shifted by one depth. High acceptance at depth favours deep,
// narrow trees; low acceptance favours shallow, wide ones (more siblings at
// depth 1) or, with a row cost, fewer rows.
#pragma once

#include <span>
#include <vector>

#include "decode/ds2d_stats.h"
#include "decode/ds2d_tree.h"

namespace chorus {

struct ShapeRequest {
  int budget = 1;         // rows this stream may use this step
  int max_forecasts = 0;  // m of its forecast file (0: none)
  int max_depth = 0;      // tree depth allowed
  int max_width = 4;
  float row_cost = 0.0f;     // see TreeLimits
  int fixed_forecasts = -1;  // >= 0: use this many forecast rows per chain (a fixed shape)
  int fixed_chains = -1;     // >= 1: this many chains; 0: a chain after every node; -1: choose
};

struct TreeShape {
  int forecast_rows = 0;  // in each chain
  int chains = 0;         // nodes that get a chain (the likeliest ends); 0: every node
  int max_nodes = 1;      // root included
  float expected = 1.0f;  // expected tokens of the steady-state tree
};

// P(the walk ends at node i) for each node of a built tree: its estimated
// reach minus its children's.
void end_probabilities(std::span<const DraftNode> nodes, std::vector<float>* out);

class ShapeChooser {
 public:
  TreeShape choose(const AcceptanceStats& stats, const ShapeRequest& request);

 private:
  std::vector<int32_t> dummy_;  // distinct placeholder candidates
  std::vector<DraftNode> nodes_;
  std::vector<float> ends_;
  TreeWorkspace work_;
};

}  // namespace chorus
