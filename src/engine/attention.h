// Attention of one query head of one row over the cells that row may see.
// The step builds each row's cell list once (RowCells) and reuses it for
// every layer; the mask of DESIGN.md (shared prefix, streams, token trees) is
// entirely in which cells are listed.
#pragma once

#include <cstdint>

#include "engine/kv_cache.h"
#include "kernels/kernels.h"

namespace chorus {

// The cells of one row, in position order: a prefix of its stream's
// committed cells, then its in-step ancestors (oldest first) and its own.
struct RowCells {
  const int32_t* committed = nullptr;
  int32_t n_committed = 0;
  const int32_t* chain = nullptr;
  int32_t n_chain = 0;

  int32_t size() const { return n_committed + n_chain; }
};

// out[0..head_dim) = softmax(q . K^T * scale) V over `cells` of `layer`,
// reading K and V at kv_offset within each cell (the query head's KV head).
// scores needs cells.size() floats.
void attend_head(const kernels::KernelTable& k, const KvCache& kv, int layer, const RowCells& cells,
                 int kv_offset, int head_dim, float scale, const float* q, float* out,
                 float* scores);

}  // namespace chorus
