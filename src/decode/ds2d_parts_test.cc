// The pieces of DS2D on their own: n-gram continuations, acceptance
// estimates, best-first trees, the dynamic shape and the verification walk.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "decode/ds2d_ngram.h"
#include "decode/ds2d_shape.h"
#include "decode/ds2d_stats.h"
#include "decode/ds2d_tree.h"
#include "decode/ds2d_verify.h"

namespace chorus {
namespace {

TEST(Ds2dNgram, FindsTheLatestLongestMatch) {
  std::vector<int32_t> out;
  // ... 5 6 7 | 8 9 ... 5 6 7 | 1 2 ... 6 7: the suffix "6 7" last occurred
  // before "1 2"; the longest n (3: "x 6 7") has no earlier match.
  const std::vector<int32_t> h = {5, 6, 7, 8, 9, 5, 6, 7, 1, 2, 3, 6, 7};
  EXPECT_EQ(ngram_continuation(h, 1, 3, 4, &out), 2);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3, 6}));
  EXPECT_EQ(ngram_continuation(h, 1, 3, 2, &out), 2);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2}));
  // min_n above any match: nothing.
  EXPECT_EQ(ngram_continuation(h, 3, 3, 4, &out), 0);
  EXPECT_TRUE(out.empty());
  // A continuation runs into the suffix itself: "1 1 1" continues with 1s.
  EXPECT_EQ(ngram_continuation(std::vector<int32_t>{1, 1, 1}, 1, 2, 5, &out), 2);
  EXPECT_EQ(out, (std::vector<int32_t>{1}));
  EXPECT_EQ(ngram_continuation(std::vector<int32_t>{4}, 1, 3, 5, &out), 0);
  EXPECT_EQ(ngram_continuation(std::vector<int32_t>{}, 1, 3, 5, &out), 0);
}

TEST(Ds2dStats, EstimatesFollowTheEvidence) {
  AcceptanceStats s;
  const float prior = s.forecast(1, 0);
  EXPECT_GT(prior, s.forecast(1, 1));  // lower ranks and deeper depths start lower
  EXPECT_GT(prior, s.forecast(2, 0));
  for (int i = 0; i < 200; ++i) s.observe_forecast(1, i % 4 == 0 ? 0 : -1);
  EXPECT_NEAR(s.forecast(1, 0), 0.25f, 0.05f);
  EXPECT_LT(s.forecast(1, 1), 0.05f);
  for (int i = 0; i < 200; ++i) s.observe_forecast(1, 1);  // the text changes: it follows
  EXPECT_GT(s.forecast(1, 1), 0.9f);
  EXPECT_LT(s.forecast(1, 0), 0.1f);
  for (int i = 0; i < 50; ++i) s.observe_ngram(2, 1, true);
  EXPECT_GT(s.ngram(2, 1), 0.9f);
  EXPECT_EQ(s.ngram(3, 1), AcceptanceStats().ngram(3, 1));  // per match length
  EXPECT_EQ(s.forecast(0, 0), 0.0f);
  EXPECT_EQ(s.forecast(1, AcceptanceStats::kMaxRank), 0.0f);

  Ds2dStats r;
  r.count_accepted(0, true, true);
  r.count_accepted(0, true, false);
  r.count_accepted(1, true, true);
  r.count_accepted(2, false, false);  // no candidate: not counted
  EXPECT_DOUBLE_EQ(r.acceptance(1), 0.5);
  EXPECT_DOUBLE_EQ(r.acceptance(2), 1.0);
  EXPECT_DOUBLE_EQ(r.acceptance(3), 0.0);
}

// Ranked forecast candidates: depth d proposes tokens 100 d + r.
std::vector<int32_t> ranked(int depth, int stride) {
  std::vector<int32_t> v;
  for (int d = 1; d <= depth; ++d) {
    for (int r = 0; r < stride; ++r) v.push_back(100 * d + r);
  }
  return v;
}

