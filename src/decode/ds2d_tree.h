// The DS2D token tree of one stream and step. The root is the stream's next
// token (known exactly); below it, candidates for the following positions:
// the top-ranked tokens of the forecast logits of the previous step (the
// same ranked list under every parent of a depth, since a forecast does not
// see which parent was taken) and, optionally, the continuation of an
// n-gram match in the text so far.
//
// Nodes are chosen best-first by the estimated probability that the
// verification walk reaches them (the product of the acceptance estimates
// along the path, ds2d_stats.h), so a node's parent is always chosen before
// it and the tree is the one with the highest expected number of accepted
// tokens for its size (Medusa / Sequoia-style construction).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "decode/ds2d_stats.h"

namespace chorus {

struct DraftNode {
  int32_t token = 0;
  int32_t parent = -1;  // node index; -1 for the root (node 0)
  int16_t depth = 0;    // the root is at depth 0, position = root position + depth
  int16_t rank = -1;    // forecast rank of the token at its depth, -1 if no forecast proposed it
  bool ngram = false;   // on the n-gram continuation
  float prob = 1.0f;    // estimated probability that the walk reaches the node
  int32_t row = -1;     // its row in the step (set by the loop)
  int32_t forecast_row = -1;  // its first forecast row, -1 when it has none
  int16_t n_forecast = 0;     // forecast rows after it (a chain)
};

// Where candidates come from. forecast holds `forecast_depth` lists of
// `forecast_stride` tokens (best first); a depth's list may be shorter
// (padded with -1).
struct DraftCandidates {
  std::span<const int32_t> forecast;
  int forecast_depth = 0;
  int forecast_stride = 0;
  std::span<const int32_t> ngram;  // tokens after the root, or empty
  int ngram_match = 0;             // length of the n-gram match behind them
};

struct TreeLimits {
  int max_nodes = 1;      // root included
  int max_depth = 0;      // below the root
  int max_width = 4;      // forecast candidates per depth considered
  int forecast_rows = 0;  // rows that will follow each node (they only cost)
  // Cost of one more row relative to a one-row step; a node is only added
  // while it raises expected tokens per unit of step cost. 0: fill max_nodes.
  float row_cost = 0.0f;
};

// Reused between calls, so building a tree allocates nothing once warm.
struct TreeWorkspace {
  struct Candidate {
    float prob;
    int32_t parent;
    int32_t token;
    int16_t depth;
    int16_t rank;
    bool ngram;
  };
  std::vector<Candidate> heap;
};

// Fills `nodes` (cleared first; root first, every parent before its
// children, children of a node with distinct tokens) and returns the
// expected number of tokens the walk accepts, the root's included.
float build_draft_tree(int32_t root_token, const DraftCandidates& candidates,
                       const AcceptanceStats& stats, const TreeLimits& limits,
                       std::vector<DraftNode>* nodes, TreeWorkspace* work);

// Index of the child of `parent` holding `token`, or -1.
int find_child(std::span<const DraftNode> nodes, int parent, int32_t token);

}  // namespace chorus
