// The engine's KV cache: a fixed pool of cells, each holding the keys and
// values of one token position for every layer, shared by up to 64 streams.
//
// A cell carries its position and a bit mask of the streams it belongs to,
// so a prompt prefilled once is physically shared by every stream forked
// from it (fork_stream sets bits, it copies nothing). Each stream keeps its
// committed cells in position order, maintained incrementally, so the cells
// a row may attend to are a prefix of that list.
//
// Cells move through three states: free; pending (written by the current
// step, visible only inside it; tentative DS2D rows stay here until the
// decoder accepts them); committed (in at least one stream's list).
//
// K and V are stored as [layer][cell][kv_dim] in the cache's KvType (f16 by
// default, or f32): attention for one layer then reads one contiguous array,
// and cells never move (commit and fork only touch indices). An f16 cache
// rounds a value once, when its cell is written (store()); the kernels widen
// it exactly at load, so the step computes what it would over an f32 cache
// holding the rounded values, and the reference (which rounds its cache the
// same way) agrees to rounding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/kv_type.h"
#include "util/aligned_buffer.h"

namespace chorus {

class KvCache {
 public:
  static constexpr int kMaxStreams = 64;  // bits of a cell's stream mask

  enum class CellState : uint8_t { kFree, kPending, kCommitted };

  // Allocates all n_cells cells up front. Throws Error for sizes out of range.
  KvCache(int n_layers, int kv_dim, int n_cells, int n_streams, KvType type = KvType::kF16);

  int n_layers() const { return n_layers_; }
  int kv_dim() const { return kv_dim_; }
  int n_cells() const { return n_cells_; }
  int n_streams() const { return n_streams_; }
  KvType type() const { return type_; }

  // Writes a cell's key and value (kv_dim floats each), rounded to the
  // cache's type.
  void store(int layer, int32_t cell, const float* key, const float* value);
  // A cell's key or value as attention reads it (widened from f16), for
  // tests and tools.
  void read_key(int layer, int32_t cell, float* out) const;
  void read_value(int layer, int32_t cell, float* out) const;
  // Cell 0 of a layer, for attention (cell c at + c * kv_dim()): the f32
  // arrays of an f32 cache, the f16 ones (IEEE half bits) of an f16 cache;
  // the other pair is null.
  const float* keys_f32(int layer) const { return layer_base(keys32_, layer); }
  const float* values_f32(int layer) const { return layer_base(values32_, layer); }
  const uint16_t* keys_f16(int layer) const { return layer_base(keys16_, layer); }
  const uint16_t* values_f16(int layer) const { return layer_base(values16_, layer); }

  int32_t cell_pos(int32_t cell) const { return pos_[cell]; }
  uint64_t cell_streams(int32_t cell) const { return streams_[cell]; }
  CellState cell_state(int32_t cell) const { return state_[cell]; }

  // The committed cells of `stream`, in increasing position.
  std::span<const int32_t> stream_cells(int stream) const;
  // The leading part of stream_cells(stream) with position < pos.
  std::span<const int32_t> stream_cells_before(int stream, int32_t pos) const;
  // Number of committed positions of a stream (its next position when the
  // stream was filled from 0 without gaps).
  int stream_length(int stream) const { return static_cast<int>(lists_[stream].size()); }

  // dst's cells become src's committed cells (dst's old cells are released
  // first); the cells are shared, nothing is copied. src == dst is a no-op.
  void fork_stream(int src, int dst);
  // Removes the stream from all its cells; cells no stream uses become free.
  void clear_stream(int stream);
  // Removes the stream from its cells at positions >= pos (the rest stay):
  // how a stream forked from a longer cached prefix keeps only the part it
  // shares. Cells no stream uses become free.
  void truncate_stream(int stream, int32_t pos);
  // Frees every cell, pending ones included.
  void clear();

  int n_cells_used() const { return n_cells_ - static_cast<int>(free_.size()); }
  int n_cells_free() const { return static_cast<int>(free_.size()); }
  int n_cells_pending() const { return n_pending_; }
  size_t bytes_per_cell() const {
    return 2 * static_cast<size_t>(n_layers_) * kv_dim_ * kv_type_bytes(type_);
  }
  size_t bytes_used() const { return n_cells_used() * bytes_per_cell(); }
  size_t bytes_reserved() const {
    return keys32_.bytes() + values32_.bytes() + keys16_.bytes() + values16_.bytes();
  }

  // --- Used by the step. None of these allocate. ---

  // Takes a free cell for position pos, in state pending. Throws Error when
  // every cell is in use.
  int32_t allocate(int32_t pos);
  // Appends a pending (or another stream's committed) cell to `stream`.
  // Positions of a stream are unique: the stream's cells at positions >= the
  // cell's are released first, which is how a stream rewinds.
  void commit(int32_t cell, int stream);
  // Frees every cell still pending (uncommitted tentative rows).
  void drop_pending();

 private:
  size_t offset(int layer, int32_t cell) const {
    return (static_cast<size_t>(layer) * n_cells_ + cell) * kv_dim_;
  }
  template <typename T>
  const T* layer_base(const AlignedBuffer<T>& b, int layer) const {
    return b.size() == 0 ? nullptr : b.data() + offset(layer, 0);
  }
  void check_stream(int stream, const char* what) const;
  void release(int32_t cell, int stream);  // clears the bit, frees an orphan
  void free_cell(int32_t cell);

  int n_layers_, kv_dim_, n_cells_, n_streams_;
  KvType type_;
  // [layer][cell][kv_dim]: the f32 pair for an f32 cache, else the f16 pair.
  AlignedBuffer<float> keys32_, values32_;
  AlignedBuffer<uint16_t> keys16_, values16_;
  std::vector<int32_t> pos_;                 // [cell]
  std::vector<uint64_t> streams_;            // [cell] bit s = stream s
  std::vector<CellState> state_;             // [cell]
  std::vector<int32_t> free_;                // stack of free cells
  std::vector<int32_t> pending_;             // cells allocated since drop_pending
  int n_pending_ = 0;                        // of pending_, those still pending
  std::vector<std::vector<int32_t>> lists_;  // [stream] committed cells by position
};

}  // namespace chorus
