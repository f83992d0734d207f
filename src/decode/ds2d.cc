// The DS2D decode loop; see ds2d.h.
#include "decode/ds2d.h"

#include <algorithm>
#include <map>

#include "decode/ds2d_cost.h"
#include "decode/ds2d_ngram.h"
#include "decode/ds2d_shape.h"
#include "decode/ds2d_tree.h"
#include "decode/ds2d_verify.h"
#include "model/lora.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus {
namespace {

constexpr int kStride = AcceptanceStats::kMaxRank;  // ranked forecast tokens kept per depth
constexpr int kReshapeSteps = 4;

// One stream's DS2D state between steps.
struct Lane {
  const ForecastEmbeddings* forecast = nullptr;
  AcceptanceStats stats;            // this stream's own estimates
  AcceptanceStats* pool = nullptr;  // its adapter's, shared with other streams
  // Ranked proposals of the forecast rows after last step's deepest
  // accepted node: depth d's list at [(d - 1) * kStride].
  std::vector<int32_t> ranked;
  int ranked_depth = 0;
  std::vector<int32_t> ngram;  // n-gram continuation after the root
  int ngram_match = 0;
  std::vector<DraftNode> nodes;  // this step's tree
  TreeWalk walk;
  // The shape, re-chosen every kReshapeSteps steps (the estimates move
  // slowly; choosing costs a few microseconds, a tiny model's step ~100).
  TreeShape shape;
  int shape_budget = -1;
  int steps = 0;
};

// The k highest logits' ids, best first (ties to the lower id), padded
// with -1 when the vocabulary is smaller.
void top_tokens(std::span<const float> logits, int32_t* out, int k) {
  std::fill(out, out + k, -1);
  int n = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (n == k && !(v > logits[out[k - 1]])) continue;
    int j = n < k ? n++ : k - 1;
    while (j > 0 && v > logits[out[j - 1]]) {
      out[j] = out[j - 1];
      --j;
    }
    out[j] = static_cast<int32_t>(i);
  }
}

class Ds2dLoop {
 public:
  Ds2dLoop(Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
           const OnStreamToken& on_token, const Ds2dOptions& options,
           std::span<const ForecastEmbeddings* const> forecasts, Ds2dTuner* tuner);
  Ds2dStats run();

 private:
  float measured_row_cost(Ds2dTuner& tuner);
  void plan(size_t i, int budget);  // appends stream i's rows
  void verify(size_t i, std::span<const float> logits);
  void choose_chains(Lane& lane, const TreeShape& shape);

  Engine& engine_;
  std::span<StreamState> streams_;
  const DecodeLimits& limits_;
  const OnStreamToken& on_token_;
  const Ds2dOptions& options_;
  const int n_vocab_;
  const int context_;
  float row_cost_ = 0.0f;

  Ds2dTuner local_tuner_;  // when the caller keeps none
  std::vector<Lane> lanes_;
  ShapeChooser shapes_;
  TreeWorkspace work_;
  std::vector<float> ends_;  // choose_chains' scratch
  std::vector<int> order_;
  std::vector<Row> rows_;
  std::vector<int> commits_;
  std::vector<size_t> live_;
  Ds2dStats stats_;
};

Ds2dLoop::Ds2dLoop(Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
                   const OnStreamToken& on_token, const Ds2dOptions& options,
                   std::span<const ForecastEmbeddings* const> forecasts, Ds2dTuner* tuner)
    : engine_(engine),
      streams_(streams),
      limits_(limits),
      on_token_(on_token),
      options_(options),
      n_vocab_(engine.config().n_vocab),
      context_(engine.options().context),
      lanes_(streams.size()) {
  Ds2dTuner& pools = tuner != nullptr ? *tuner : local_tuner_;
  const size_t max_rows = static_cast<size_t>(engine.options().max_rows);
  row_cost_ = options.row_cost;
  if (row_cost_ < 0) row_cost_ = measured_row_cost(pools);
  for (size_t i = 0; i < streams.size(); ++i) {
    Lane& lane = lanes_[i];
    if (!forecasts.empty()) lane.forecast = forecasts[forecasts.size() == 1 ? 0 : i];
    lane.pool = &pools.for_adapter(streams[i].adapter);
    lane.stats = *lane.pool;
    lane.ranked.assign(static_cast<size_t>(AcceptanceStats::kMaxDepth) * kStride, -1);
    // Every buffer at its largest (a tree has at most max_rows nodes, each
    // with at most max_width + 1 children, max_depth levels below the
    // root), so no step allocates, however late the largest tree comes.
    lane.ngram.reserve(options.max_depth);
    lane.nodes.reserve(max_rows);
    lane.walk.path.reserve(options.max_depth + 1);
    lane.walk.model_tokens.reserve(options.max_depth + 1);
  }
  work_.heap.reserve(static_cast<size_t>(max_rows) * (options.max_width + 1));
  ends_.reserve(max_rows);
  order_.reserve(max_rows);
  stats_.accepted_length.reserve(options.max_depth + 1);
  rows_.reserve(max_rows);
  commits_.reserve(max_rows);
  live_.reserve(streams.size());
}

