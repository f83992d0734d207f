// Pre-tokenizers of byte-level BPE vocabularies (see bpe_pretokenizer.h).
//
// Each pass refines a list of spans over the code points: a matcher never
// looks across the span it is given, just as llama.cpp runs each regex on the
// pieces the previous one left. A position outside the span reads as "no code
// point" (flags.valid() false), which is what the regex lookaheads see at the
// end of the input.
#include "model/bpe_pretokenizer.h"

#include <cstdint>
#include <string_view>

#include "model/unicode.h"

namespace chorus {
namespace {

using unicode::Flags;

constexpr uint32_t kOutside = 0xFFFFFFFF;

struct Span {
  size_t begin, end;
};

// The code points of the text with their flags, looked up once.
struct Text {
  std::vector<uint32_t> cpts;
  std::vector<Flags> flags;
};

uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; }

bool is_cr_or_lf(uint32_t c) { return c == '\r' || c == '\n'; }

// Cursor over one span; emit() closes the word that ends at `end`.
class SpanMatcher {
 public:
  SpanMatcher(const Text& text, Span span, std::vector<Span>* out)
      : text_(text), span_(span), out_(out), word_begin_(span.begin) {}

  uint32_t cpt(size_t pos) const { return in_span(pos) ? text_.cpts[pos] : kOutside; }
  Flags flags(size_t pos) const { return in_span(pos) ? text_.flags[pos] : Flags{}; }
  size_t end() const { return span_.end; }

  void emit(size_t end) {
    if (end > word_begin_) out_->push_back({word_begin_, end});
    word_begin_ = end;
  }

