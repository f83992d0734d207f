// The engine: the one fixed-capacity step function every decoder drives.
//
// A step takes a set of rows (token, position, stream, tree parent, ...) and
// runs them through the model in one pass: prefill chunks, plain decode,
// several streams at once and DS2D token trees are all just different row
// sets. Capacities (rows per step, streams, context) are fixed at
// construction, where every buffer is allocated and the weights are packed;
// a steady-state step allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "engine/adapter_pool.h"
#include "engine/attention.h"
#include "engine/engine_weights.h"
#include "engine/kv_cache.h"
#include "kernels/kernels.h"
#include "kernels/reference_ops.h"
#include "model/model.h"
#include "util/aligned_buffer.h"
#include "util/thread_pool.h"

namespace chorus {

struct EngineOptions {
  int max_rows = 64;    // rows per step
  int max_streams = 8;  // at most KvCache::kMaxStreams
  int context = 0;      // KV cells; 0: min(model context, 4096)
  int threads = 2;      // including the calling thread
  // Work (multiply-adds) below which a stage runs on the calling thread
  // alone, since a fork-join would cost more than it saves; 0 splits
  // everything (tests use it to exercise the parallel paths on tiny models).
  int64_t min_parallel_work = int64_t{1} << 17;
  WeightFormat weights = WeightFormat::kAuto;  // the layer projections
  OutputFormat output = OutputFormat::kAuto;   // the output head
  KvType kv_type = KvType::kF16;               // how the KV cache stores keys and values
  // LoRA slots (AdapterPool): how many adapters can be loaded at once and
  // the largest rank any of them may have. 0 slots: no LoRA support.
  int adapter_slots = 0;
  int adapter_max_rank = 0;
};

// One token of a step.
//
// A row sees the committed cells of its stream before its position, plus its
// in-step ancestor chain (via parent) and itself. Precisely: committed cells
// with position < the position of the chain's root (the first ancestor with
// parent -1), so a chain restarting at an earlier position (a rewind) does
// not also see the old cells it replaces; without a rewind this is the same
// as "position < own position".
struct Row {
  int32_t token = 0;
  int32_t pos = 0;
  int16_t stream = 0;
  int16_t adapter = -1;  // a loaded slot of adapters(), or -1 for the base model
  // Index of an earlier row of this step (same stream, pos = its pos + 1)
  // that this row attends through, or -1 to attach to the committed cache.
  int32_t parent = -1;
  bool want_logits = false;
  // Tentative rows (DS2D candidates) are visible inside their step only and
  // are dropped at the start of the next one unless Engine::commit() keeps
  // them; other rows are committed to their stream by the step itself.
  bool tentative = false;
  // When set, the row's input vector (config.dim floats, e.g. a DS2D
  // forecast embedding) replaces the token's embedding and `token` is
  // ignored. It is read during step() only.
  const float* embedding = nullptr;
};

class Engine {
 public:
  // Packs the weights and allocates every buffer. The model must outlive the
  // engine (embedding rows are read from it). Throws Error for bad options
  // or unreadable tensors.
  explicit Engine(const Model& model, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs one step and returns the logits of the rows with want_logits, in row
  // order, n_vocab floats each (valid until the next step). Throws Error,
  // naming the row and field, for rows breaking the rules of Row or when
  // the KV cache has no room; the engine is unchanged then.
  std::span<const float> step(std::span<const Row> rows);

  // Keeps tentative rows of the last step (indices into its rows): their
  // cells join their streams. A row's parent must be non-tentative, already
  // kept, or listed before it. Non-tentative rows are accepted and ignored.
  void commit(std::span<const int> row_indices);

  const ModelConfig& config() const { return config_; }
  const EngineOptions& options() const { return options_; }  // context resolved
  std::string_view kernel_name() const { return kernels_->name; }
  const EngineWeights& weights() const { return weights_; }
  size_t weight_bytes() const { return weights_.bytes(); }
  size_t kv_bytes() const { return kv_.bytes_reserved(); }
  KvCache& kv_cache() { return kv_; }
  // Loading, unloading and rescaling adapters between steps is cheap and
  // never touches the base weights; a row picks one by its slot.
  AdapterPool& adapters() { return adapters_; }
  const AdapterPool& adapters() const { return adapters_; }
  const KvCache& kv_cache() const { return kv_; }

 private:
  // One matrix product of a step: y = w x for the step's rows.
  struct Matmul {
    const PackedWeight* w;
    const float* x;                  // [rows][w->cols]
    const QuantizedActivations* xq;  // used when w is quantized
    float* y;                        // [rows][w->rows]
    LoraTarget target = LoraTarget::kQ;  // which adapter pair applies (layer matmuls)
  };
  // Rows of the step sharing an adapter slot: lora_rows_[begin, begin + n).
  struct LoraGroup {
    int slot, begin, n;
  };

  void validate(std::span<const Row> rows) const;
  void begin_step(std::span<const Row> rows);
  void group_rows_by_adapter(std::span<const Row> rows);
  void embed(std::span<const Row> rows);
  void attention_block(int layer);
  void rotate_and_store(int layer);
  void attend_rows(int layer);
  // Floats of scores_ per thread: one row's scores for the query heads of a
  // KV head, plus attend_f16's scratch.
  size_t scores_per_thread() const {
    return static_cast<size_t>(config_.n_heads / config_.n_kv_heads) * options_.context + config_.head_dim;
  }
  void ffn_block(int layer);
  void finish_step(std::span<const Row> rows);
  std::span<const float> output_head(std::span<const Row> rows);

  // y = w x for every job; with layer >= 0, also y += the LoRA delta of
  // each row's adapter for that layer and the job's target.
  void run_matmuls(std::initializer_list<Matmul> jobs, int n, int layer = -1);
  void lora_shrink(std::initializer_list<Matmul> jobs, int layer, int threads);
  void lora_expand(const Matmul& job, int job_index, int layer, int64_t r0, int64_t r1);
  void quantize(const float* x, int width, int n, const QuantizedActivations* out);
  void rmsnorm_rows(float* out, const float* x, const float* weight, int n);
  void add_rows(float* x, const float* delta, int width, int n);
  // fn(i) for rows i < n, split across threads when n * width is big enough.
  template <typename F>
  void for_rows(int n, int width, F&& fn);

  ModelConfig config_;
  EngineOptions options_;
  const kernels::KernelTable* kernels_;
  ThreadPool pool_;
  EngineWeights weights_;
  KvCache kv_;
  AdapterPool adapters_;
  ref::RopeParams rope_;

  // Activations, [max_rows][width] each.
  AlignedBuffer<float> x_, xn_, q_, k_, v_, attn_, proj_, gate_, up_;
  AlignedBuffer<float> logits_;  // [max_rows][n_vocab]
  // Quantized activations: one arena, row views per input width.
  AlignedBuffer<int8_t> xq_q_;
  AlignedBuffer<float> xq_scale_, xq_sum_;
  std::vector<QuantizedActivations> xq_dim_, xq_qdim_, xq_ffn_;
  AlignedBuffer<float> scores_;               // [threads][context]
  AlignedBuffer<float> rope_cos_, rope_sin_;  // [max_rows][rope_dim / 2]

  // The current (or last) step's rows and where they live in the cache.
  int n_rows_ = 0;
  std::vector<Row> rows_;
  std::vector<int32_t> cells_;      // [row] its KV cell
  std::vector<int32_t> root_pos_;   // [row] position of its chain's root
  std::vector<RowCells> visible_;   // [row]
  std::vector<int32_t> chain_buf_;  // the rows' chains, back to back
  // This step's rows grouped by adapter slot, and per job of a product the
  // shrunk activations s * A x of each such row ([job][lora row][max rank]).
  std::vector<int32_t> lora_rows_;
  std::vector<LoraGroup> lora_groups_;
  int n_lora_groups_ = 0;
  AlignedBuffer<float> lora_t_;
};

}  // namespace chorus
