// Cuts text at occurrences of special token texts (llama.cpp's
// tokenizer_st_partition), so "<s>" or "<|eot_id|>" in a prompt becomes that
// token instead of being spelled out by the tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

struct Fragment {
  int32_t token = -1;         // >= 0: this special token; -1: plain text
  size_t begin = 0, end = 0;  // byte range of the text
};

struct SpecialToken {
  int32_t id;
  std::string_view text;
};

// `specials` are tried in order (longest first is what llama.cpp does); each
// one splits every plain fragment left by the earlier ones at all its
// occurrences, leftmost first. Empty text gives no fragments.
std::vector<Fragment> split_special(std::string_view text, const std::vector<SpecialToken>& specials);

}  // namespace chorus
