// Reference data of the bundled stories260K model shared by the tests of
// several layers: paths, and the first 100 ids greedy decoding from BOS must
// produce (tests/data/stories260K_greedy_ids.txt, from an independent
// implementation; also quoted in models/README.md).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace chorus::test_data {

inline std::string source_path(const std::string& relative) {
  return std::string(CHORUS_SOURCE_DIR) + "/" + relative;
}

inline const std::vector<int32_t>& stories260k_greedy_ids() {
  static const std::vector<int32_t> ids = [] {
    std::vector<int32_t> v;
    std::ifstream in(source_path("tests/data/stories260K_greedy_ids.txt"));
    for (int32_t id; in >> id;) v.push_back(id);
    return v;
  }();
  return ids;
}

}  // namespace chorus::test_data