void expect_well_formed(const std::vector<DraftNode>& nodes, const TreeLimits& limits) {
  ASSERT_FALSE(nodes.empty());
  EXPECT_EQ(nodes[0].parent, -1);
  EXPECT_LE(static_cast<int>(nodes.size()), limits.max_nodes);
  for (size_t i = 1; i < nodes.size(); ++i) {
    ASSERT_GE(nodes[i].parent, 0);
    ASSERT_LT(nodes[i].parent, static_cast<int>(i));  // parents first
    EXPECT_EQ(nodes[i].depth, nodes[nodes[i].parent].depth + 1);
    EXPECT_LE(nodes[i].depth, limits.max_depth);
    EXPECT_LE(nodes[i].prob, nodes[nodes[i].parent].prob);
    for (size_t j = 1; j < i; ++j) {  // siblings differ
      if (nodes[j].parent == nodes[i].parent) {
        EXPECT_NE(nodes[j].token, nodes[i].token);
      }
    }
  }
}

TEST(Ds2dTree, BestFirstWithinLimits) {
  AcceptanceStats stats;
  const std::vector<int32_t> fc = ranked(3, 8);
  DraftCandidates cand;
  cand.forecast = fc;
  cand.forecast_depth = 3;
  cand.forecast_stride = 8;
  TreeLimits limits;
  limits.max_nodes = 10;
  limits.max_depth = 3;
  limits.max_width = 3;
  std::vector<DraftNode> nodes;
  TreeWorkspace work;
  const float expected = build_draft_tree(7, cand, stats, limits, &nodes, &work);
  expect_well_formed(nodes, limits);
  EXPECT_EQ(nodes.size(), 10u);
  EXPECT_EQ(nodes[0].token, 7);
  EXPECT_EQ(nodes[1].token, 100);  // the likeliest first
  float sum = 0;
  for (const DraftNode& n : nodes) {
    sum += n.prob;
    EXPECT_LT(n.rank, 3);
    if (n.parent >= 0) {
      EXPECT_EQ(n.token, 100 * n.depth + n.rank);
    }
  }
  EXPECT_FLOAT_EQ(expected, sum);
  EXPECT_EQ(find_child(nodes, 0, 100), 1);
  EXPECT_EQ(find_child(nodes, 0, 555), -1);

  // Depth is bounded by the forecasts available and by max_depth.
  limits.max_nodes = 64;
  limits.max_width = 1;
  build_draft_tree(7, cand, stats, limits, &nodes, &work);
  EXPECT_EQ(nodes.size(), 4u);  // a chain of the three top candidates
  limits.max_depth = 2;
  build_draft_tree(7, cand, stats, limits, &nodes, &work);
  EXPECT_EQ(nodes.size(), 3u);
}

TEST(Ds2dTree, NgramBranchesMergeWithForecasts) {
  AcceptanceStats stats;
  const std::vector<int32_t> fc = ranked(2, 8);
  const std::vector<int32_t> ngram = {101, 55, 66};  // agrees with rank 1 at depth 1
  DraftCandidates cand;
  cand.forecast = fc;
  cand.forecast_depth = 2;
  cand.forecast_stride = 8;
  cand.ngram = ngram;
  cand.ngram_match = 3;
  TreeLimits limits;
  limits.max_nodes = 32;
  limits.max_depth = 4;
  limits.max_width = 2;
  std::vector<DraftNode> nodes;
  TreeWorkspace work;
  build_draft_tree(7, cand, stats, limits, &nodes, &work);
  expect_well_formed(nodes, limits);
  const int a = find_child(nodes, 0, 101);
  ASSERT_GT(a, 0);
  EXPECT_TRUE(nodes[a].ngram);
  EXPECT_EQ(nodes[a].rank, 1);
  const int b = find_child(nodes, a, 55);  // beyond the forecasts' reach on its own
  ASSERT_GT(b, 0);
  EXPECT_EQ(nodes[b].rank, -1);
  EXPECT_GT(find_child(nodes, b, 66), 0);
  // Only the chain that followed the n-gram continues it.
  EXPECT_EQ(find_child(nodes, find_child(nodes, 0, 100), 55), -1);
}