constexpr int kRowCostProbeRows = 8;

// The tuner's measurement when it has one for this many streams, else a
// new one on the first live stream.
float Ds2dLoop::measured_row_cost(Ds2dTuner& tuner) {
  int live = 0, first = -1;
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (streams_[i].done) continue;
    ++live;
    if (first < 0) first = static_cast<int>(i);
  }
  if (live == 0) return 0.0f;
  if (tuner.row_cost >= 0 && tuner.row_cost_streams == live) return tuner.row_cost;
  const int max_rows = engine_.options().max_rows;
  const int base = std::min(live, max_rows);
  // Probe with small trees (at most 8 rows per stream): where the row cost
  // matters, the tuner keeps trees small, and on large models a full-budget
  // probe would cost seconds.
  const int rows = std::min(max_rows, base * std::min(options_.budget, kRowCostProbeRows));
  const KvCache& kv = engine_.kv_cache();
  if (rows > kv.n_cells_free() + kv.n_cells_pending()) return 0.0f;
  const StreamState& s = streams_[first];
  tuner.row_cost = measure_row_cost(engine_, s.stream, s.pos, base, rows);
  tuner.row_cost_streams = live;
  return tuner.row_cost;
}

Ds2dStats Ds2dLoop::run() {
  const double t0 = now_seconds();
  const int max_rows = engine_.options().max_rows;
  for (;;) {
    // Streams that reported n_predict tokens are done (their last token is
    // never fed), as in decode_plain.
    live_.clear();
    for (size_t i = 0; i < streams_.size(); ++i) {
      StreamState& s = streams_[i];
      if (!s.done && s.n_generated >= limits_.n_predict) {
        s.done = true;
        s.stop_reason = StopReason::kLength;
      }
      if (!s.done) live_.push_back(i);
    }
    if (live_.empty()) break;
    // More live streams than rows: several steps, like decode_plain.
    for (size_t begin = 0; begin < live_.size(); begin += max_rows) {
      const size_t end = std::min(live_.size(), begin + static_cast<size_t>(max_rows));
      const int n = static_cast<int>(end - begin);
      const KvCache& kv = engine_.kv_cache();
      const int cells = kv.n_cells_free() + kv.n_cells_pending();
      const int budget = std::max(1, std::min({options_.budget, max_rows / n, cells / n}));
      rows_.clear();
      for (size_t j = begin; j < end; ++j) plan(live_[j], budget);
      const std::span<const float> logits = engine_.step(rows_);
      ++stats_.steps;
      stats_.rows += static_cast<int64_t>(rows_.size());
      commits_.clear();
      for (size_t j = begin; j < end; ++j) verify(live_[j], logits);
      engine_.commit(commits_);
    }
  }
  // The last trees' rejected rows would hold their cells until the next
  // step; free them now so the loop leaves only its streams' cells behind.
  engine_.kv_cache().drop_pending();
  stats_.seconds = now_seconds() - t0;
  stats_.row_cost = row_cost_;
  return stats_;
}

