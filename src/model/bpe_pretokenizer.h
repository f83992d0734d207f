// Pre-tokenizers of byte-level BPE vocabularies: cut text into words (the
// units BPE merges stay inside) with the same hand-written matchers llama.cpp
// uses in place of the Hugging Face regexes, then show each word's bytes as
// GPT-2 characters.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus {

enum class PreTokenizer {
  // llama.cpp's fallback: punctuation runs, then the GPT-2 regex, then digit
  // runs, then groups of three ASCII digits.
  kDefault,
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
};

// Maps a tokenizer.ggml.pre name to the pre-tokenizer llama.cpp uses for it;
// nullopt for names chorus does not support.
std::optional<PreTokenizer> parse_pre_tokenizer(std::string_view name);

// Words of `text` in order, each already byte-encoded. Invalid UTF-8 in the
// text becomes U+FFFD first, as in llama.cpp.
std::vector<std::string> pretokenize(std::string_view text, PreTokenizer kind);

}  // namespace chorus
