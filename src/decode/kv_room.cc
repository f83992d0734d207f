// The KV room arithmetic; see kv_room.h.
#include "decode/kv_room.h"

#include <algorithm>
#include <set>

#include "decode/multi_stream.h"

namespace chorus {

KvDemand kv_demand(const MultiStreamRequest& request) {
  KvDemand d;
  d.prompt = static_cast<int64_t>(request.prompt.size());
  d.streams = static_cast<int64_t>(request.streams.size());
  std::set<int> adapters;
  for (const StreamSpec& s : request.streams) {
    adapters.insert(s.adapter);
    const int64_t n = static_cast<int64_t>(s.suffix.size());
    d.suffix_total += n;
    d.longest_suffix = std::max(d.longest_suffix, n);
  }
  d.prompt_copies = static_cast<int64_t>(adapters.size());
  return d;
}

int64_t kv_cells_needed(const KvDemand& d, int64_t n_predict) {
  return d.prompt * d.prompt_copies + d.suffix_total + d.streams * n_predict;
}

int64_t kv_positions_needed(const KvDemand& d, int64_t n_predict) {
  return d.prompt + d.longest_suffix + n_predict;
}

int64_t kv_max_new_tokens(const KvDemand& d, int64_t context, int64_t cells) {
  const int64_t by_pos = context - d.prompt - d.longest_suffix;
  const int64_t by_cells =
      (cells - d.prompt * d.prompt_copies - d.suffix_total) / std::max<int64_t>(1, d.streams);
  return std::max<int64_t>(0, std::min(by_pos, by_cells));
}

}  // namespace chorus
