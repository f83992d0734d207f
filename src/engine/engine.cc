// The step function and the small stages it delegates to; see engine.h.
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/rope.h"
#include "gguf/quants.h"
#include "util/error.h"

namespace chorus {
namespace {

constexpr const char* kWhere = "engine";
constexpr int kDefaultMaxContext = 4096;
constexpr int kMaxContext = 1 << 24;
// Weight rows are split across threads in multiples of this, so no two
// threads write the same cache line of an output row (16 floats = 64 bytes).
constexpr int64_t kRowGrain = 16;
// Products run together in one run_matmuls call (q, k and v).
constexpr size_t kMaxJobs = 3;

Error row_error(size_t row, const std::string& what) {
  return Error(fmt::format("engine step: row {}", row), what);
}

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Checked before anything is packed or allocated; fills in the context.
EngineOptions resolve_options(EngineOptions o, const ModelConfig& c) {
  check(o.max_rows >= 1, kWhere, "max_rows must be at least 1, got {}", o.max_rows);
  check(o.max_streams >= 1 && o.max_streams <= KvCache::kMaxStreams, kWhere,
        "max_streams must be 1..{}, got {}", KvCache::kMaxStreams, o.max_streams);
  check(o.context >= 0 && o.context <= kMaxContext, kWhere,
        "context must be 0 (default) or 1..{}, got {}", kMaxContext, o.context);
  check(o.threads >= 1, kWhere, "threads must be at least 1, got {}", o.threads);
  check(o.min_parallel_work >= 0, kWhere, "min_parallel_work must be >= 0, got {}",
        o.min_parallel_work);
  if (o.context == 0) o.context = std::min(c.context_length, kDefaultMaxContext);
  return o;
}

}  // namespace

Engine::Engine(const Model& model, const EngineOptions& options)
    : config_(model.config),
      options_(resolve_options(options, model.config)),
      kernels_(&kernels::best_kernel_table()),
      pool_(options_.threads),
      weights_(pack_engine_weights(model, options_.weights, options_.output, pool_)),
      kv_(config_.n_layers, config_.kv_dim(), options_.context, options_.max_streams, options_.kv_type),
      adapters_(config_, options_.adapter_slots, options_.adapter_max_rank) {
  const ModelConfig& c = config_;

  rope_.head_dim = c.head_dim;
  rope_.rope_dim = c.rope_dim;
  rope_.theta = c.rope_theta;
  rope_.freq_scale = c.rope_freq_scale;
  const std::vector<float>& factors = model.weights.rope_freq_factors;
  rope_.freq_factors = factors.empty() ? nullptr : factors.data();

  const size_t rows = options_.max_rows;
  x_ = AlignedBuffer<float>(rows * c.dim);
  xn_ = AlignedBuffer<float>(rows * c.dim);
  q_ = AlignedBuffer<float>(rows * c.q_dim());
  k_ = AlignedBuffer<float>(rows * c.kv_dim());
  v_ = AlignedBuffer<float>(rows * c.kv_dim());
  attn_ = AlignedBuffer<float>(rows * c.q_dim());
  proj_ = AlignedBuffer<float>(rows * c.dim);
  gate_ = AlignedBuffer<float>(rows * c.ffn_dim);
  up_ = AlignedBuffer<float>(rows * c.ffn_dim);
  logits_ = AlignedBuffer<float>(rows * c.n_vocab);

  // One arena row is wide enough for any projection input; a width that is
  // not whole blocks never reaches an integer kernel (engine_weights.cc).
  // Rows start on cache lines in all three arrays (512 quants = 16 scales).
  const int64_t q_stride = round_up(std::max({c.dim, c.q_dim(), c.ffn_dim}), 512);
  const int64_t s_stride = q_stride / kQuantBlock;
  xq_q_ = AlignedBuffer<int8_t>(rows * q_stride);
  xq_scale_ = AlignedBuffer<float>(rows * s_stride);
  xq_sum_ = AlignedBuffer<float>(rows * s_stride);
  for (auto [views, width] : {std::pair{&xq_dim_, c.dim}, std::pair{&xq_qdim_, c.q_dim()},
                              std::pair{&xq_ffn_, c.ffn_dim}}) {
    views->resize(rows);
    for (size_t t = 0; t < rows; ++t) {
      (*views)[t] = {width, xq_q_.data() + t * q_stride, xq_scale_.data() + t * s_stride,
                     xq_sum_.data() + t * s_stride};
    }
  }

  // A row sees at most every cell once, so the context bounds its scores;
  // attend_f16 wants head_dim floats of scratch after them.
  scores_ = AlignedBuffer<float>(static_cast<size_t>(pool_.size()) * scores_per_thread());
  rope_cos_ = AlignedBuffer<float>(rows * std::max(1, c.rope_dim / 2));
  rope_sin_ = AlignedBuffer<float>(rows * std::max(1, c.rope_dim / 2));

  rows_.resize(rows);
  cells_.resize(rows);
  root_pos_.resize(rows);
  visible_.resize(rows);
  chain_buf_.resize(rows * (rows + 1) / 2);  // chains of lengths 1..max_rows at most
  if (options_.adapter_slots > 0) {
    lora_rows_.resize(rows);
    lora_groups_.resize(rows);
    lora_t_ = AlignedBuffer<float>(kMaxJobs * rows * options_.adapter_max_rank);
  }
}

Engine::~Engine() = default;

std::span<const float> Engine::step(std::span<const Row> rows) {
  validate(rows);
  if (rows.empty()) return {};
  begin_step(rows);
  embed(rows);
  for (int l = 0; l < config_.n_layers; ++l) {
    attention_block(l);
    ffn_block(l);
  }
  finish_step(rows);
  return output_head(rows);
}

void Engine::commit(std::span<const int> row_indices) {
  // Everything is checked before anything changes.
  for (size_t j = 0; j < row_indices.size(); ++j) {
    const int i = row_indices[j];
    check(i >= 0 && i < n_rows_, "engine commit",
          "index {} is not a row of the last step ({} rows)", i, n_rows_);
    const Row& r = rows_[i];
    if (!r.tentative) continue;
    check(kv_.cell_state(cells_[i]) != KvCache::CellState::kFree, "engine commit",
          "row {}: its cell was dropped (the cache was cleared since the step)", i);
    const int p = r.parent;
    const bool parent_kept =
        p < 0 || !rows_[p].tentative || ((kv_.cell_streams(cells_[p]) >> r.stream) & 1) ||
        std::find(row_indices.begin(), row_indices.begin() + j, p) != row_indices.begin() + j;
    check(parent_kept, "engine commit",
          "row {}: its parent, row {}, is tentative and not committed before it", i, p);
  }
  for (int i : row_indices) {
    if (rows_[i].tentative) kv_.commit(cells_[i], rows_[i].stream);
  }
}

void Engine::validate(std::span<const Row> rows) const {
  const ModelConfig& c = config_;
  if (rows.size() > static_cast<size_t>(options_.max_rows)) {
    throw Error("engine step",
                fmt::format("{} rows exceed max_rows = {}", rows.size(), options_.max_rows));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    if (r.embedding == nullptr && (r.token < 0 || r.token >= c.n_vocab)) {
      throw row_error(i, fmt::format("token = {} is out of range [0, {})", r.token, c.n_vocab));
    }
    if (r.pos < 0 || r.pos >= options_.context) {
      throw row_error(
          i, fmt::format("pos = {} is outside the context [0, {})", r.pos, options_.context));
    }
    if (r.stream < 0 || r.stream >= options_.max_streams) {
      throw row_error(
          i, fmt::format("stream = {} is out of range [0, {})", r.stream, options_.max_streams));
    }
    if (r.adapter != -1 && !adapters_.loaded(r.adapter)) {
      throw row_error(i, fmt::format("adapter = {} is not a loaded slot (of {}; -1 for none)",
                                     r.adapter, adapters_.slots()));
    }
    if (r.parent == -1) continue;
    if (r.parent < 0 || static_cast<size_t>(r.parent) >= i) {
      throw row_error(
          i, fmt::format("parent = {} must be -1 or the index of an earlier row", r.parent));
    }
    const Row& p = rows[r.parent];
    if (p.stream != r.stream) {
      throw row_error(i, fmt::format("parent = {} is in stream {}, the row in stream {}", r.parent,
                                     p.stream, r.stream));
    }
    if (r.pos != p.pos + 1) {
      throw row_error(i,
                      fmt::format("pos = {} must be its parent's pos + 1 = {}", r.pos, p.pos + 1));
    }
    if (p.tentative && !r.tentative) {
      throw row_error(
          i, fmt::format("parent = {} is tentative, so the row must be tentative too", r.parent));
    }
  }
  // Cells still pending from the last step are dropped before allocating.
  const size_t available = static_cast<size_t>(kv_.n_cells_free() + kv_.n_cells_pending());
  if (rows.size() > available) {
    throw Error("engine step", fmt::format("KV cache full: {} rows need cells, {} of {} are free",
                                           rows.size(), available, kv_.n_cells()));
  }
}

// Gives every row a cell and its list of visible cells (built once, read by
// every layer), and computes the rows' rotary angles.
void Engine::begin_step(std::span<const Row> rows) {
  kv_.drop_pending();
  n_rows_ = static_cast<int>(rows.size());
  std::copy(rows.begin(), rows.end(), rows_.begin());
  const int half = config_.rope_dim / 2;
  int32_t* chain = chain_buf_.data();
  for (int i = 0; i < n_rows_; ++i) {
    const Row& r = rows[i];
    cells_[i] = kv_.allocate(r.pos);
    RowCells& vis = visible_[i];
    vis.chain = chain;
    vis.n_chain = 0;
    if (r.parent >= 0) {
      const RowCells& up = visible_[r.parent];
      std::copy(up.chain, up.chain + up.n_chain, chain);
      vis.n_chain = up.n_chain;
      root_pos_[i] = root_pos_[r.parent];
    } else {
      root_pos_[i] = r.pos;
    }
    chain[vis.n_chain++] = cells_[i];
    chain += vis.n_chain;
    const std::span<const int32_t> committed = kv_.stream_cells_before(r.stream, root_pos_[i]);
    vis.committed = committed.data();
    vis.n_committed = static_cast<int32_t>(committed.size());
    rope_angles(r.pos, rope_, rope_cos_.data() + i * half, rope_sin_.data() + i * half);
  }
  group_rows_by_adapter(rows);
}

// SGMV-style grouping: each adapter's rows are contiguous in lora_rows_, so
// a slot's matrices are read once per product for all its rows.
void Engine::group_rows_by_adapter(std::span<const Row> rows) {
  n_lora_groups_ = 0;
  if (lora_rows_.empty()) return;
  int next = 0;
  for (int i = 0; i < n_rows_; ++i) {
    const int slot = rows[i].adapter;
    if (slot < 0) continue;
    bool seen = false;
    for (int g = 0; g < n_lora_groups_; ++g) seen = seen || lora_groups_[g].slot == slot;
    if (seen) continue;
    LoraGroup& group = lora_groups_[n_lora_groups_++];
    group = {slot, next, 0};
    for (int j = i; j < n_rows_; ++j) {
      if (rows[j].adapter == slot) lora_rows_[next + group.n++] = j;
    }
    next += group.n;
  }
}

void Engine::embed(std::span<const Row> rows) {
  const WeightView& e = weights_.token_embedding;
  const int dim = config_.dim;
  for (int i = 0; i < n_rows_; ++i) {
    if (rows[i].embedding != nullptr) {
      std::memcpy(x_.data() + i * dim, rows[i].embedding, dim * sizeof(float));
    } else {
      gguf::dequantize_row(e.type, e.row(rows[i].token), x_.data() + i * dim, dim);
    }
  }
}

template <typename F>
void Engine::for_rows(int n, int width, F&& fn) {
  // Element-wise work: an exp or a rounding per element, ~16 multiply-adds.
  if (int64_t{n} * width * 16 < options_.min_parallel_work) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  pool_.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

void Engine::attention_block(int layer) {
  const ModelConfig& c = config_;
  const EngineLayerWeights& w = weights_.layers[layer];
  const int n = n_rows_;
  rmsnorm_rows(xn_.data(), x_.data(), w.attn_norm.data(), n);
  if (w.wq.quantized() || w.wk.quantized() || w.wv.quantized()) {
    quantize(xn_.data(), c.dim, n, xq_dim_.data());
  }
  run_matmuls({{&w.wq, xn_.data(), xq_dim_.data(), q_.data(), LoraTarget::kQ},
               {&w.wk, xn_.data(), xq_dim_.data(), k_.data(), LoraTarget::kK},
               {&w.wv, xn_.data(), xq_dim_.data(), v_.data(), LoraTarget::kV}},
              n, layer);

  rotate_and_store(layer);
  attend_rows(layer);
  if (w.wo.quantized()) quantize(attn_.data(), c.q_dim(), n, xq_qdim_.data());
  run_matmuls({{&w.wo, attn_.data(), xq_qdim_.data(), proj_.data(), LoraTarget::kO}}, n, layer);
  add_rows(x_.data(), proj_.data(), c.dim, n);
}

// Rotates q and k of every row by its position and stores k, v in its cell.
void Engine::rotate_and_store(int layer) {
  const ModelConfig& c = config_;
  const int kv_dim = c.kv_dim(), q_dim = c.q_dim(), half = c.rope_dim / 2;
  for (int i = 0; i < n_rows_; ++i) {
    const float* cs = rope_cos_.data() + i * half;
    const float* sn = rope_sin_.data() + i * half;
    rope_rotate(q_.data() + i * q_dim, c.n_heads, c.head_dim, c.rope_dim, cs, sn);
    rope_rotate(k_.data() + i * kv_dim, c.n_kv_heads, c.head_dim, c.rope_dim, cs, sn);
    kv_.store(layer, cells_[i], k_.data() + i * kv_dim, v_.data() + i * kv_dim);
  }
}

// attn = attention of every (row, query head) over the row's visible cells.
// Pairs are dealt round-robin: rows late in a prefill chain see more cells,
// so contiguous ranges would load one thread more than the other.
void Engine::attend_rows(int layer) {
  const ModelConfig& c = config_;
  const int q_dim = c.q_dim();
  const int heads_per_kv = c.n_heads / c.n_kv_heads;
  const int items = n_rows_ * c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  int64_t work = 0;
  for (int i = 0; i < n_rows_; ++i) work += int64_t{visible_[i].size()} * q_dim * 2;
  const int threads = work >= options_.min_parallel_work ? pool_.size() : 1;
  // One item per (row, KV head): the query heads sharing that KV head go
  // together, so each key and value is fetched once for all of them.
  auto heads = [&](int t) {
    float* scores = scores_.data() + static_cast<size_t>(t) * scores_per_thread();
    for (int item = t; item < items; item += threads) {
      const int i = item / c.n_kv_heads, kvh = item % c.n_kv_heads;
      const RowCells& cells = visible_[i];
      const int kv_off = kvh * c.head_dim;
      const int q_off = i * q_dim + kvh * heads_per_kv * c.head_dim;
      if (kv_.type() == KvType::kF16) {
        kernels_->attend_f16(kv_.keys_f16(layer) + kv_off, kv_.values_f16(layer) + kv_off, kv_.kv_dim(),
                             cells.committed, cells.n_committed, cells.chain, cells.n_chain, c.head_dim,
                             heads_per_kv, scale, q_.data() + q_off, attn_.data() + q_off, scores);
      } else {
        kernels_->attend(kv_.keys_f32(layer) + kv_off, kv_.values_f32(layer) + kv_off, kv_.kv_dim(),
                         cells.committed, cells.n_committed, cells.chain, cells.n_chain, c.head_dim,
                         heads_per_kv, scale, q_.data() + q_off, attn_.data() + q_off, scores);
      }
    }
  };
  if (threads == 1) {
    heads(0);
  } else {
    pool_.run_on_all([&](int t) { heads(t); });
  }
}

void Engine::ffn_block(int layer) {
  const ModelConfig& c = config_;
  const EngineLayerWeights& w = weights_.layers[layer];
  const int n = n_rows_;
  rmsnorm_rows(xn_.data(), x_.data(), w.ffn_norm.data(), n);
  if (w.w_gate.quantized() || w.w_up.quantized()) quantize(xn_.data(), c.dim, n, xq_dim_.data());
  run_matmuls({{&w.w_gate, xn_.data(), xq_dim_.data(), gate_.data(), LoraTarget::kGate},
               {&w.w_up, xn_.data(), xq_dim_.data(), up_.data(), LoraTarget::kUp}},
              n, layer);
  const int ffn = c.ffn_dim;
  const bool quantize_down = w.w_down.quantized();
  for_rows(n, ffn, [&](int64_t i) {
    kernels_->silu_mul(gate_.data() + i * ffn, up_.data() + i * ffn, ffn);
    if (quantize_down) kernels_->quantize_activations(gate_.data() + i * ffn, ffn, xq_ffn_[i]);
  });
  run_matmuls({{&w.w_down, gate_.data(), xq_ffn_.data(), proj_.data(), LoraTarget::kDown}}, n,
              layer);
  add_rows(x_.data(), proj_.data(), c.dim, n);
}

// Non-tentative rows join their streams, in row order.
void Engine::finish_step(std::span<const Row> rows) {
  for (int i = 0; i < n_rows_; ++i) {
    if (!rows[i].tentative) kv_.commit(cells_[i], rows[i].stream);
  }
}

std::span<const float> Engine::output_head(std::span<const Row> rows) {
  const int dim = config_.dim;
  int m = 0;
  for (int i = 0; i < n_rows_; ++i) {
    if (!rows[i].want_logits) continue;
    kernels_->rmsnorm(xn_.data() + m * dim, x_.data() + i * dim, weights_.output_norm.data(), dim,
                      config_.rms_eps);
    ++m;
  }
  if (m == 0) return {};
  if (weights_.output.quantized()) quantize(xn_.data(), dim, m, xq_dim_.data());
  run_matmuls({{&weights_.output, xn_.data(), xq_dim_.data(), logits_.data()}}, m);
  return {logits_.data(), static_cast<size_t>(m) * config_.n_vocab};
}

// Every thread takes its slice of each matrix's rows: one fork-join for all
// the products that read the same input. With adapters, their shrink (which
// needs all of x) runs first; each thread then adds the expand of its slice
// right after computing it, while that part of y is in cache.
void Engine::run_matmuls(std::initializer_list<Matmul> jobs, int n, int layer) {
  int64_t work = 0;
  for (const Matmul& j : jobs) work += j.w->rows * j.w->cols * n;
  const int threads = work >= options_.min_parallel_work ? pool_.size() : 1;
  const bool lora = layer >= 0 && n_lora_groups_ > 0;
  if (lora) lora_shrink(jobs, layer, threads);
  auto slice = [&](int t) {
    int index = 0;
    for (const Matmul& j : jobs) {
      const int64_t rows = j.w->rows;
      const int64_t blocks = (rows + kRowGrain - 1) / kRowGrain;
      const int64_t r0 = std::min(rows, blocks * t / threads * kRowGrain);
      const int64_t r1 = std::min(rows, blocks * (t + 1) / threads * kRowGrain);
      if (r0 < r1) {
        matmul_rows(*kernels_, *j.w, j.x, j.w->cols, j.xq, n, j.y, j.w->rows, r0, r1);
        if (lora) lora_expand(j, index, layer, r0, r1);
      }
      ++index;
    }
  };
  if (threads == 1) {
    slice(0);
  } else {
    pool_.run_on_all([&](int t) { slice(t); });
  }
}

// t = s * A x for every (job, adapter group), dealt to threads in pieces of
// a few ranks so that one big adapter does not land on one thread.
void Engine::lora_shrink(std::initializer_list<Matmul> jobs, int layer, int threads) {
  constexpr int kRanksPerPiece = 8;
  const int max_rank = options_.adapter_max_rank;
  const int pieces_per_pair = (max_rank + kRanksPerPiece - 1) / kRanksPerPiece;
  const int n_pieces = static_cast<int>(jobs.size()) * n_lora_groups_ * pieces_per_pair;
  auto run = [&](int t) {
    for (int piece = t; piece < n_pieces; piece += threads) {
      const int index = piece / (n_lora_groups_ * pieces_per_pair);
      const int group = piece / pieces_per_pair % n_lora_groups_;
      const int j0 = piece % pieces_per_pair * kRanksPerPiece;
      const Matmul& job = jobs.begin()[index];
      const LoraGroup& g = lora_groups_[group];
      const AdapterPool::Pair& p = adapters_.pair(g.slot, layer, job.target);
      if (j0 >= p.rank) continue;
      const int ranks = std::min(kRanksPerPiece, p.rank - j0);
      const int64_t in = job.w->cols;
      float* t_out = lora_t_.data() + (index * options_.max_rows + g.begin) * max_rank + j0;
      kernels_->lora_shrink(p.a + j0 * in, ranks, in, job.x, in, lora_rows_.data() + g.begin, g.n,
                            p.scale, t_out, max_rank);
    }
  };
  if (threads == 1) {
    run(0);
  } else {
    pool_.run_on_all([&](int t) { run(t); });
  }
}

void Engine::lora_expand(const Matmul& job, int job_index, int layer, int64_t r0, int64_t r1) {
  const int max_rank = options_.adapter_max_rank;
  for (int group = 0; group < n_lora_groups_; ++group) {
    const LoraGroup& g = lora_groups_[group];
    const AdapterPool::Pair& p = adapters_.pair(g.slot, layer, job.target);
    if (p.rank == 0) continue;
    const float* t = lora_t_.data() + (job_index * options_.max_rows + g.begin) * max_rank;
    kernels_->lora_expand(p.bt, p.rank, job.w->rows, t, max_rank, lora_rows_.data() + g.begin, g.n,
                          job.y, job.w->rows, r0, r1);
  }
}

void Engine::quantize(const float* x, int width, int n, const QuantizedActivations* out) {
  for_rows(n, width,
           [&](int64_t i) { kernels_->quantize_activations(x + i * width, width, out[i]); });
}

void Engine::rmsnorm_rows(float* out, const float* x, const float* weight, int n) {
  const int dim = config_.dim;
  for (int i = 0; i < n; ++i)
    kernels_->rmsnorm(out + i * dim, x + i * dim, weight, dim, config_.rms_eps);
}

void Engine::add_rows(float* x, const float* delta, int width, int n) {
  for (int i = 0; i < n; ++i) kernels_->axpy(1.0f, delta + i * width, x + i * width, width);
}

}  // namespace chorus
