// Hash map from token text to id that can be probed with a string_view, so
// the merge loops look up substrings of the input without copying them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace chorus {

struct TextHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using TokenIndex = std::unordered_map<std::string, int32_t, TextHash, std::equal_to<>>;

// Id of `text`, or -1.
inline int32_t find_token(const TokenIndex& index, std::string_view text) {
  const auto it = index.find(text);
  return it == index.end() ? -1 : it->second;
}

}  // namespace chorus
