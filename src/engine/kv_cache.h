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
// K and V are stored f32 as [layer][cell][kv_dim]: attention for one layer
// then reads one contiguous array, cells never move (commit and fork only
// touch indices), and the values are exactly what the f32 reference caches,
// so engine and reference agree to rounding. f16 storage would halve the
// bytes and is the next step once kernels read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "util/aligned_buffer.h"

namespace chorus {

class KvCache {
 public:
  static constexpr int kMaxStreams = 64;  // bits of a cell's stream mask

  enum class CellState : uint8_t { kFree, kPending, kCommitted };

  // Allocates all n_cells cells up front. Throws Error for sizes out of range.
  KvCache(int n_layers, int kv_dim, int n_cells, int n_streams);

  int n_layers() const { return n_layers_; }
  int kv_dim() const { return kv_dim_; }
  int n_cells() const { return n_cells_; }
  int n_streams() const { return n_streams_; }

  float* key(int layer, int32_t cell) { return keys_.data() + offset(layer, cell); }
  float* value(int layer, int32_t cell) { return values_.data() + offset(layer, cell); }
  const float* key(int layer, int32_t cell) const { return keys_.data() + offset(layer, cell); }
  const float* value(int layer, int32_t cell) const { return values_.data() + offset(layer, cell); }

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
    return 2 * static_cast<size_t>(n_layers_) * kv_dim_ * sizeof(float);
  }
  size_t bytes_used() const { return n_cells_used() * bytes_per_cell(); }
  size_t bytes_reserved() const { return keys_.bytes() + values_.bytes(); }

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
  void check_stream(int stream, const char* what) const;
  void release(int32_t cell, int stream);  // clears the bit, frees an orphan
  void free_cell(int32_t cell);

  int n_layers_, kv_dim_, n_cells_, n_streams_;
  AlignedBuffer<float> keys_, values_;       // [layer][cell][kv_dim]
  std::vector<int32_t> pos_;                 // [cell]
  std::vector<uint64_t> streams_;            // [cell] bit s = stream s
  std::vector<CellState> state_;             // [cell]
  std::vector<int32_t> free_;                // stack of free cells
  std::vector<int32_t> pending_;             // cells allocated since drop_pending
  int n_pending_ = 0;                        // of pending_, those still pending
  std::vector<std::vector<int32_t>> lists_;  // [stream] committed cells by position
};

}  // namespace chorus
