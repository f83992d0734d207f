// Process resource readings for reports: peak resident memory and a steady
// wall clock.
#pragma once

#include <chrono>
#include <cstddef>

namespace chorus {

// Peak resident set size of this process so far, in bytes.
size_t peak_rss_bytes();
// Current resident set size, in bytes (0 if unknown).
size_t current_rss_bytes();

inline double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace chorus
