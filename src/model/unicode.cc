// Code point helpers for the tokenizers (see unicode.h). Categories come from
// ICU so the tables follow the system's Unicode version.
#include "model/unicode.h"

#include <array>

#include <unicode/uchar.h>

namespace chorus::unicode {
namespace {

bool is_continuation(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }

struct ByteMap {
  std::array<uint32_t, 256> to_cpt{};
  std::array<int16_t, 512> to_byte{};  // every mapped character is below U+0200

  ByteMap() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cpt[b] = printable ? static_cast<uint32_t>(b) : next++;
      to_byte[to_cpt[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

uint32_t decode_one(std::string_view text, size_t* pos) {
  const size_t i = *pos;
  const auto b0 = static_cast<uint8_t>(text[i]);
  auto cont = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i + k]) & 0x3F); };
  size_t len = 0;
  uint32_t cpt = 0;
  if (b0 < 0x80) {
    len = 1;
    cpt = b0;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    cpt = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    cpt = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    cpt = b0 & 0x07;
  }
  bool ok = len > 0 && i + len <= text.size();
  for (size_t k = 1; ok && k < len; ++k) {
    ok = is_continuation(text[i + k]);
    cpt = (cpt << 6) | cont(k);
  }
  // Beyond U+10FFFF (leads F5..F7) llama.cpp cannot re-encode the result
  // either; treating the lead as invalid keeps us from emitting bad UTF-8.
  if (!ok || cpt > 0x10FFFF) {
    *pos = i + 1;
    return kReplacement;
  }
  *pos = i + len;
  return cpt;
}

std::vector<uint32_t> decode(std::string_view text) {
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) cpts.push_back(decode_one(text, &pos));
  return cpts;
}

void append_utf8(uint32_t cpt, std::string* out) {
  if (cpt > 0x10FFFF) cpt = kReplacement;
  if (cpt < 0x80) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

Flags flags(uint32_t cpt) {
  if (cpt > 0x10FFFF) return {Category::kUndefined, false};
  const auto c = static_cast<UChar32>(cpt);
  Flags f;
  f.whitespace = u_isUWhiteSpace(c);
  switch (static_cast<UCharCategory>(u_charType(c))) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      f.category = Category::kLetter;
      break;
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
      f.category = Category::kMark;
      break;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      f.category = Category::kNumber;
      break;
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      f.category = Category::kSeparator;
      break;
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
    case U_UNASSIGNED:  // llama.cpp's tables come from \p{C}, which includes Cn
      f.category = Category::kControl;
      break;
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      f.category = Category::kPunctuation;
      break;
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:
      f.category = Category::kSymbol;
      break;
    default:
      f.category = Category::kUndefined;
      break;
  }
  return f;
}

uint32_t byte_to_cpt(uint8_t byte) { return byte_map().to_cpt[byte]; }

int cpt_to_byte(uint32_t cpt) { return cpt < byte_map().to_byte.size() ? byte_map().to_byte[cpt] : -1; }

size_t append_valid_utf8(std::string_view bytes, bool hold_incomplete, std::string* out) {
  static constexpr std::string_view kFffd = "\xEF\xBF\xBD";
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    if (b < 0x80) {
      out->push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // Continuation count and the allowed range of the first continuation
    // byte, which rules out overlong forms, surrogates and > U+10FFFF.
    size_t need = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      out->append(kFffd);
      ++i;
      continue;
    }
    size_t k = 1;
    bool bad = false;
    for (; k <= need && i + k < n; ++k) {
      const auto c = static_cast<uint8_t>(bytes[i + k]);
      const bool in_range = k == 1 ? (c >= lo && c <= hi) : (c & 0xC0) == 0x80;
      if (!in_range) {
        bad = true;
        break;
      }
    }
    if (!bad && k > need) {
      out->append(bytes.substr(i, need + 1));
      i += need + 1;
      continue;
    }
    if (!bad && hold_incomplete) return i;  // cut off by the end: wait for more
    out->append(kFffd);
    i += k;  // the lead and the continuation bytes that were still valid
  }
  return n;
}

}  // namespace chorus::unicode
