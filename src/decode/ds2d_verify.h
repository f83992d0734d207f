// DS2D verification: the walk down one stream's verified tree.
//
// At each node the stream's own sampler picks the model's token from that
// node's exact logits, with the history so far: precisely what plain
// decoding samples at that position (greedy: the argmax; temperature > 0: a
// draw from the model's distribution). The walk follows the child holding
// that token, if there is one, so the tree only decides how many tokens a
// step yields, never which: the output (greedy) or its distribution
// (sampling) is the model's own.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "decode/ds2d_tree.h"
#include "decode/stream_state.h"

namespace chorus {

struct TreeWalk {
  std::vector<int> path;              // nodes walked, root first
  std::vector<int32_t> model_tokens;  // [d - 1]: the model's token after path[d - 1]
  int n_commit = 0;                   // path[1..n_commit]: accepted nodes whose KV joins the stream
};

// Walks `nodes`, whose logits are rows nodes[i].row of `logits` (n_vocab
// each), for stream `s` (index `index` for the callback), reporting tokens
// under the plain loop's rules: an end-of-generation token ends the stream
// unreported (unless ignore_eos), on_token may stop it, n_predict ends it;
// a token reported last is never fed, so its node is not committed. Updates
// s.pos (root + committed nodes), next, history, n_generated, done and
// stop_reason.
//
// replay_accepted >= 0 is the benchmark's replay (ds2d_trace.h), never
// used to decode: the model's token is still sampled at every node walked,
// but while fewer than replay_accepted nodes are accepted the walk takes
// the token of the child whose subtree reaches deepest (ties: the
// likeliest) instead, and it stops there: the accepted length follows the
// trace, capped by the tree's depth, not the model.
void walk_tree(std::span<const DraftNode> nodes, std::span<const float> logits, int n_vocab,
               StreamState& s, int index, const DecodeLimits& limits, const OnStreamToken& on_token,
               TreeWalk* walk, int replay_accepted = -1);

}  // namespace chorus
