// The plain decode loop; see decode_plain.h.
#include "decode/decode_plain.h"

#include "decode/accept_token.h"

#include <algorithm>
#include <vector>

namespace chorus {

void decode_plain(Engine& engine, std::span<StreamState> streams, const DecodeLimits& limits,
                  const OnStreamToken& on_token) {
  const size_t max_rows = static_cast<size_t>(engine.options().max_rows);
  const int n_vocab = engine.config().n_vocab;
  std::vector<Row> rows;
  std::vector<int> owner;  // [row] index into `streams`
  rows.reserve(std::min(max_rows, streams.size()));
  owner.reserve(rows.capacity());

  // A stream that has reported n_predict tokens is done; its last token is
  // never fed, since nothing would read its logits.
  auto reached_length = [&](StreamState& s) {
    if (!s.done && s.n_generated >= limits.n_predict) {
      s.done = true;
      s.stop_reason = StopReason::kLength;
    }
    return s.done;
  };

  for (;;) {
    size_t i = 0;
    bool any = false;
    while (i < streams.size()) {
      rows.clear();
      owner.clear();
      for (; i < streams.size() && rows.size() < max_rows; ++i) {
        StreamState& s = streams[i];
        if (reached_length(s)) continue;
        Row r;
        r.token = s.next;
        r.pos = s.pos;
        r.stream = static_cast<int16_t>(s.stream);
        r.adapter = static_cast<int16_t>(s.adapter);
        r.want_logits = true;
        rows.push_back(r);
        owner.push_back(static_cast<int>(i));
      }
      if (rows.empty()) break;
      any = true;
      const std::span<const float> logits = engine.step(rows);
      for (size_t j = 0; j < rows.size(); ++j) {
        StreamState& s = streams[owner[j]];
        ++s.pos;
        const std::span<const float> row = logits.subspan(j * n_vocab, n_vocab);
        const int32_t id = s.sampler->sample(row, s.history);
        accept_token(s, owner[j], id, row, limits, on_token);
      }
    }
    if (!any) return;
  }
}

}  // namespace chorus
