// A one-line progress bar on stderr for long jobs (synth, quantize,
// perplexity); silent when stderr is not a terminal except for the end line.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

#include "util/resources.h"

namespace chorus::tools {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label) : label_(std::move(label)), start_(now_seconds()) {}

  void update(size_t done, size_t total) {
    if (!tty_ || total == 0) return;
    const double now = now_seconds();
    if (done < total && now - last_ < 0.1) return;
    last_ = now;
    const int width = 30;
    const int filled = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %.1fs", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total, now - start_);
    std::fflush(stderr);
  }

  void finish() {
    if (tty_) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "%s: done in %.1fs\n", label_.c_str(), now_seconds() - start_);
  }

 private:
  std::string label_;
  double start_;
  double last_ = 0;
  bool tty_ = isatty(2) != 0;
};

}  // namespace chorus::tools
