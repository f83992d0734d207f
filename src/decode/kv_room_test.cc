// The KV-room arithmetic: what a request of k streams needs of the cache.
#include "decode/kv_room.h"

#include <gtest/gtest.h>

#include "decode/multi_stream.h"

namespace chorus {
namespace {

MultiStreamRequest request(int prompt, std::vector<std::pair<int, int>> streams) {
  MultiStreamRequest r;
  r.prompt.assign(prompt, 1);
  for (auto [adapter, suffix] : streams) {
    StreamSpec s;
    s.adapter = adapter;
    s.suffix.assign(suffix, 2);
    r.streams.push_back(s);
  }
  return r;
}

TEST(KvRoom, ThePromptIsStoredOncePerAdapter) {
  // Adapters -1, 0, 0, 1: three copies of the prompt; suffixes 0, 3, 5, 0.
  const KvDemand d = kv_demand(request(10, {{-1, 0}, {0, 3}, {0, 5}, {1, 0}}));
  EXPECT_EQ(d.prompt, 10);
  EXPECT_EQ(d.prompt_copies, 3);
  EXPECT_EQ(d.streams, 4);
  EXPECT_EQ(d.suffix_total, 8);
  EXPECT_EQ(d.longest_suffix, 5);
  EXPECT_EQ(kv_cells_needed(d, 0), 38);
  EXPECT_EQ(kv_cells_needed(d, 7), 38 + 28);
  EXPECT_EQ(kv_positions_needed(d, 7), 22);
}

TEST(KvRoom, MaxNewTokensIsBoundByPositionsAndByCells) {
  const KvDemand one = kv_demand(request(10, {{-1, 0}}));
  EXPECT_EQ(kv_max_new_tokens(one, 100, 100), 90);  // positions and cells alike
  EXPECT_EQ(kv_max_new_tokens(one, 100, 50), 40);   // cells bind
  const KvDemand four = kv_demand(request(10, {{-1, 0}, {0, 3}, {0, 5}, {1, 0}}));
  // Positions: 100 - 10 - 5 = 85; cells: (100 - 38) / 4 = 15.
  EXPECT_EQ(kv_max_new_tokens(four, 100, 100), 15);
  EXPECT_EQ(kv_cells_needed(four, 15), 98);
  EXPECT_GT(kv_cells_needed(four, 16), 100);
  // Positions bind when the cells are plenty.
  EXPECT_EQ(kv_max_new_tokens(four, 100, 10000), 85);
  // Not even the prompts fit: 0, never negative.
  EXPECT_EQ(kv_max_new_tokens(four, 100, 20), 0);
  EXPECT_EQ(kv_max_new_tokens(one, 8, 100), 0);
}

}  // namespace
}  // namespace chorus
