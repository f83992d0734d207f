// The verification walk; see ds2d_verify.h.
#include "decode/ds2d_verify.h"

#include "decode/accept_token.h"

namespace chorus {

void walk_tree(std::span<const DraftNode> nodes, std::span<const float> logits, int n_vocab,
               StreamState& s, int index, const DecodeLimits& limits, const OnStreamToken& on_token,
               TreeWalk* walk) {
  walk->path.clear();
  walk->model_tokens.clear();
  walk->n_commit = 0;
  ++s.pos;  // the root row is not tentative: the step committed it
  int node = 0;
  walk->path.push_back(0);
  for (;;) {
    const size_t row = static_cast<size_t>(nodes[node].row);
    const int32_t id = s.sampler->sample(logits.subspan(row * n_vocab, n_vocab), s.history);
    walk->model_tokens.push_back(id);
    // The plain loop's rules, so the walk stops where it would.
    if (!accept_token(s, index, id, limits, on_token)) return;
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