  // The contractions 's 't 're 've 'm 'll 'd at pos; returns their length or 0.
  size_t contraction(size_t pos, bool ignore_case) const {
    if (cpt(pos) != '\'' || pos + 1 >= span_.end) return 0;
    auto at = [&](size_t p) { return ignore_case ? ascii_lower(cpt(p)) : cpt(p); };
    const uint32_t c1 = at(pos + 1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    if (pos + 2 >= span_.end) return 0;
    const uint32_t c2 = at(pos + 2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
  }

  // Trailing whitespace: \s+(?!\S) leaves the last blank to the next word
  // when more text follows; otherwise \s+ takes it all. Returns the new pos.
  size_t whitespace_run(size_t pos, size_t n) const {
    if (n > 1 && cpt(pos + n) != kOutside) return pos + n - 1;
    return pos + n;
  }

 private:
  bool in_span(size_t pos) const { return pos >= span_.begin && pos < span_.end; }

  const Text& text_;
  Span span_;
  std::vector<Span>* out_;
  size_t word_begin_;
};

bool is_symbolish(const Flags& f) { return !(f.whitespace || f.letter() || f.number()) && f.valid(); }

void split_llama3(const Text& text, Span span, std::vector<Span>* out) {
  SpanMatcher m(text, span, out);
  size_t pos = span.begin;
  while (pos < span.end) {
    const uint32_t c = m.cpt(pos);
    const Flags f = m.flags(pos);

    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (const size_t n = m.contraction(pos, /*ignore_case=*/true)) {
      pos += n;
      m.emit(pos);
      continue;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(is_cr_or_lf(c) || f.number()) && (f.letter() || m.flags(pos + 1).letter())) {
      ++pos;
      while (m.flags(pos).letter()) ++pos;
      m.emit(pos);
      continue;
    }
    // \p{N}{1,3}
    if (f.number()) {
      size_t group = pos;
      while (m.flags(pos).number()) {
        if (++pos - group >= 3) {
          m.emit(pos);
          group = pos;
        }
      }
      m.emit(pos);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
    Flags f2 = c == ' ' ? m.flags(pos + 1) : f;
    if (!(f2.whitespace || f2.letter() || f2.number()) && f.valid()) {
      pos += c == ' ';
      while (is_symbolish(f2)) f2 = m.flags(++pos);
      while (is_cr_or_lf(m.cpt(pos))) ++pos;
      m.emit(pos);
      continue;
    }
    // \s*[\r\n]+ takes blanks up to the last line break of the run.
    size_t n_blank = 0;
    size_t after_last_break = 0;
    while (m.flags(pos + n_blank).whitespace) {
      if (is_cr_or_lf(m.cpt(pos + n_blank))) after_last_break = pos + n_blank + 1;
      ++n_blank;
    }
    if (after_last_break > 0) {
      pos = after_last_break;
      m.emit(pos);
      continue;
    }
    if (n_blank > 0) {
      pos = m.whitespace_run(pos, n_blank);
      m.emit(pos);
      continue;
    }
    m.emit(++pos);  // nothing matched: the code point stands alone
  }
}

void split_gpt2(const Text& text, Span span, std::vector<Span>* out) {
  SpanMatcher m(text, span, out);
  size_t pos = span.begin;
  while (pos < span.end) {
    const uint32_t c = m.cpt(pos);

    if (const size_t n = m.contraction(pos, /*ignore_case=*/false)) {
      pos += n;
      m.emit(pos);
      continue;
    }
    // ' ?\p{L}+', ' ?\p{N}+' and ' ?[^\s\p{L}\p{N}]+' share the optional space.
    Flags f2 = c == ' ' ? m.flags(pos + 1) : m.flags(pos);
    bool (*same_class)(const Flags&) = nullptr;
    if (f2.letter()) {
      same_class = [](const Flags& f) { return f.letter(); };
    } else if (f2.number()) {
      same_class = [](const Flags& f) { return f.number(); };
    } else if (is_symbolish(f2)) {
      same_class = is_symbolish;
    }
    if (same_class) {
      pos += c == ' ';
      while (same_class(f2)) f2 = m.flags(++pos);
      m.emit(pos);
      continue;
    }
    size_t n_blank = 0;
    while (m.flags(pos + n_blank).whitespace) ++n_blank;
    if (n_blank > 0) {
      pos = m.whitespace_run(pos, n_blank);
      m.emit(pos);
      continue;
    }
    m.emit(++pos);
  }
}

// A regex of the form [class]+ used as a splitter: maximal runs of the class
// become words, and so do the gaps between them.
template <typename Pred>
void split_runs(const Text& text, Span span, Pred in_class, std::vector<Span>* out) {
  size_t pos = span.begin;
  while (pos < span.end) {
    const bool cls = in_class(text.cpts[pos], text.flags[pos]);
    const size_t begin = pos;
    while (pos < span.end && in_class(text.cpts[pos], text.flags[pos]) == cls) ++pos;
    out->push_back({begin, pos});
  }
}

// [0-9][0-9][0-9] used as a splitter: leftmost non-overlapping triples.
void split_digit_triples(const Text& text, Span span, std::vector<Span>* out) {
  auto digit = [&](size_t p) { return text.cpts[p] >= '0' && text.cpts[p] <= '9'; };
  size_t gap = span.begin;
  size_t pos = span.begin;
  while (pos + 3 <= span.end) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      if (pos > gap) out->push_back({gap, pos});
      out->push_back({pos, pos + 3});
      pos += 3;
      gap = pos;
    } else {
      ++pos;
    }
  }
  if (span.end > gap) out->push_back({gap, span.end});
}

template <typename Splitter>
std::vector<Span> refine(const Text& text, const std::vector<Span>& spans, Splitter split) {
  std::vector<Span> out;
  out.reserve(spans.size());
  for (const Span& s : spans) split(text, s, &out);
  return out;
}

}  // namespace

std::optional<PreTokenizer> parse_pre_tokenizer(std::string_view name) {
  // The names llama.cpp maps to exactly these splitters and merge rules
  // (LLaMA 3 style also takes a word that is a token whole).
  for (std::string_view n : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                             "lfm2", "jina-v5-nano"}) {
    if (name == n) return PreTokenizer::kLlama3;
  }
  for (std::string_view n :
       {"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "exaone4", "gigachat", "a.x-4.0", "mellum"}) {
    if (name == n) return PreTokenizer::kGpt2;
  }
  if (name == "default") return PreTokenizer::kDefault;
  return std::nullopt;
}

std::vector<std::string> pretokenize(std::string_view utf8, PreTokenizer kind) {
  Text text;
  text.cpts = unicode::decode(utf8);
  text.flags.reserve(text.cpts.size());
  for (uint32_t c : text.cpts) text.flags.push_back(unicode::flags(c));

  std::vector<Span> spans;
  if (!text.cpts.empty()) spans.push_back({0, text.cpts.size()});
  switch (kind) {
    case PreTokenizer::kLlama3:
      spans = refine(text, spans, split_llama3);
      break;
    case PreTokenizer::kGpt2:
      spans = refine(text, spans, split_gpt2);
      break;
    case PreTokenizer::kDefault: {
      auto punctuation = [](uint32_t c, const Flags& f) {
        return f.punctuation() || (c < 0x80 && std::string_view("$+<=>^~|").find(static_cast<char>(c)) !=
                                                   std::string_view::npos);
      };
      auto number = [](uint32_t, const Flags& f) { return f.number(); };
      spans = refine(text, spans, [&](const Text& t, Span s, std::vector<Span>* out) {
        split_runs(t, s, punctuation, out);
      });
      spans = refine(text, spans, split_gpt2);
      spans = refine(text, spans,
                     [&](const Text& t, Span s, std::vector<Span>* out) { split_runs(t, s, number, out); });
      spans = refine(text, spans, split_digit_triples);
      break;
    }
  }

  std::vector<std::string> words;
  words.reserve(spans.size());
  std::string bytes;
  for (const Span& s : spans) {
    bytes.clear();
    for (size_t i = s.begin; i < s.end; ++i) unicode::append_utf8(text.cpts[i], &bytes);
    std::string word;
    word.reserve(bytes.size() * 2);
    for (char b : bytes) unicode::append_utf8(unicode::byte_to_cpt(static_cast<uint8_t>(b)), &word);
    words.push_back(std::move(word));
  }
  return words;
}

}  // namespace chorus
