// Training-free DS2D draft branches: text often repeats itself (names,
// refrains, quoted phrases), so the tokens that followed the last earlier
// occurrence of the current suffix are a cheap guess at what comes next
// (prompt lookup decoding).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace chorus {

// Finds the most recent earlier occurrence in `history` of its last n
// tokens, for the longest n in [min_n, max_n] that has one, and writes up
// to max_len tokens that followed it into `out` (cleared first). Returns n,
// or 0 (and an empty `out`) when no suffix of those lengths repeats.
int ngram_continuation(std::span<const int32_t> history, int min_n, int max_n, int max_len,
                       std::vector<int32_t>* out);

}  // namespace chorus
