// Training-free forecast embeddings; see forecast_derive.h.
#include "decode/forecast_derive.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "decode/multi_stream.h"
#include "engine/engine.h"
#include "gguf/quants.h"
#include "util/error.h"
#include "util/resources.h"

namespace chorus {
namespace {

using Vec = std::vector<float>;

// A position of the self-generated text: forecast k placed after token p of
// sequence `seq` is scored on token p + k + 1.
struct Position {
  int seq;
  int p;
};

struct Score {
  double log_likelihood = 0;  // mean log p(true token)
  double prob = 0;            // mean p(true token): the search's objective
  double top1 = 0, top4 = 0;  // how often the true token ranks first / in the first four

  // What a tree of top-4 candidates gains from a forecast, top-1 first.
  double merit() const { return top4 + top1 + 0.1 * prob; }
};

// Candidate starts for the search: the embeddings of this many of the most
// frequent tokens of the generated text.
constexpr int kPoolTokens = 128;

void check_options(const ForecastDeriveOptions& o) {
  check(o.count >= 1 && o.count <= 32, "forecast count", "must be 1..32, got {}", o.count);
  check(o.method == "mean" || o.method == "weighted-mean" || o.method == "token" ||
            o.method == "search",
        "forecast method", "must be mean, weighted-mean, token or search, got '{}'", o.method);
  check(o.sequences >= 1 && o.sequences <= KvCache::kMaxStreams, "forecast sequences",
        "must be 1..{}, got {}", KvCache::kMaxStreams, o.sequences);
  check(o.length >= o.count + 8 && o.length <= 4096, "forecast length",
        "must be {}..4096 (count + 8 at least), got {}", o.count + 8, o.length);
  check(o.iterations >= 0, "forecast iterations", "must be >= 0, got {}", o.iterations);
  check(o.pairs >= 1 && 2 * o.pairs + o.count <= 64, "forecast pairs",
        "must be 1..{} (2 x pairs + count rows per position fit a 64-row step), got {}",
        (64 - o.count) / 2, o.pairs);
  check(o.batch >= 1, "forecast batch", "must be >= 1, got {}", o.batch);
  check(o.pool_positions >= 1, "forecast pool_positions", "must be >= 1, got {}",
        o.pool_positions);
}

class Deriver {
 public:
  Deriver(const Model& model, const ForecastDeriveOptions& options, const DeriveProgress& progress)
      : model_(model), o_(options), progress_(progress), engine_(model, engine_options()) {}

  ForecastEmbeddings run(ForecastDeriveReport* report);

 private:
  EngineOptions engine_options() const {
    EngineOptions e;
    e.max_rows = 64;
    e.max_streams = o_.sequences;
    e.threads = o_.threads;
    // Every sequence's cells plus the largest step of tentative rows.
    e.context = std::min(model_.config.context_length, o_.length + o_.count + 2);
    e.context = std::max(e.context, o_.sequences * o_.length + 64);
    return e;
  }
  void say(const std::string& s) const {
    if (progress_) progress_(s);
  }
  void generate_text();
  void prefill_text();
  Vec token_mean(bool weighted) const;
  // How well each candidate for forecast k predicts the true token k + 1
  // ahead, averaged over the positions, with forecasts 1..k-1 fixed to done_.
  void score(int k, std::span<const Vec> candidates, std::span<const Position> positions,
             std::vector<Score>* out);
  Vec best_of_pool(int k, const Vec& mean, std::span<const Position> all);
  Vec search(int k, const Vec& start, std::span<const Position> all);

