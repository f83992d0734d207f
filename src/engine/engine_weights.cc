// Packing a model's projections into the engine's layouts, in parallel, and
// releasing the mapped file pages behind each packed tensor.
#include "engine/engine_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>

#include "gguf/quants.h"
#include "kernels/pack.h"
#include "util/error.h"

namespace chorus {
namespace {

using gguf::TensorType;

bool is_float_type(TensorType t) {
  return t == TensorType::kF32 || t == TensorType::kF16 || t == TensorType::kBF16;
}

// Types pack_int4 reads directly; anything else goes through f32 first.
bool pack_int4_reads(TensorType t) {
  return is_float_type(t) || t == TensorType::kQ8_0 || kernels::is_lossless_int4_source(t);
}

// kAuto: 4-bit sources stay 4-bit (a lossless repack), float sources stay
// f32 (exact, so small float models match the reference), Q8_0 stays 8-bit,
// and the remaining quant types (Q5_*, Q2_K, Q3_K, Q5_K, Q6_K) have no
// kernel of their own and are requantized to 4-bit. The output head decides
// every token's logits, so one that would need requantizing is held at
// 8 bits instead; a 4-bit one repacks losslessly like the layers (8 bits
// would only double its bytes for the same values). Matrices whose rows are
// not whole blocks of 32 can only use the f32 kernel.
PackedFormat choose_format(const WeightView& w, WeightFormat requested, bool is_output) {
  if (w.cols % kQuantBlock != 0) return PackedFormat::kF32;
  switch (requested) {
    case WeightFormat::kF32:
      return PackedFormat::kF32;
    case WeightFormat::kInt4:
      return PackedFormat::kInt4;
    case WeightFormat::kInt8:
      return PackedFormat::kInt8;
    case WeightFormat::kAuto:
      break;
  }
  if (is_float_type(w.type)) return PackedFormat::kF32;
  if (kernels::is_lossless_int4_source(w.type)) return PackedFormat::kInt4;
  if (is_output || w.type == TensorType::kQ8_0) return PackedFormat::kInt8;
  return PackedFormat::kInt4;
}

AlignedBuffer<float> dequantize_matrix(const WeightView& w) {
  AlignedBuffer<float> out(static_cast<size_t>(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r)
    gguf::dequantize_row(w.type, w.row(r), out.data() + r * w.cols, w.cols);
  return out;
}

void pack_into(const WeightView& w, PackedFormat format, PackedWeight& out) {
  out.format = format;
  out.rows = w.rows;
  out.cols = w.cols;
  switch (format) {
    case PackedFormat::kF32:
      out.f32 = dequantize_matrix(w);
      return;
    case PackedFormat::kInt8:
      out.int8 = kernels::pack_int8(w.type, w.data, w.rows, w.cols);
      return;
    case PackedFormat::kInt4:
      if (pack_int4_reads(w.type)) {
        out.int4 = kernels::pack_int4(w.type, w.data, w.rows, w.cols);
      } else {
        const AlignedBuffer<float> f = dequantize_matrix(w);
        out.int4 = kernels::pack_int4(TensorType::kF32, reinterpret_cast<const uint8_t*>(f.data()),
                                      w.rows, w.cols);
      }
      return;
  }
}

// Drops the pages of a read-only file mapping from the resident set once
// their contents live in packed form; touching them again re-reads the file,
// so this is only ever a memory saving. Rounded inward: pages shared with a
// neighbouring tensor that may still be needed stay.
void release_file_pages(const void* data, size_t bytes) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t p = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = (p + page - 1) / page * page;
  const uintptr_t end = (p + bytes) / page * page;
  if (begin < end) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

struct PackJob {
  const WeightView* src;
  PackedWeight* dst;
  PackedFormat format;
};

AlignedBuffer<float> norm_to_f32(const WeightView& w, const std::string& where) {
  check(w.data != nullptr, where, "tensor '{}' is missing", w.name);
  AlignedBuffer<float> out(static_cast<size_t>(w.rows * w.cols));
  gguf::dequantize_row(w.type, w.data, out.data(), w.rows * w.cols);
  return out;
}

}  // namespace

std::string_view weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::kAuto:
      return "auto";
    case WeightFormat::kInt4:
      return "int4";
    case WeightFormat::kInt8:
      return "int8";
    case WeightFormat::kF32:
      return "f32";
  }
  return "?";
}

