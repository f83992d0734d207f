// Masked attention for one (row, head); see attention.h.
#include "engine/attention.h"

#include <algorithm>

namespace chorus {

void attend_head(const kernels::KernelTable& k, const KvCache& kv, int layer, const RowCells& cells,
                 int kv_offset, int head_dim, float scale, const float* q, float* out,
                 float* scores) {
  int32_t n = 0;
  for (int32_t j = 0; j < cells.n_committed; ++j) {
    scores[n++] = k.dot(q, kv.key(layer, cells.committed[j]) + kv_offset, head_dim) * scale;
  }
  for (int32_t j = 0; j < cells.n_chain; ++j) {
    scores[n++] = k.dot(q, kv.key(layer, cells.chain[j]) + kv_offset, head_dim) * scale;
  }
  k.softmax(scores, n);
  std::fill(out, out + head_dim, 0.0f);
  n = 0;
  for (int32_t j = 0; j < cells.n_committed; ++j) {
    k.axpy(scores[n++], kv.value(layer, cells.committed[j]) + kv_offset, out, head_dim);
  }
  for (int32_t j = 0; j < cells.n_chain; ++j) {
    k.axpy(scores[n++], kv.value(layer, cells.chain[j]) + kv_offset, out, head_dim);
  }
}

}  // namespace chorus