TEST(Ds2dTree, RowCostStopsUnprofitableNodes) {
  AcceptanceStats stats;
  const std::vector<int32_t> fc = ranked(4, 8);
  DraftCandidates cand;
  cand.forecast = fc;
  cand.forecast_depth = 4;
  cand.forecast_stride = 8;
  TreeLimits limits;
  limits.max_nodes = 32;
  limits.max_depth = 4;
  limits.max_width = 4;
  std::vector<DraftNode> free_rows, costly;
  TreeWorkspace work;
  build_draft_tree(7, cand, stats, limits, &free_rows, &work);
  limits.row_cost = 0.5f;
  build_draft_tree(7, cand, stats, limits, &costly, &work);
  EXPECT_EQ(free_rows.size(), 32u);
  EXPECT_LT(costly.size(), 6u);
}

// Rows a shape spends at most: its nodes, plus a chain after each of them
// or after `chains` of them.
int rows_of(const TreeShape& s) {
  return s.chains == 0 ? s.max_nodes * (1 + s.forecast_rows) : s.max_nodes + s.chains * s.forecast_rows;
}

TEST(Ds2dShape, FollowsAcceptanceAtDepth) {
  ShapeChooser chooser;
  ShapeRequest req;
  req.budget = 32;
  req.max_forecasts = 6;
  req.max_depth = 8;
  req.max_width = 4;

  // Forecasts that are right far ahead: deep trees (many forecast rows).
  AcceptanceStats deep;
  for (int i = 0; i < 300; ++i) {
    for (int d = 1; d <= 6; ++d) deep.observe_forecast(d, 0);
  }
  // Forecasts that are only ever right one step ahead, and then as one of
  // several candidates: a shallow, wide tree.
  AcceptanceStats shallow;
  for (int i = 0; i < 300; ++i) {
    shallow.observe_forecast(1, i % 3);
    for (int d = 2; d <= 6; ++d) shallow.observe_forecast(d, -1);
  }
  const TreeShape a = chooser.choose(deep, req);
  const TreeShape b = chooser.choose(shallow, req);
  EXPECT_GE(a.forecast_rows, 4);
  EXPECT_LE(b.forecast_rows, 2);
  EXPECT_GT(a.expected, b.expected);
  for (const TreeShape& s : {a, b}) EXPECT_LE(rows_of(s), req.budget);

  // A fixed shape is taken as given; no forecasts means every row a node.
  req.fixed_forecasts = 3;
  req.fixed_chains = 0;
  EXPECT_EQ(chooser.choose(shallow, req).forecast_rows, 3);
  EXPECT_EQ(chooser.choose(shallow, req).chains, 0);
  EXPECT_EQ(chooser.choose(shallow, req).max_nodes, 8);
  req.fixed_chains = 2;
  EXPECT_EQ(chooser.choose(shallow, req).chains, 2);
  EXPECT_EQ(chooser.choose(shallow, req).max_nodes, 32 - 2 * 3);
  req.fixed_chains = -1;
  req.fixed_forecasts = -1;
  req.max_forecasts = 0;
  EXPECT_EQ(chooser.choose(deep, req).forecast_rows, 0);
  EXPECT_EQ(chooser.choose(deep, req).max_nodes, 32);
  // A budget too small for forecasts.
  req.max_forecasts = 6;
  req.budget = 1;
  EXPECT_EQ(chooser.choose(deep, req).forecast_rows, 0);
}

// P(walk ends at a node) = its reach minus its children's; they add up
// to the root's 1.
TEST(Ds2dShape, EndProbabilities) {
  std::vector<DraftNode> nodes(4);
  nodes[1].parent = 0;
  nodes[1].prob = 0.6f;
  nodes[2].parent = 0;
  nodes[2].prob = 0.3f;
  nodes[3].parent = 1;
  nodes[3].prob = 0.4f;
  std::vector<float> ends;
  end_probabilities(nodes, &ends);
  ASSERT_EQ(ends.size(), 4u);
  EXPECT_NEAR(ends[0], 0.1f, 1e-6);
  EXPECT_NEAR(ends[1], 0.2f, 1e-6);
  EXPECT_NEAR(ends[2], 0.3f, 1e-6);
  EXPECT_NEAR(ends[3], 0.4f, 1e-6);
  // Sibling estimates adding up past their parent never go negative.
  nodes[2].prob = 0.5f;
  end_probabilities(nodes, &ends);
  EXPECT_EQ(ends[0], 0.0f);
}

