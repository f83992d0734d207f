// The KV cell pool; see kv_cache.h.
#include "engine/kv_cache.h"

#include <algorithm>

#include "util/error.h"

namespace chorus {
namespace {
constexpr const char* kWhere = "KV cache";
}  // namespace

KvCache::KvCache(int n_layers, int kv_dim, int n_cells, int n_streams, KvType type)
    : n_layers_(n_layers), kv_dim_(kv_dim), n_cells_(n_cells), n_streams_(n_streams), type_(type) {
  check(n_layers > 0 && kv_dim > 0, kWhere, "needs layers and kv_dim > 0, got {} and {}", n_layers,
        kv_dim);
  check(n_cells > 0, kWhere, "needs at least one cell, got {}", n_cells);
  check(n_streams >= 1 && n_streams <= kMaxStreams, kWhere, "streams must be 1..{}, got {}",
        kMaxStreams, n_streams);
  const size_t floats = static_cast<size_t>(n_layers) * n_cells * kv_dim;
  if (type == KvType::kF16) {
    keys16_ = AlignedBuffer<uint16_t>(floats);
    values16_ = AlignedBuffer<uint16_t>(floats);
  } else {
    keys32_ = AlignedBuffer<float>(floats);
    values32_ = AlignedBuffer<float>(floats);
  }
  pos_.assign(n_cells, -1);
  streams_.assign(n_cells, 0);
  state_.assign(n_cells, CellState::kFree);
  free_.reserve(n_cells);
  pending_.reserve(n_cells);
  lists_.resize(n_streams);
  for (auto& list : lists_) list.reserve(n_cells);
  clear();
}

void KvCache::store(int layer, int32_t cell, const float* key, const float* value) {
  const size_t at = offset(layer, cell);
  if (type_ == KvType::kF16) {
    for (int i = 0; i < kv_dim_; ++i) {
      keys16_[at + i] = f32_to_f16(key[i]);
      values16_[at + i] = f32_to_f16(value[i]);
    }
  } else {
    std::copy(key, key + kv_dim_, keys32_.data() + at);
    std::copy(value, value + kv_dim_, values32_.data() + at);
  }
}

namespace {
void read_row(const AlignedBuffer<float>& f32, const AlignedBuffer<uint16_t>& f16, size_t at, int n, float* out) {
  if (f16.size() != 0) {
    for (int i = 0; i < n; ++i) out[i] = f16_to_f32(f16[at + i]);
  } else {
    std::copy(f32.data() + at, f32.data() + at + n, out);
  }
}
}  // namespace

void KvCache::read_key(int layer, int32_t cell, float* out) const {
  read_row(keys32_, keys16_, offset(layer, cell), kv_dim_, out);
}

void KvCache::read_value(int layer, int32_t cell, float* out) const {
  read_row(values32_, values16_, offset(layer, cell), kv_dim_, out);
}

std::span<const int32_t> KvCache::stream_cells(int stream) const {
  check_stream(stream, "stream");
  return lists_[stream];
}

std::span<const int32_t> KvCache::stream_cells_before(int stream, int32_t pos) const {
  const std::vector<int32_t>& list = lists_[stream];
  // Usually every committed cell qualifies (pos is the stream's next one).
  if (list.empty() || pos_[list.back()] < pos) return list;
  const auto it = std::partition_point(list.begin(), list.end(),
                                       [&](int32_t cell) { return pos_[cell] < pos; });
  return {list.data(), static_cast<size_t>(it - list.begin())};
}

void KvCache::fork_stream(int src, int dst) {
  check_stream(src, "source stream");
  check_stream(dst, "destination stream");
  if (src == dst) return;
  clear_stream(dst);
  const uint64_t bit = uint64_t{1} << dst;
  for (int32_t cell : lists_[src]) streams_[cell] |= bit;
  lists_[dst] = lists_[src];  // capacity is reserved: no allocation
}

void KvCache::clear_stream(int stream) {
  check_stream(stream, "stream");
  std::vector<int32_t>& list = lists_[stream];
  while (!list.empty()) {
    const int32_t cell = list.back();
    list.pop_back();
    release(cell, stream);
  }
}

void KvCache::truncate_stream(int stream, int32_t pos) {
  check_stream(stream, "stream");
  std::vector<int32_t>& list = lists_[stream];
  while (!list.empty() && pos_[list.back()] >= pos) {
    const int32_t cell = list.back();
    list.pop_back();
    release(cell, stream);
  }
}

void KvCache::clear() {
  for (auto& list : lists_) list.clear();
  std::fill(streams_.begin(), streams_.end(), 0);
  std::fill(state_.begin(), state_.end(), CellState::kFree);
  std::fill(pos_.begin(), pos_.end(), -1);
  pending_.clear();
  n_pending_ = 0;
  free_.clear();
  // Popped from the back: cells are handed out in increasing index order.
  for (int32_t c = n_cells_ - 1; c >= 0; --c) free_.push_back(c);
}

int32_t KvCache::allocate(int32_t pos) {
  check(!free_.empty(), kWhere, "full: all {} cells are in use", n_cells_);
  const int32_t cell = free_.back();
  free_.pop_back();
  pos_[cell] = pos;
  streams_[cell] = 0;
  state_[cell] = CellState::kPending;
  pending_.push_back(cell);
  ++n_pending_;
  return cell;
}

void KvCache::commit(int32_t cell, int stream) {
  check(cell >= 0 && cell < n_cells_ && state_[cell] != CellState::kFree, kWhere,
        "cannot commit cell {}: it is not in use", cell);
  check_stream(stream, "stream");
  const uint64_t bit = uint64_t{1} << stream;
  if (streams_[cell] & bit) return;
  std::vector<int32_t>& list = lists_[stream];
  while (!list.empty() && pos_[list.back()] >= pos_[cell]) {
    const int32_t old = list.back();
    list.pop_back();
    release(old, stream);
  }
  if (state_[cell] == CellState::kPending) --n_pending_;
  state_[cell] = CellState::kCommitted;
  streams_[cell] |= bit;
  list.push_back(cell);
}

void KvCache::drop_pending() {
  for (int32_t cell : pending_) {
    if (state_[cell] == CellState::kPending) free_cell(cell);
  }
  pending_.clear();
  n_pending_ = 0;
}

void KvCache::check_stream(int stream, const char* what) const {
  check(stream >= 0 && stream < n_streams_, kWhere, "{} {} is out of range [0, {})", what, stream,
        n_streams_);
}

void KvCache::release(int32_t cell, int stream) {
  streams_[cell] &= ~(uint64_t{1} << stream);
  if (streams_[cell] == 0) free_cell(cell);
}

void KvCache::free_cell(int32_t cell) {
  state_[cell] = CellState::kFree;
  streams_[cell] = 0;
  pos_[cell] = -1;
  free_.push_back(cell);
}

}  // namespace chorus
