// Acceptance trace files; see ds2d_trace.h.
#include "decode/ds2d_trace.h"

#include <algorithm>
#include <exception>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace chorus {
namespace {

constexpr const char* kMagic = "chorus-ds2d-trace 1";
constexpr int kMaxLength = 1 << 12;  // far beyond any tree depth

}  // namespace

double AcceptanceTrace::tau() const {
  if (accepted.empty()) return 0;
  double sum = 0;
  for (int16_t n : accepted) sum += n + 1;
  return sum / static_cast<double>(accepted.size());
}

AcceptanceTrace read_trace(const std::string& path) {
  std::ifstream in(path);
  check(static_cast<bool>(in), path, "cannot read the trace file");
  std::string line;
  check(static_cast<bool>(std::getline(in, line)) && line == kMagic, path,
        "not a DS2D trace (the first line must be '{}')", kMagic);
  AcceptanceTrace t;
  for (int n = 2; std::getline(in, line); ++n) {
    std::istringstream fields(line);
    std::string key;
    if (!(fields >> key)) continue;
    const std::string where = path + ":" + std::to_string(n);
    if (key == "source") {
      std::getline(fields >> std::ws, t.source);
    } else if (key == "forecasts" || key == "lora_rank") {
      int v = -1;
      check(static_cast<bool>(fields >> v) && v >= 0 && v <= 256, where, "{} must be 0..256", key);
      (key == "forecasts" ? t.forecasts : t.lora_rank) = v;
    } else if (key == "accepted") {
      std::string word;
      while (fields >> word) {
        size_t used = 0;
        int v = -1;
        try {
          v = std::stoi(word, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        check(used == word.size() && v >= 0 && v <= kMaxLength, where,
              "accepted length '{}' is not a number in 0..{}", word, kMaxLength);
        t.accepted.push_back(static_cast<int16_t>(v));
      }
    } else {
      throw Error(where, "unknown key '" + key + "'");
    }
  }
  check(!t.accepted.empty(), path, "holds no accepted lengths");
  return t;
}

void write_trace(const std::string& path, const AcceptanceTrace& t) {
  std::ofstream out(path);
  check(static_cast<bool>(out), path, "cannot write the trace file");
  out << kMagic << "\nsource " << t.source << "\nforecasts " << t.forecasts << "\nlora_rank "
      << t.lora_rank << "\n";
  for (size_t i = 0; i < t.accepted.size(); i += 32) {
    out << "accepted";
    for (size_t j = i; j < std::min(t.accepted.size(), i + 32); ++j) out << ' ' << t.accepted[j];
    out << '\n';
  }
  check(static_cast<bool>(out), path, "cannot write the trace file");
}

}  // namespace chorus
