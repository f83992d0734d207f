// What a row's attention sees. The step builds each row's cell list once
// (RowCells) and reuses it for every layer; the mask of DESIGN.md (shared
// prefix, streams, token trees) is entirely in which cells are listed. The
// arithmetic is the kernels' `attend` (kernels.h), one call per row and KV
// head.
#pragma once

#include <cstdint>

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

}  // namespace chorus
