// The KV cell pool on its own: stream lists, shared cells, rewinds, pending
// cells and accounting, without running a model.
#include "engine/kv_cache.h"

#include <gtest/gtest.h>

#include <vector>

#include "util/error.h"

namespace chorus {
namespace {

std::vector<int32_t> positions(const KvCache& kv, int stream) {
  std::vector<int32_t> out;
  for (int32_t cell : kv.stream_cells(stream)) out.push_back(kv.cell_pos(cell));
  return out;
}

// Commits cells for positions [from, to) to a stream.
void fill(KvCache& kv, int stream, int from, int to) {
  for (int p = from; p < to; ++p) kv.commit(kv.allocate(p), stream);
}

// A cell is written rounded to the cache's type and read back widened.
TEST(KvCache, StoreRoundsToTheCacheType) {
  const float key[4] = {1.0f, 0.1f, -3.14159f, 65504.0f};
  const float value[4] = {-0.0f, 1e-3f, 2.5f, 1.0f / 3.0f};
  for (const KvType type : {KvType::kF16, KvType::kF32}) {
    KvCache kv(2, 4, 8, 1, type);
    EXPECT_EQ(kv.type(), type);
    EXPECT_EQ(kv.bytes_per_cell(), 2u * 2 * 4 * kv_type_bytes(type));
    EXPECT_EQ(kv.bytes_reserved(), 8 * kv.bytes_per_cell());
    EXPECT_EQ(kv.keys_f16(1) != nullptr, type == KvType::kF16);
    EXPECT_EQ(kv.keys_f32(1) != nullptr, type == KvType::kF32);
    kv.store(1, 3, key, value);
    float k[4], v[4];
    kv.read_key(1, 3, k);
    kv.read_value(1, 3, v);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(k[i], kv_round(type, key[i])) << kv_type_name(type) << " key " << i;
      EXPECT_EQ(v[i], kv_round(type, value[i])) << kv_type_name(type) << " value " << i;
    }
  }
  EXPECT_NE(kv_round(KvType::kF16, 0.1f), 0.1f);
  EXPECT_EQ(kv_round(KvType::kF32, 0.1f), 0.1f);
}

TEST(KvCache, CommitKeepsPositionOrder) {
  KvCache kv(2, 4, 16, 4);
  fill(kv, 0, 0, 5);
  EXPECT_EQ(positions(kv, 0), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(kv.n_cells_used(), 5);
  EXPECT_EQ(kv.stream_length(0), 5);
  EXPECT_EQ(kv.bytes_per_cell(), 2u * 2 * 4 * sizeof(uint16_t));  // f16 by default
  EXPECT_EQ(kv.bytes_used(), 5 * kv.bytes_per_cell());
  EXPECT_EQ(kv.stream_cells_before(0, 3).size(), 3u);
  EXPECT_EQ(kv.stream_cells_before(0, 99).size(), 5u);
  EXPECT_EQ(kv.stream_cells_before(0, 0).size(), 0u);
}

TEST(KvCache, ForkSharesCellsAndClearFreesOnlyOrphans) {
  KvCache kv(1, 4, 16, 4);
  fill(kv, 0, 0, 4);
  kv.fork_stream(0, 1);
  kv.fork_stream(0, 2);
  EXPECT_EQ(kv.n_cells_used(), 4);  // shared, not copied
  for (int s = 1; s <= 2; ++s) {
    EXPECT_EQ(positions(kv, s), positions(kv, 0));
    fill(kv, s, 4, 6);
  }
  EXPECT_EQ(kv.n_cells_used(), 8);
  EXPECT_EQ(kv.cell_streams(kv.stream_cells(0)[0]), 0b111u);

  kv.clear_stream(0);
  EXPECT_EQ(kv.n_cells_used(), 8);  // the prefix is still used by 1 and 2
  kv.clear_stream(1);
  EXPECT_EQ(kv.n_cells_used(), 6);
  kv.clear_stream(2);
  EXPECT_EQ(kv.n_cells_used(), 0);

  fill(kv, 3, 0, 3);
  kv.fork_stream(3, 3);  // no-op
  EXPECT_EQ(kv.n_cells_used(), 3);
  kv.clear();
  EXPECT_EQ(kv.n_cells_used(), 0);
  EXPECT_TRUE(kv.stream_cells(3).empty());
}

TEST(KvCache, TruncateKeepsTheSharedPartOfAFork) {
  KvCache kv(1, 4, 16, 4);
  fill(kv, 0, 0, 6);
  kv.fork_stream(0, 1);
  kv.truncate_stream(1, 4);
  EXPECT_EQ(positions(kv, 1), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(positions(kv, 0), (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(kv.n_cells_used(), 6);  // stream 0 still holds positions 4 and 5
  fill(kv, 1, 4, 5);
  EXPECT_EQ(kv.n_cells_used(), 7);
  kv.clear_stream(0);
  EXPECT_EQ(kv.n_cells_used(), 5);  // 0-3 shared with stream 1, and its own 4
  kv.truncate_stream(1, 0);
  EXPECT_EQ(kv.n_cells_used(), 0);
  kv.truncate_stream(1, 0);  // nothing left: a no-op
  EXPECT_THROW(kv.truncate_stream(4, 0), Error);
}

TEST(KvCache, ForkOntoABusyStreamReleasesItsCells) {
  KvCache kv(1, 4, 16, 2);
  fill(kv, 0, 0, 3);
  fill(kv, 1, 0, 5);
  EXPECT_EQ(kv.n_cells_used(), 8);
  kv.fork_stream(0, 1);
  EXPECT_EQ(kv.n_cells_used(), 3);
  EXPECT_EQ(positions(kv, 1), (std::vector<int32_t>{0, 1, 2}));
}

TEST(KvCache, CommitAtAnEarlierPositionRewinds) {
  KvCache kv(1, 4, 16, 2);
  fill(kv, 0, 0, 6);
  kv.fork_stream(0, 1);
  kv.commit(kv.allocate(3), 0);
  EXPECT_EQ(positions(kv, 0), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(positions(kv, 1).size(), 6u);  // the fork keeps its cells
  EXPECT_EQ(kv.n_cells_used(), 7);
  kv.clear_stream(1);
  EXPECT_EQ(kv.n_cells_used(), 4);
}

TEST(KvCache, PendingCellsAreDroppedUnlessCommitted) {
  KvCache kv(1, 4, 8, 1);
  fill(kv, 0, 0, 2);
  const int32_t a = kv.allocate(2);
  const int32_t b = kv.allocate(2);
  EXPECT_EQ(kv.n_cells_pending(), 2);
  EXPECT_EQ(kv.cell_state(a), KvCache::CellState::kPending);
  kv.commit(b, 0);
  EXPECT_EQ(kv.n_cells_pending(), 1);
  kv.drop_pending();
  EXPECT_EQ(kv.cell_state(a), KvCache::CellState::kFree);
  EXPECT_EQ(kv.cell_state(b), KvCache::CellState::kCommitted);
  EXPECT_EQ(kv.n_cells_used(), 3);
}

TEST(KvCache, FullIsAnErrorAndTheCacheStaysUsable) {
  KvCache kv(1, 4, 3, 1);
  fill(kv, 0, 0, 3);
  EXPECT_THROW(kv.allocate(3), Error);
  kv.clear_stream(0);
  fill(kv, 0, 0, 3);
  EXPECT_EQ(kv.n_cells_used(), 3);
}

TEST(KvCache, BadArgumentsAreErrors) {
  EXPECT_THROW(KvCache(1, 4, 0, 1), Error);
  EXPECT_THROW(KvCache(1, 4, 8, 65), Error);
  KvCache kv(1, 4, 8, 2);
  EXPECT_THROW(kv.fork_stream(0, 2), Error);
  EXPECT_THROW(kv.clear_stream(-1), Error);
  EXPECT_THROW(kv.commit(5, 0), Error);  // a free cell
}

}  // namespace
}  // namespace chorus
