// Code point helpers for the tokenizers: UTF-8 decoding as lenient as
// llama.cpp's (so both split text the same way), Unicode categories from ICU,
// GPT-2's byte <-> printable character mapping, and UTF-8 repair for output.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::unicode {

inline constexpr uint32_t kReplacement = 0xFFFD;

// Length of the sequence a UTF-8 lead byte announces, judged by its top four
// bits only (continuation and invalid bytes count as 1). llama.cpp cuts text
// into symbols this way, valid or not.
inline size_t sequence_length(char lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(lead) >> 4];
}

// Decodes the code point at `*pos` and advances past it. A malformed sequence
// yields U+FFFD and advances one byte. Overlong forms and surrogates are
// accepted, as llama.cpp does.
uint32_t decode_one(std::string_view text, size_t* pos);
std::vector<uint32_t> decode(std::string_view text);
void append_utf8(uint32_t cpt, std::string* out);

// General category, coarsened to the classes the pre-tokenizer regexes use.
enum class Category : uint8_t {
  kNone,       // no code point (a position outside the text)
  kUndefined,  // beyond U+10FFFF
  kNumber,
  kLetter,
  kSeparator,
  kMark,
  kPunctuation,
  kSymbol,
  kControl,  // Cc, Cf, Co, Cs and unassigned code points
};

struct Flags {
  Category category = Category::kNone;
  bool whitespace = false;  // Unicode White_Space, what \s means

  bool valid() const { return category != Category::kNone; }
  bool letter() const { return category == Category::kLetter; }
  bool number() const { return category == Category::kNumber; }
  bool punctuation() const { return category == Category::kPunctuation; }
};

Flags flags(uint32_t cpt);

// GPT-2 byte-level BPE shows every byte as a printable character: printable
// Latin-1 bytes as themselves, the others as U+0100 onwards.
uint32_t byte_to_cpt(uint8_t byte);
// The byte a mapped character stands for, or -1 if it is not one of the 256.
int cpt_to_byte(uint32_t cpt);

// Appends the valid UTF-8 in `bytes` to `out`, each invalid subsequence
// replaced by one U+FFFD. With `hold_incomplete`, a sequence cut off by the
// end of `bytes` is left unconsumed. Returns the number of bytes consumed.
size_t append_valid_utf8(std::string_view bytes, bool hold_incomplete, std::string* out);

}  // namespace chorus::unicode