void Ds2dLoop::plan(size_t i, int budget) {
  StreamState& s = streams_[i];
  Lane& lane = lanes_[i];
  const int remaining = limits_.n_predict - s.n_generated;  // >= 1
  // Deeper nodes could never be reported, or would not fit the context.
  const int max_depth = std::min({options_.max_depth, remaining - 1, context_ - 1 - s.pos});

  ShapeRequest req;
  req.budget = budget;
  // Forecast rows only serve a next step; the last one needs none.
  req.max_forecasts = lane.forecast != nullptr && remaining > 1 ? lane.forecast->count : 0;
  req.max_depth = options_.max_depth;
  req.max_width = options_.max_width;
  req.row_cost = row_cost_;
  req.fixed_forecasts = options_.dynamic ? -1 : options_.forecast_rows;
  if (req.fixed_forecasts < 0 && !options_.dynamic) req.fixed_forecasts = req.max_forecasts;
  req.fixed_chains = options_.forecast_chains;
  if (req.fixed_chains < 0 && !options_.dynamic) req.fixed_chains = 0;
  if (lane.steps++ % kReshapeSteps == 0 || budget != lane.shape_budget || remaining <= 1) {
    lane.shape = shapes_.choose(lane.stats, req);
    lane.shape_budget = remaining <= 1 ? -1 : budget;  // the last step's shape is not kept
  }
  const TreeShape& shape = lane.shape;

  lane.ngram_match = 0;
  lane.ngram.clear();
  if (options_.ngram && max_depth > 0) {
    lane.ngram_match = ngram_continuation(s.history, options_.ngram_min, options_.ngram_max,
                                          max_depth, &lane.ngram);
  }
  DraftCandidates cand;
  cand.forecast = lane.ranked;
  cand.forecast_depth = lane.ranked_depth;
  cand.forecast_stride = kStride;
  cand.ngram = lane.ngram;
  cand.ngram_match = lane.ngram_match;
  TreeLimits limits;
  limits.max_nodes = shape.max_nodes;
  limits.max_depth = std::max(0, max_depth);
  limits.max_width = options_.max_width;
  limits.forecast_rows = shape.chains > 0 ? 0 : shape.forecast_rows;
  limits.row_cost = row_cost_;
  build_draft_tree(s.next, cand, lane.stats, limits, &lane.nodes, &work_);
  choose_chains(lane, shape);

  // Rows: the root (not tentative: plain decoding would feed it too), the
  // other nodes (parents first), then each node's forecast chain.
  const int16_t stream = static_cast<int16_t>(s.stream);
  const int16_t adapter = static_cast<int16_t>(s.adapter);
  for (DraftNode& node : lane.nodes) {
    Row r;
    r.token = node.token;
    r.pos = s.pos + node.depth;
    r.stream = stream;
    r.adapter = adapter;
    r.parent = node.parent < 0 ? -1 : lane.nodes[node.parent].row;
    r.want_logits = true;
    r.tentative = node.parent >= 0;
    node.row = static_cast<int32_t>(rows_.size());
    rows_.push_back(r);
    if (node.parent >= 0) ++stats_.draft_nodes;
    if (node.parent >= 0 && node.ngram && node.rank < 0) ++stats_.ngram_nodes;
  }
  for (DraftNode& node : lane.nodes) {
    const int32_t pos = s.pos + node.depth;
    node.n_forecast = static_cast<int16_t>(std::min<int>(node.n_forecast, context_ - 1 - pos));
    node.forecast_row = node.n_forecast > 0 ? static_cast<int32_t>(rows_.size()) : -1;
    for (int k = 1; k <= node.n_forecast; ++k) {
      Row r;
      r.pos = pos + k;
      r.stream = stream;
      r.adapter = lane.forecast->lora_slot >= 0 ? static_cast<int16_t>(lane.forecast->lora_slot)
                                                : adapter;
      r.parent = k == 1 ? node.row : static_cast<int32_t>(rows_.size()) - 1;
      r.want_logits = true;
      r.tentative = true;
      r.embedding = lane.forecast->row(k);
      rows_.push_back(r);
    }
    stats_.forecast_rows += node.n_forecast;
  }
}

