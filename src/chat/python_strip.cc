// Python's str.strip() on UTF-8 text: the `trim` filter and `.strip()` calls
// of chat templates remove Unicode whitespace, not only ASCII spaces, so a
// message ending in a no-break space renders without it.
#include <cstdint>
#include <optional>

#include "chat/chat_template.h"

namespace chorus::chat {
namespace {

// Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
bool is_python_space(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// The code point starting at text[i] and its length in bytes; nullopt for a
// byte that does not start a valid UTF-8 sequence (it is not a space).
std::optional<std::pair<uint32_t, size_t>> decode_at(std::string_view text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = b(i);
  if (lead < 0x80) return std::pair<uint32_t, size_t>{lead, 1};
  size_t n = 0;
  uint32_t c = 0;
  if ((lead & 0xE0) == 0xC0) {
    n = 2, c = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3, c = lead & 0x0F;
  } else {
    return std::nullopt;  // 4-byte characters hold no whitespace
  }
  if (i + n > text.size()) return std::nullopt;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return std::nullopt;
    c = (c << 6) | (b(i + k) & 0x3F);
  }
  if (c < (n == 2 ? 0x80u : 0x800u)) return std::nullopt;  // overlong: not valid UTF-8
  return std::pair<uint32_t, size_t>{c, n};
}

// The start of the UTF-8 sequence ending at text[end - 1], if it is one of
// 1..3 bytes.
std::optional<std::pair<uint32_t, size_t>> decode_before(std::string_view text, size_t end) {
  for (size_t n = 1; n <= 3 && n <= end; ++n) {
    const auto d = decode_at(text, end - n);
    if (d && d->second == n) return d;
  }
  return std::nullopt;
}

}  // namespace

std::string python_strip(std::string_view text) {
  size_t begin = 0, end = text.size();
  while (begin < end) {
    const auto d = decode_at(text.substr(0, end), begin);
    if (!d || !is_python_space(d->first)) break;
    begin += d->second;
  }
  while (end > begin) {
    const auto d = decode_before(text.substr(begin, end - begin), end - begin);
    if (!d || !is_python_space(d->first)) break;
    end -= d->second;
  }
  return std::string(text.substr(begin, end - begin));
}

}  // namespace chorus::chat