std::string_view packed_format_name(PackedFormat format) {
  switch (format) {
    case PackedFormat::kF32:
      return "f32";
    case PackedFormat::kInt4:
      return "int4";
    case PackedFormat::kInt8:
      return "int8";
  }
  return "?";
}

size_t PackedWeight::bytes() const { return f32.bytes() + int4.bytes() + int8.bytes(); }

size_t EngineWeights::bytes() const {
  size_t total = output_norm.bytes() + output.bytes();
  for (const EngineLayerWeights& l : layers) {
    total += l.attn_norm.bytes() + l.ffn_norm.bytes() + l.wq.bytes() + l.wk.bytes() + l.wv.bytes() +
             l.wo.bytes() + l.w_gate.bytes() + l.w_up.bytes() + l.w_down.bytes();
  }
  return total;
}

EngineWeights pack_engine_weights(const Model& model, WeightFormat weights, OutputFormat output,
                                  ThreadPool& pool) {
  const ModelWeights& mw = model.weights;
  EngineWeights ew;
  ew.token_embedding = mw.token_embedding;
  check(gguf::type_traits(mw.token_embedding.type).supported, model.path,
        "tensor '{}': type {} cannot be read", mw.token_embedding.name,
        gguf::type_name(mw.token_embedding.type));
  ew.layers.resize(mw.layers.size());

  std::vector<PackJob> jobs;
  for (size_t l = 0; l < mw.layers.size(); ++l) {
    const LayerWeights& src = mw.layers[l];
    EngineLayerWeights& dst = ew.layers[l];
    dst.attn_norm = norm_to_f32(src.attn_norm, model.path);
    dst.ffn_norm = norm_to_f32(src.ffn_norm, model.path);
    const std::pair<const WeightView*, PackedWeight*> mats[] = {
        {&src.wq, &dst.wq},        {&src.wk, &dst.wk},         {&src.wv, &dst.wv},
        {&src.wo, &dst.wo},        {&src.w_gate, &dst.w_gate}, {&src.w_up, &dst.w_up},
        {&src.w_down, &dst.w_down}};
    for (const auto& [s, d] : mats) jobs.push_back({s, d, choose_format(*s, weights, false)});
  }
  ew.output_norm = norm_to_f32(mw.output_norm, model.path);
  jobs.push_back({&mw.output, &ew.output, choose_format(mw.output, output, true)});

  for (const PackJob& j : jobs) {
    check(gguf::type_traits(j.src->type).supported, model.path,
          "tensor '{}': type {} cannot be read", j.src->name, gguf::type_name(j.src->type));
  }
  // Largest first, handed out dynamically: the output head alone can be as
  // big as a layer, so a static split would leave threads idle.
  std::sort(jobs.begin(), jobs.end(), [](const PackJob& a, const PackJob& b) {
    return a.src->rows * a.src->cols > b.src->rows * b.src->cols;
  });

  // Only a GGUF model's views point into the read-only map; llama2.c weights
  // are heap buffers whose pages must never be discarded. A tied output head
  // is released too: embedding lookups fault back in just the rows they use.
  const bool mapped = model.format == "gguf";
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr error;
  pool.run_on_all([&](int) {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= jobs.size() || failed.load()) return;
      const PackJob& j = jobs[i];
      try {
        pack_into(*j.src, j.format, *j.dst);
        if (mapped) release_file_pages(j.src->data, j.src->row_bytes() * j.src->rows);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) {
          error = std::make_exception_ptr(
              Error(model.path + ": tensor '" + j.src->name + "'", e.what()));
        }
        failed.store(true);
        return;
      }
    }
  });
  if (error) std::rethrow_exception(error);
  return ew;
}

void matmul_rows(const kernels::KernelTable& k, const PackedWeight& w, const float* x, int64_t ldx,
                 const QuantizedActivations* xq, int n, float* y, int64_t ldy, int64_t r0,
                 int64_t r1) {
  switch (w.format) {
    case PackedFormat::kF32:
      k.matmul_f32(w.f32.data(), w.cols, x, ldx, n, y, ldy, r0, r1);
      return;
    case PackedFormat::kInt4:
      k.matmul_int4(w.int4, xq, n, y, ldy, r0, r1);
      return;
    case PackedFormat::kInt8:
      k.matmul_int8(w.int8, xq, n, y, ldy, r0, r1);
      return;
  }
}

}  // namespace chorus
