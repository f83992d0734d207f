// The verification walk; see ds2d_verify.h.
#include "decode/ds2d_verify.h"

#include <algorithm>

#include "decode/accept_token.h"

namespace chorus {

void walk_tree(std::span<const DraftNode> nodes, std::span<const float> logits, int n_vocab,
               StreamState& s, int index, const DecodeLimits& limits, const OnStreamToken& on_token,
               TreeWalk* walk, int replay_accepted) {
  walk->path.clear();
  walk->model_tokens.clear();
  walk->n_commit = 0;
  ++s.pos;  // the root row is not tentative: the step committed it
  int node = 0;
  walk->path.push_back(0);
  // Replay only: reach[i] = the deepest depth in node i's subtree (children
  // come after their parents).
  const bool replay = replay_accepted >= 0;
  std::vector<int> reach;
  if (replay) {
    reach.resize(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) reach[i] = nodes[i].depth;
    for (size_t i = nodes.size(); i-- > 1;) {
      reach[nodes[i].parent] = std::max(reach[nodes[i].parent], reach[i]);
    }
  }
  for (;;) {
    const size_t row = static_cast<size_t>(nodes[node].row);
    const std::span<const float> row_logits = logits.subspan(row * n_vocab, n_vocab);
    int32_t id = s.sampler->sample(row_logits, s.history);
    if (replay && walk->n_commit < replay_accepted) {
      // The child whose subtree reaches deepest, so the trace's length is
      // met whenever the tree allows it; ties to the likeliest (first).
      int best = -1;
      for (size_t c = node + 1; c < nodes.size(); ++c) {
        if (nodes[c].parent == node && (best < 0 || reach[c] > reach[best])) {
          best = static_cast<int>(c);
        }
      }
      if (best >= 0) id = nodes[best].token;
    }
    walk->model_tokens.push_back(id);
    // The plain loop's rules, so the walk stops where it would.
    if (!accept_token(s, index, id, row_logits, limits, on_token)) return;
    if (replay && walk->n_commit >= replay_accepted) return;
    const int child = find_child(nodes, node, id);
    if (child < 0) return;  // `id` is fed next step, as the root of the next tree
    // The child fed exactly `id` at the next position: its KV is what plain
    // decoding would write there.
    node = child;
    walk->path.push_back(child);
    ++walk->n_commit;
    ++s.pos;
  }
}

}  // namespace chorus