// Marks the nodes that get a forecast chain (DraftNode::n_forecast): all of
// them, or the shape's count of likeliest walk ends.
void Ds2dLoop::choose_chains(Lane& lane, const TreeShape& shape) {
  std::vector<DraftNode>& nodes = lane.nodes;
  if (shape.chains <= 0 || shape.chains >= static_cast<int>(nodes.size())) {
    for (DraftNode& n : nodes) n.n_forecast = static_cast<int16_t>(shape.forecast_rows);
    return;
  }
  for (DraftNode& n : nodes) n.n_forecast = 0;
  end_probabilities(nodes, &ends_);
  order_.resize(nodes.size());
  for (size_t n = 0; n < order_.size(); ++n) order_[n] = static_cast<int>(n);
  // Ties (equal estimates) to the shallower node: the earlier index.
  std::partial_sort(order_.begin(), order_.begin() + shape.chains, order_.end(),
                    [&](int a, int b) { return ends_[a] != ends_[b] ? ends_[a] > ends_[b] : a < b; });
  for (int c = 0; c < shape.chains; ++c) nodes[order_[c]].n_forecast = static_cast<int16_t>(shape.forecast_rows);
}

void Ds2dLoop::verify(size_t i, std::span<const float> logits) {
  StreamState& s = streams_[i];
  Lane& lane = lanes_[i];
  TreeWalk& walk = lane.walk;
  const int tokens_before = s.n_generated;
  walk_tree(lane.nodes, logits, n_vocab_, s, static_cast<int>(i), limits_, on_token_, &walk,
            options_.replay != nullptr ? options_.replay->next() : -1);
  if (options_.record != nullptr) {
    options_.record->accepted.push_back(static_cast<int16_t>(walk.n_commit));
  }
  ++stats_.trees;
  stats_.tokens += s.n_generated - tokens_before;
  for (int d = 1; d <= walk.n_commit; ++d) commits_.push_back(lane.nodes[walk.path[d]].row);
  if (stats_.accepted_length.size() <= static_cast<size_t>(walk.n_commit)) {
    stats_.accepted_length.resize(walk.n_commit + 1, 0);
  }
  ++stats_.accepted_length[walk.n_commit];

  // What each depth's candidates were worth, where the walk got to judge
  // them: the model's token after every walked node.
  for (size_t d = 1; d <= walk.model_tokens.size(); ++d) {
    const int parent = walk.path[d - 1];
    const int32_t token = walk.model_tokens[d - 1];
    if (static_cast<int>(d) <= lane.ranked_depth) {
      const int32_t* ranked = lane.ranked.data() + (d - 1) * kStride;
      const int rank = static_cast<int>(std::find(ranked, ranked + kStride, token) - ranked);
      const int r = rank < kStride ? rank : -1;
      lane.stats.observe_forecast(static_cast<int>(d), r);
      lane.pool->observe_forecast(static_cast<int>(d), r);
    }
    if (lane.nodes[parent].ngram && d <= lane.ngram.size()) {
      const bool hit = lane.ngram[d - 1] == token;
      lane.stats.observe_ngram(lane.ngram_match, static_cast<int>(d), hit);
      lane.pool->observe_ngram(lane.ngram_match, static_cast<int>(d), hit);
    }
    bool has_children = false;
    for (size_t n = parent + 1; n < lane.nodes.size() && !has_children; ++n) {
      has_children = lane.nodes[n].parent == parent;
    }
    stats_.count_accepted(lane.nodes[parent].depth, has_children,
                          find_child(lane.nodes, parent, token) >= 0);
  }

  // The deepest accepted node's forecast rows propose the next tree. When
  // it has none, the nearest accepted ancestor's do, `shift` levels up: its
  // row k forecasts next tree's depth k - shift + 1.
  lane.ranked_depth = 0;
  if (s.done) return;
  const DraftNode& last = lane.nodes[walk.path.back()];
  for (size_t d = walk.path.size(); d-- > 0;) {
    const DraftNode& from = lane.nodes[walk.path[d]];
    if (from.n_forecast == 0) continue;
    const int shift = last.depth - from.depth;
    for (int k = shift; k < from.n_forecast && k - shift < AcceptanceStats::kMaxDepth; ++k) {
      const size_t row = static_cast<size_t>(from.forecast_row + k);
      top_tokens(logits.subspan(row * n_vocab_, n_vocab_), lane.ranked.data() + (k - shift) * kStride,
                 kStride);
      lane.ranked_depth = k - shift + 1;
    }
    break;
  }
}

}  // namespace

