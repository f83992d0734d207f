// SentencePiece-style encoding of one stretch of text, as llama.cpp's
// llm_tokenizer_spm does it: start from UTF-8 characters and keep merging
// the adjacent pair whose concatenation is the best-scoring token.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "model/token_index.h"

namespace chorus {

struct SpmModel {
  const TokenIndex* index = nullptr;
  std::span<const float> scores;         // by id; empty means all zero
  std::array<int32_t, 256> byte_tokens;  // <0xXX> fallback per byte, -1 if absent
  int32_t unk = -1;                      // used when a byte has no token
};

// `text` must already have its spaces replaced by U+2581. Appends to `out`.
void spm_encode(const SpmModel& model, std::string_view text, std::vector<int32_t>* out);

}  // namespace chorus
