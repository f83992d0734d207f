// Prompt-lookup continuations; see ds2d_ngram.h.
#include "decode/ds2d_ngram.h"

#include <algorithm>

namespace chorus {

int ngram_continuation(std::span<const int32_t> history, int min_n, int max_n, int max_len,
                       std::vector<int32_t>* out) {
  out->clear();
  const int size = static_cast<int>(history.size());
  if (max_len <= 0 || size < 2 || max_n < 1) return 0;
  // One pass, latest first (recent text predicts best): every earlier
  // token equal to the last one ends a candidate match, measured backwards
  // up to max_n. The latest of the longest wins. A match must leave at
  // least one token after it; its continuation may run into the suffix.
  const int32_t last = history[size - 1];
  int best_len = 0, best_end = -1;
  for (int end = size - 2; end >= 0; --end) {
    if (history[end] != last) continue;
    int len = 1;
    while (len < max_n && end - len >= 0 && history[end - len] == history[size - 1 - len]) ++len;
    if (len > best_len) {
      best_len = len;
      best_end = end;
      if (len == max_n) break;
    }
  }
  if (best_len < std::max(min_n, 1)) return 0;
  const int from = best_end + 1;
  const int take = std::min(max_len, size - from);
  out->assign(history.begin() + from, history.begin() + from + take);
  return best_len;
}

}  // namespace chorus