void validate_ds2d(const Engine& engine, const Ds2dOptions& o,
                   std::span<const ForecastEmbeddings* const> forecasts, size_t n_streams) {
  const int max_rows = engine.options().max_rows;
  check(o.budget >= 1 && o.budget <= max_rows, "ds2d budget",
        "must be 1..{} (the engine's rows per step), got {}", max_rows, o.budget);
  check(o.max_width >= 1 && o.max_width <= AcceptanceStats::kMaxRank, "ds2d max_width",
        "must be 1..{}, got {}", AcceptanceStats::kMaxRank, o.max_width);
  check(o.max_depth >= 1 && o.max_depth <= AcceptanceStats::kMaxDepth, "ds2d max_depth",
        "must be 1..{}, got {}", AcceptanceStats::kMaxDepth, o.max_depth);
  check(o.ngram_min >= 1 && o.ngram_min <= o.ngram_max, "ds2d ngram",
        "the match lengths must satisfy 1 <= min <= max, got {}..{}", o.ngram_min, o.ngram_max);
  check(o.forecast_rows >= -1, "ds2d forecast_rows", "must be -1 (all) or >= 0, got {}",
        o.forecast_rows);
  check(o.forecast_chains >= -1 && o.forecast_chains <= max_rows, "ds2d forecast_chains",
        "must be -1 (choose), 0 (every node) or 1..{}, got {}", max_rows, o.forecast_chains);
  check(o.row_cost >= 0 || o.row_cost == -1.0f, "ds2d row_cost",
        "must be >= 0, or -1 to measure it, got {}", o.row_cost);
  check(forecasts.size() <= 1 || forecasts.size() == n_streams, "ds2d forecasts",
        "{} forecast sets for {} streams (give none, one for all, or one per stream)",
        forecasts.size(), n_streams);
  // A budget below m + 1 is fine: a chain then uses the first budget - 1
  // forecasts (the shape never plans more rows than the budget).
  for (const ForecastEmbeddings* f : forecasts) {
    if (f != nullptr) validate_forecast_shape(*f, engine.config());
  }
}

Ds2dStats decode_ds2d(Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
                      const OnStreamToken& on_token, const Ds2dOptions& options,
                      std::span<const ForecastEmbeddings* const> forecasts, Ds2dTuner* tuner) {
  validate_ds2d(engine, options, forecasts, streams.size());
  // Forecasts learnt with an adapter only serve streams bound to it; base
  // forecasts (no adapter) serve every stream.
  for (size_t i = 0; i < streams.size() && !forecasts.empty(); ++i) {
    const ForecastEmbeddings* f = forecasts[forecasts.size() == 1 ? 0 : i];
    if (f == nullptr || f->adapter.empty() || streams[i].done) continue;
    const int slot = streams[i].adapter;
    const std::string bound =
        slot >= 0 && engine.adapters().loaded(slot) ? std::string(engine.adapters().name(slot)) : "";
    check(bound == f->adapter, f->path.empty() ? "ds2d forecasts" : f->path,
          "forecasts for adapter '{}' given to stream {}, which uses {}", f->adapter, i,
          bound.empty() ? std::string("the base model") : "adapter '" + bound + "'");
  }
  Ds2dLoop loop(engine, streams, limits, on_token, options, forecasts, tuner);
  return loop.run();
}

DecodeLoop ds2d_decode_loop(const Ds2dOptions& options,
                            std::vector<const ForecastEmbeddings*> forecasts, Ds2dStats* stats,
                            Ds2dTuner* tuner) {
  return [options, forecasts = std::move(forecasts), stats, tuner](
             Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
             const OnStreamToken& on_token) {
    const Ds2dStats s = decode_ds2d(engine, streams, limits, on_token, options, forecasts, tuner);
    if (stats != nullptr) stats->add(s);
  };
}

void load_forecast_lora(Engine& engine, ForecastEmbeddings& f) {
  if (f.lora_path.empty() || f.lora_slot >= 0) return;
  const LoraAdapter lora = load_lora(f.lora_path, engine.config());
  f.lora_slot = engine.adapters().load("forecast:" + f.lora_path, lora);
}

}  // namespace chorus
