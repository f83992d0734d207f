// DS2D statistics: the running acceptance estimates the dynamic tree shape
// is chosen from, and the report of a decode (tau, acceptance per depth).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <vector>

namespace chorus {

// Running estimates, per depth d = 1..kMaxDepth below the root, of the
// probability that a candidate is the model's own token given that the walk
// reached its parent:
//   forecast(d, r): the candidate ranked r (0 = top) by the forecast logits;
//   ngram(n, d):    the d-th token after an n-gram match of length n.
// Counts decay geometrically, so the estimates follow the text as it
// changes (a story's dialogue vs narration), and start from a weak prior.
class AcceptanceStats {
 public:
  static constexpr int kMaxDepth = 16;
  static constexpr int kMaxRank = 8;   // forecast ranks tracked per depth
  static constexpr int kMaxNgram = 4;  // match lengths tracked (longer ones share the last)

  AcceptanceStats();

  float forecast(int depth, int rank) const;
  float ngram(int match_len, int depth) const;

  // rank: where the model's token stood among the forecast candidates at
  // `depth`, or -1 when it was not among the first kMaxRank.
  void observe_forecast(int depth, int rank);
  void observe_ngram(int match_len, int depth, bool hit);

  // Expected extra tokens per step over plain decoding a fixed chain of
  // top-1 forecasts would bring (a summary for reports).
  float chain_gain(int depth) const;

 private:
  struct Counts {
    float trials = 0;
    float hits = 0;
  };
  static float estimate(const Counts& c, float prior);

  std::array<std::array<Counts, kMaxRank>, kMaxDepth> forecast_{};
  std::array<std::array<Counts, kMaxDepth>, kMaxNgram> ngram_{};
};

// Acceptance estimates per adapter slot (-1 = base model), kept across
// decode calls so a use case starts from what it learnt last time. A stream
// starts from its adapter's estimates and updates both.
class Ds2dTuner {
 public:
  AcceptanceStats& for_adapter(int slot) { return by_adapter_[slot]; }
  // The measured cost of a row (Ds2dOptions::row_cost = -1), once per
  // engine and stream count; < 0 until measured.
  float row_cost = -1.0f;
  int row_cost_streams = 0;

 private:
  std::map<int, AcceptanceStats> by_adapter_;
};

// What a DS2D decode did, summed over its streams.
struct Ds2dStats {
  int64_t steps = 0;          // engine steps
  int64_t trees = 0;          // (stream, step) pairs: one tree verified each
  int64_t tokens = 0;         // tokens reported by the loop
  int64_t rows = 0;           // rows run, all kinds
  int64_t draft_nodes = 0;    // tree nodes below the roots
  int64_t forecast_rows = 0;  // forecast rows after nodes
  int64_t ngram_nodes = 0;    // nodes proposed by an n-gram match
  // [d - 1]: trees whose walk reached depth d - 1 and had a candidate at
  // depth d, and of those the trees that accepted one.
  std::vector<int64_t> reached, accepted;
  // [n]: trees that accepted n draft tokens (and reported n + 1 tokens,
  // unless the stream stopped).
  std::vector<int64_t> accepted_length;
  double seconds = 0;  // in the loop, steps included
  float row_cost = 0;  // the row cost the shapes were chosen with (measured or given)

  // Mean tokens per tree: plain decoding has tau = 1.
  double tau() const { return trees > 0 ? static_cast<double>(tokens) / trees : 0; }
  // Fraction of trees reaching depth d - 1 that accepted a depth-d node.
  double acceptance(int depth) const;
  double rows_per_step() const { return steps > 0 ? static_cast<double>(rows) / steps : 0; }
  void add(const Ds2dStats& other);
  void count_accepted(int depth_reached, bool had_candidate, bool accepted_it);
};

}  // namespace chorus