// Logits that make `next[t]` the argmax after token t.
std::vector<float> logits_for(const std::vector<DraftNode>& nodes, const std::vector<int32_t>& next,
                              int n_vocab) {
  std::vector<float> l(nodes.size() * n_vocab, 0.0f);
  for (size_t i = 0; i < nodes.size(); ++i) l[i * n_vocab + next[nodes[i].token]] = 1.0f;
  return l;
}

TEST(Ds2dVerify, WalksTheModelsChoices) {
  // Root 1; children 2 and 3; 3 has child 4; 4 has child 5. The "model"
  // continues 1 -> 3 -> 4 -> 6: the walk accepts 3 and 4, then 6 is next.
  std::vector<DraftNode> nodes(5);
  const int32_t tokens[] = {1, 2, 3, 4, 5};
  const int32_t parents[] = {-1, 0, 0, 2, 3};
  for (int i = 0; i < 5; ++i) {
    nodes[i].token = tokens[i];
    nodes[i].parent = parents[i];
    nodes[i].depth = i == 0 ? 0 : nodes[parents[i]].depth + 1;
    nodes[i].row = i;
  }
  const int n_vocab = 8;
  const std::vector<int32_t> next = {0, 3, 0, 4, 6, 0, 0, 0};
  const std::vector<float> logits = logits_for(nodes, next, n_vocab);
  SamplerParams sp;
  sp.temperature = 0;
  Sampler sampler(sp);
  auto fresh = [&] {
    StreamState s;
    s.pos = 10;
    s.next = 1;
    s.sampler = &sampler;
    s.history = {9, 1};
    s.n_generated = 1;
    return s;
  };
  std::vector<int32_t> reported;
  auto on_token = [&](int, int32_t id) {
    reported.push_back(id);
    return true;
  };
  DecodeLimits limits;
  TreeWalk walk;
  StreamState s = fresh();
  walk_tree(nodes, logits, n_vocab, s, 0, limits, on_token, &walk);
  EXPECT_EQ(reported, (std::vector<int32_t>{3, 4, 6}));
  EXPECT_EQ(walk.path, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(walk.model_tokens, (std::vector<int32_t>{3, 4, 6}));
  EXPECT_EQ(walk.n_commit, 2);
  EXPECT_EQ(s.pos, 13);  // root + 2 accepted
  EXPECT_EQ(s.next, 6);
  EXPECT_EQ(s.n_generated, 4);
  EXPECT_EQ(s.history, (std::vector<int32_t>{9, 1, 3, 4, 6}));
  EXPECT_FALSE(s.done);

  // n_predict reached in the middle: the last reported token is not fed.
  reported.clear();
  s = fresh();
  limits.n_predict = 2;
  walk_tree(nodes, logits, n_vocab, s, 0, limits, on_token, &walk);
  EXPECT_EQ(reported, (std::vector<int32_t>{3}));
  EXPECT_EQ(walk.n_commit, 0);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.stop_reason, StopReason::kLength);
  EXPECT_EQ(s.pos, 11);

  // The callback stops after 4: 4's node is not committed.
  reported.clear();
  s = fresh();
  limits.n_predict = 100;
  walk_tree(
      nodes, logits, n_vocab, s, 0, limits,
      [&](int, int32_t id) {
        reported.push_back(id);
        return id != 4;
      },
      &walk);
  EXPECT_EQ(reported, (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(walk.n_commit, 1);
  EXPECT_EQ(s.stop_reason, StopReason::kCallback);
}

}  // namespace
}  // namespace chorus