  const Model& model_;
  ForecastDeriveOptions o_;
  DeriveProgress progress_;
  Engine engine_;
  std::vector<std::vector<int32_t>> text_;  // BOS first
  std::vector<Vec> done_;                   // forecasts found so far
  std::vector<Row> rows_;
  std::mt19937_64 rng_{o_.seed * 0x9e3779b97f4a7c15ull + 7};
};

void Deriver::generate_text() {
  MultiStreamRequest req;
  const Tokenizer* tok = model_.tokenizer.get();
  const int32_t bos = tok != nullptr && tok->vocab().bos >= 0 ? tok->vocab().bos : 1;
  req.prompt = {bos};
  req.limits.n_predict = o_.length - 1;
  req.limits.tokenizer = tok;
  req.limits.ignore_eos = true;  // keep going into the next story: more text per sequence
  for (int j = 0; j < o_.sequences; ++j) {
    StreamSpec s;
    s.sampler.seed = o_.seed * 1000 + static_cast<uint64_t>(j);
    s.sampler.temperature = 1.0f;
    req.streams.push_back(s);
  }
  const MultiStreamResult res = run_streams(engine_, req, [](int, int32_t) { return true; });
  text_.clear();
  for (const StreamOutcome& out : res.streams) {
    std::vector<int32_t> seq = {bos};
    seq.insert(seq.end(), out.tokens.begin(), out.tokens.end());
    text_.push_back(std::move(seq));
  }
}

// Each sequence in its own stream, committed at positions 0..len-1.
void Deriver::prefill_text() {
  KvCache& kv = engine_.kv_cache();
  const int max_rows = engine_.options().max_rows;
  for (size_t j = 0; j < text_.size(); ++j) {
    kv.clear_stream(static_cast<int>(j));
    const std::vector<int32_t>& seq = text_[j];
    for (size_t begin = 0; begin < seq.size(); begin += max_rows) {
      rows_.clear();
      for (size_t i = begin; i < std::min(seq.size(), begin + max_rows); ++i) {
        Row r;
        r.token = seq[i];
        r.pos = static_cast<int32_t>(i);
        r.stream = static_cast<int16_t>(j);
        r.parent = i == begin ? -1 : static_cast<int32_t>(rows_.size()) - 1;
        rows_.push_back(r);
      }
      engine_.step(rows_);
    }
  }
}

Vec Deriver::token_mean(bool weighted) const {
  const ModelConfig& c = model_.config;
  std::vector<double> w(c.n_vocab, weighted ? 0.0 : 1.0);
  if (weighted) {
    for (const auto& seq : text_) {
      for (size_t i = 1; i < seq.size(); ++i) w[seq[i]] += 1;
    }
  }
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<double> sum(c.dim, 0.0);
  Vec row(c.dim);
  const WeightView& e = model_.weights.token_embedding;
  for (int v = 0; v < c.n_vocab; ++v) {
    if (w[v] == 0) continue;
    gguf::dequantize_row(e.type, e.row(v), row.data(), c.dim);
    for (int d = 0; d < c.dim; ++d) sum[d] += w[v] * row[d];
  }
  Vec mean(c.dim);
  for (int d = 0; d < c.dim; ++d) mean[d] = static_cast<float>(sum[d] / total);
  return mean;
}

void Deriver::score(int k, std::span<const Vec> all_cands, std::span<const Position> positions,
                    std::vector<Score>* out) {
  const int n_vocab = model_.config.n_vocab;
  const int max_rows = engine_.options().max_rows;
  out->assign(all_cands.size(), Score{});
  // Candidates in groups that leave room for at least one position's
  // chain in a step.
  const size_t group = static_cast<size_t>(max_rows - (k - 1));
  std::vector<int32_t> targets;
  for (size_t c0 = 0; c0 < all_cands.size(); c0 += group) {
    const std::span<const Vec> cands =
        all_cands.subspan(c0, std::min(group, all_cands.size() - c0));
    const int per_pos = (k - 1) + static_cast<int>(cands.size());
    for (size_t begin = 0; begin < positions.size();) {
      rows_.clear();
      targets.clear();
      size_t end = begin;
      for (; end < positions.size() && static_cast<int>(rows_.size()) + per_pos <= max_rows;
           ++end) {
        const Position& q = positions[end];
        // Forecasts 1..k-1 as a chain after the committed token p, then
        // every candidate for forecast k as a sibling at the chain's end.
        int parent = -1;
        for (int f = 1; f < k; ++f) {
          Row r;
          r.pos = q.p + f;
          r.stream = static_cast<int16_t>(q.seq);
          r.parent = parent;
          r.tentative = true;
          r.embedding = done_[f - 1].data();
          parent = static_cast<int>(rows_.size());
          rows_.push_back(r);
        }
        for (const Vec& c : cands) {
          Row r;
          r.pos = q.p + k;
          r.stream = static_cast<int16_t>(q.seq);
          r.parent = parent;
          r.tentative = true;
          r.want_logits = true;
          r.embedding = c.data();
          rows_.push_back(r);
        }
        targets.push_back(text_[q.seq][q.p + k + 1]);
      }
      const std::span<const float> logits = engine_.step(rows_);
      for (size_t t = 0; t < targets.size(); ++t) {
        for (size_t c = 0; c < cands.size(); ++c) {
          const float* l = logits.data() + (t * cands.size() + c) * n_vocab;
          const float mx = *std::max_element(l, l + n_vocab);
          double sum = 0;
          int above = 0;  // tokens ranked before the target
          const float lt = l[targets[t]];
          for (int v = 0; v < n_vocab; ++v) {
            sum += std::exp(static_cast<double>(l[v] - mx));
            above += l[v] > lt || (l[v] == lt && v < targets[t]);
          }
          const double log_p = lt - mx - std::log(sum);
          Score& s = (*out)[c0 + c];
          s.log_likelihood += log_p;
          s.prob += std::exp(log_p);
          s.top1 += above == 0 ? 1.0 : 0.0;
          s.top4 += above < 4 ? 1.0 : 0.0;
        }
      }
      begin = end;
    }
  }
  const double n = static_cast<double>(positions.size());
  for (Score& s : *out) {
    s.log_likelihood /= n;
    s.prob /= n;
    s.top1 /= n;
    s.top4 /= n;
  }
}

// The best start among token embeddings of frequent tokens and scaled
// versions of the mean, on a sample of the positions.
Vec Deriver::best_of_pool(int k, const Vec& mean, std::span<const Position> all) {
  const ModelConfig& c = model_.config;
  std::vector<double> freq(c.n_vocab, 0.0);
  for (const auto& seq : text_) {
    for (size_t i = 1; i < seq.size(); ++i) freq[seq[i]] += 1;
  }
  std::vector<int32_t> ids(c.n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  const int n_tokens = std::min(kPoolTokens, c.n_vocab);
  std::partial_sort(ids.begin(), ids.begin() + n_tokens, ids.end(),
                    [&](int32_t a, int32_t b) { return freq[a] > freq[b]; });
  std::vector<Vec> pool;
  for (float scale : {1.0f, 3.0f, 10.0f}) {
    pool.push_back(mean);
    for (float& x : pool.back()) x *= scale;
  }
  const WeightView& e = model_.weights.token_embedding;
  for (int i = 0; i < n_tokens; ++i) {
    pool.emplace_back(c.dim);
    gguf::dequantize_row(e.type, e.row(ids[i]), pool.back().data(), c.dim);
  }
  std::vector<Position> sample(std::min(static_cast<size_t>(o_.pool_positions), all.size()));
  std::sample(all.begin(), all.end(), sample.begin(), sample.size(), rng_);
  std::vector<Score> scores;
  score(k, pool, sample, &scores);
  size_t best = 0;
  for (size_t i = 1; i < pool.size(); ++i) {
    if (scores[i].merit() > scores[best].merit()) best = i;
  }
  return pool[best];
}

Vec Deriver::search(int k, const Vec& start, std::span<const Position> all) {
  const int dim = model_.config.dim;
  double ss = 0;
  for (float v : start) ss += static_cast<double>(v) * v;
  // Steps scale with the size of an embedding coordinate.
  const float scale = static_cast<float>(std::sqrt(ss / dim)) + 1e-3f;
  const float sigma = 0.5f * scale, lr = 0.1f * scale;
  const int pairs = o_.pairs;
  Vec x = start, m(dim, 0.0f), v(dim, 0.0f);
  std::vector<Vec> eps(pairs, Vec(dim)), cands(2 * pairs, Vec(dim));
  std::vector<Position> batch(std::min<size_t>(o_.batch, all.size()));
  std::normal_distribution<float> normal;
  std::vector<Score> scores;
  for (int it = 1; it <= o_.iterations; ++it) {
    std::sample(all.begin(), all.end(), batch.begin(), batch.size(), rng_);
    for (int i = 0; i < pairs; ++i) {
      for (int d = 0; d < dim; ++d) {
        eps[i][d] = normal(rng_);
        cands[2 * i][d] = x[d] + sigma * eps[i][d];
        cands[2 * i + 1][d] = x[d] - sigma * eps[i][d];
      }
    }
    score(k, cands, batch, &scores);
    // Antithetic estimate of the gradient of the mean probability of the
    // true token (bounded, unlike the log-likelihood, so hopeless positions
    // do not dominate; it tracks top-k hits).
    Vec g(dim, 0.0f);
    for (int i = 0; i < pairs; ++i) {
      const double diff = scores[2 * i].prob - scores[2 * i + 1].prob;
      const float w = static_cast<float>(diff / (2.0 * sigma * pairs));
      for (int d = 0; d < dim; ++d) g[d] += w * eps[i][d];
    }
    constexpr float b1 = 0.9f, b2 = 0.999f;  // Adam, ascending
    for (int d = 0; d < dim; ++d) {
      m[d] = b1 * m[d] + (1 - b1) * g[d];
      v[d] = b2 * v[d] + (1 - b2) * g[d] * g[d];
      const float mh = m[d] / (1 - std::pow(b1, static_cast<float>(it)));
      const float vh = v[d] / (1 - std::pow(b2, static_cast<float>(it)));
      x[d] += lr * mh / (std::sqrt(vh) + 1e-8f);
    }
  }
  return x;
}

ForecastEmbeddings Deriver::run(ForecastDeriveReport* report) {
  const double t0 = now_seconds();
  ForecastEmbeddings f = make_forecast(model_, o_.count);
  f.method = "derived-" + o_.method;
  say(fmt::format("generating {} sequences of {} tokens", o_.sequences, o_.length));
  generate_text();
  prefill_text();
  const Vec mean = token_mean(o_.method != "mean");

  ForecastDeriveReport rep;
  std::vector<Score> s;
  for (int k = 1; k <= o_.count; ++k) {
    std::vector<Position> all;
    for (size_t j = 0; j < text_.size(); ++j) {
      for (int p = 0; p + k + 1 < static_cast<int>(text_[j].size()); ++p) {
        all.push_back({static_cast<int>(j), p});
      }
    }
    check(!all.empty(), "forecast length", "the generated text is too short for forecast {}", k);
    score(k, std::span<const Vec>(&mean, 1), all, &s);
    const Score start = s[0];
    Vec best = mean;
    Score best_score = start;
    // Each further stage is kept only when it does better on every position.
    auto consider = [&](const Vec& v) {
      score(k, std::span<const Vec>(&v, 1), all, &s);
      if (s[0].merit() > best_score.merit()) {
        best = v;
        best_score = s[0];
      }
    };
    if (o_.method == "token" || o_.method == "search") consider(best_of_pool(k, mean, all));
    if (o_.method == "search" && o_.iterations > 0) consider(search(k, best, all));
    rep.start_log_likelihood.push_back(start.log_likelihood);
    rep.start_accuracy.push_back(start.top1);
    rep.log_likelihood.push_back(best_score.log_likelihood);
    rep.accuracy.push_back(best_score.top1);
    rep.start_top4.push_back(start.top4);
    rep.top4.push_back(best_score.top4);
    rep.start_score.push_back(start.merit());
    rep.score.push_back(best_score.merit());
    rep.positions = static_cast<int>(all.size());
    say(
        fmt::format("forecast {}: top-1 {:.3f} (mean {:.3f}), top-4 {:.3f} (mean {:.3f}), "
                    "log-likelihood {:.3f} (mean {:.3f})",
                    k, best_score.top1, start.top1, best_score.top4, start.top4,
                    best_score.log_likelihood, start.log_likelihood));
    done_.push_back(best);
    std::copy(best.begin(), best.end(), f.row(k));
  }
  rep.seconds = now_seconds() - t0;
  if (report != nullptr) *report = rep;
  return f;
}

}  // namespace

ForecastEmbeddings derive_forecast(const Model& model, const ForecastDeriveOptions& options,
                                   ForecastDeriveReport* report, const DeriveProgress& progress) {
  check_options(options);
  check(options.length + options.count + 1 <= model.config.context_length, "forecast length",
        "{} tokens + {} forecasts exceed the model's context of {}", options.length, options.count,
        model.config.context_length);
  Deriver d(model, options, progress);
  return d.run(report);
}

}  // namespace chorus
