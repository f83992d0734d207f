// The verification walk; see ds2d_verify.h.
#include "decode/ds2d_verify.h"

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
    if (!limits.ignore_eos && limits.tokenizer != nullptr && limits.tokenizer->is_eog(id)) {
      s.done = true;
      s.stop_reason = StopReason::kEndOfGeneration;
      return;
    }
    s.history.push_back(id);
    s.next = id;
    ++s.n_generated;
    if (!on_token(index, id)) {
      s.done = true;
      s.stop_reason = StopReason::kCallback;
      return;
    }
    // The plain loop would stop before feeding this token.
    if (s.n_generated >= limits.n_predict) {
      s.done = true;
      s.stop_reason = StopReason::kLength;
      return;
    }
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
