// Byte-level BPE encoding of one stretch of text, as llama.cpp's
// llm_tokenizer_bpe does it: pre-tokenize into words, then inside each word
// keep merging the adjacent pair with the lowest merge rank.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/bpe_pretokenizer.h"
#include "model/token_index.h"

namespace chorus {

class BpeModel {
 public:
  // `merges` are "left right" strings, highest priority first.
  BpeModel(const TokenIndex* index, const std::vector<std::string>& merges, PreTokenizer pre,
           bool ignore_merges);

  // Appends the ids of `text` to `out`.
  void encode(std::string_view text, std::vector<int32_t>* out) const;

 private:
  void encode_word(const std::string& word, std::vector<int32_t>* out) const;
  // Rank of merging `left` with `right`, or -1. `key` is scratch space.
  int32_t rank(std::string_view left, std::string_view right, std::string* key) const;

  const TokenIndex* index_;
  TokenIndex ranks_;  // "left right" -> rank
  PreTokenizer pre_;
  bool ignore_merges_;  // a word that is a token is taken whole (LLaMA 3)
};

}  // namespace chorus
