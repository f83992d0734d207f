// Best-first construction of the DS2D token tree; see ds2d_tree.h.
#include "decode/ds2d_tree.h"

#include <algorithm>

namespace chorus {
namespace {

using Candidate = TreeWorkspace::Candidate;

bool lower_prob(const Candidate& a, const Candidate& b) {
  // Ties: the shallower, then the better-ranked candidate first, so equal
  // estimates give the same tree every time.
  if (a.prob != b.prob) return a.prob < b.prob;
  if (a.depth != b.depth) return a.depth > b.depth;
  return a.rank > b.rank;
}

// Pushes the children of node `index` onto the heap.
void push_children(const std::vector<DraftNode>& nodes, int index, const DraftCandidates& cand,
                   const AcceptanceStats& stats, const TreeLimits& limits,
                   std::vector<Candidate>* heap) {
  const DraftNode& node = nodes[index];
  const int depth = node.depth + 1;
  if (depth > limits.max_depth) return;
  const size_t first = heap->size();
  if (depth <= cand.forecast_depth) {
    const int width = std::min(limits.max_width, cand.forecast_stride);
    const int32_t* ranked =
        cand.forecast.data() + static_cast<size_t>(depth - 1) * cand.forecast_stride;
    for (int r = 0; r < width && ranked[r] >= 0; ++r) {
      const float p = node.prob * stats.forecast(depth, r);
      heap->push_back(
          {p, index, ranked[r], static_cast<int16_t>(depth), static_cast<int16_t>(r), false});
    }
  }
  if (node.ngram && depth <= static_cast<int>(cand.ngram.size())) {
    const int32_t token = cand.ngram[depth - 1];
    const float p = node.prob * stats.ngram(cand.ngram_match, depth);
    auto same = std::find_if(heap->begin() + first, heap->end(),
                             [&](const Candidate& c) { return c.token == token; });
    if (same != heap->end()) {  // both sources agree: one node, the better estimate
      same->prob = std::max(same->prob, p);
      same->ngram = true;
    } else {
      heap->push_back({p, index, token, static_cast<int16_t>(depth), -1, true});
    }
  }
  for (size_t i = first; i < heap->size(); ++i) {
    std::push_heap(heap->begin(), heap->begin() + i + 1, lower_prob);
  }
}

}  // namespace

float build_draft_tree(int32_t root_token, const DraftCandidates& cand,
                       const AcceptanceStats& stats, const TreeLimits& limits,
                       std::vector<DraftNode>* nodes, TreeWorkspace* work) {
  nodes->clear();
  DraftNode root;
  root.token = root_token;
  root.ngram = !cand.ngram.empty();
  nodes->push_back(root);
  std::vector<Candidate>& heap = work->heap;
  heap.clear();
  push_children(*nodes, 0, cand, stats, limits, &heap);

  const int rows_per_node = 1 + std::max(0, limits.forecast_rows);
  float expected = 1.0f;
  int rows = rows_per_node;
  while (!heap.empty() && static_cast<int>(nodes->size()) < limits.max_nodes) {
    std::pop_heap(heap.begin(), heap.end(), lower_prob);
    const Candidate c = heap.back();
    heap.pop_back();
    if (!(c.prob > 0)) break;
    if (limits.row_cost > 0) {
      // Worth it when expected tokens per unit of step cost go up.
      const float before = expected / (1 + limits.row_cost * static_cast<float>(rows - 1));
      const float after = (expected + c.prob) /
                          (1 + limits.row_cost * static_cast<float>(rows + rows_per_node - 1));
      if (after <= before) break;  // later candidates are no more likely
    }
    DraftNode n;
    n.token = c.token;
    n.parent = c.parent;
    n.depth = c.depth;
    n.rank = c.rank;
    n.ngram = c.ngram;
    n.prob = c.prob;
    nodes->push_back(n);
    expected += c.prob;
    rows += rows_per_node;
    push_children(*nodes, static_cast<int>(nodes->size()) - 1, cand, stats, limits, &heap);
  }
  return expected;
}

int find_child(std::span<const DraftNode> nodes, int parent, int32_t token) {
  // Children come after their parent; trees are a few dozen nodes.
  for (size_t i = static_cast<size_t>(parent) + 1; i < nodes.size(); ++i) {
    if (nodes[i].parent == parent && nodes[i].token == token) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace chorus
