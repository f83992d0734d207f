// A read-bandwidth probe: how fast `threads` threads can stream a buffer
// too big for the caches, so `chorus bench` can state decode speed as a
// share of what the machine's memory allows (decode reads every weight once
// per token, so bytes per token x tokens/s cannot exceed it).
#pragma once

#include <cstddef>

namespace chorus::tools {

// Bytes per second reading `bytes` (split evenly over `threads` threads),
// the best of `repetitions` passes after one warm-up pass.
double read_bandwidth(size_t bytes, int threads, int repetitions = 5);

}  // namespace chorus::tools
