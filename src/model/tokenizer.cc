// Tokenizer: validates a Vocab, builds the lookup tables once, and runs the
// llama.cpp encode pipeline (special-token split, then SPM or BPE per plain
// fragment) and the byte decoding of tokens.
#include "model/tokenizer.h"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <utility>

#include "model/special_split.h"
#include "model/token_index.h"
#include "model/tokenizer_bpe.h"
#include "model/tokenizer_spm.h"
#include "model/unicode.h"
#include "util/error.h"

namespace chorus {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

constexpr char kWhere[] = "tokenizer";

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  for (size_t m; (m = s->find(from, pos)) != std::string::npos; pos = m + from.size()) {
    out.append(*s, pos, m - pos);
    out.append(to);
  }
  out.append(*s, pos);
  s->swap(out);
}

// The byte of a "<0xXX>" token text, or -1.
int parse_byte_token(std::string_view text) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  const int hi = hex(text[3]), lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Undoes the GPT-2 byte mapping; characters outside it are kept as they are.
std::string bpe_text_to_bytes(std::string_view text) {
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    const uint32_t cpt = unicode::decode_one(text, &pos);
    const int byte = unicode::cpt_to_byte(cpt);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
    } else {
      unicode::append_utf8(cpt, &out);
    }
  }
  return out;
}

void validate(const Vocab& v) {
  const int32_t n = v.size();
  check(n > 0, kWhere, "the vocabulary is empty");
  check(v.scores.empty() || v.scores.size() == v.tokens.size(), kWhere, "{} scores for {} tokens",
        v.scores.size(), v.tokens.size());
  check(v.types.empty() || v.types.size() == v.tokens.size(), kWhere, "{} token types for {} tokens",
        v.types.size(), v.tokens.size());
  const std::initializer_list<std::pair<const char*, int32_t>> named_ids = {
      {"bos", v.bos}, {"eos", v.eos}, {"unk", v.unk}, {"pad", v.pad}, {"eot", v.eot}};
  for (const auto& [name, id] : named_ids) {
    check(id >= -1 && id < n, kWhere, "{} token id {} outside the vocabulary of {}", name, id, n);
  }
  for (int32_t id : v.eog) {
    check(id >= 0 && id < n, kWhere, "end-of-generation id {} outside the vocabulary of {}", id, n);
  }
  check(!v.add_bos || v.bos >= 0, kWhere, "add_bos is set but there is no bos token");
  check(!v.add_eos || v.eos >= 0, kWhere, "add_eos is set but there is no eos token");
}

// What a token prints as. Control and unknown tokens print nothing, and
// unused/undefined ones are suppressed the same way, as in llama.cpp.
std::string token_output(const std::string& text, TokenType type, TokenizerKind kind) {
  switch (type) {
    case TokenType::kUserDefined:
      return text;
    case TokenType::kByte:
      if (const int b = parse_byte_token(text); b >= 0) return std::string(1, static_cast<char>(b));
      [[fallthrough]];  // a byte token without the <0xXX> form: show its text
    case TokenType::kNormal:
      if (kind == TokenizerKind::kSpm) {
        std::string out = text;
        replace_all(&out, kSpaceMarker, " ");
        return out;
      }
      return bpe_text_to_bytes(text);
    default:
      return "";
  }
}

}  // namespace

struct Tokenizer::Impl {
  TokenIndex index;
  std::vector<TokenType> types;
  std::vector<float> scores;
  std::vector<SpecialToken> specials;      // control, user-defined, unknown; longest first
  std::vector<SpecialToken> user_defined;  // the ones split even without parse_special
  std::vector<std::string> bytes;          // token_bytes() by id
  std::vector<bool> eog;
  SpmModel spm;
  std::optional<BpeModel> bpe;

  void build_specials(const Vocab& v);
  void build_spm(const Vocab& v);
};

void Tokenizer::Impl::build_specials(const Vocab& v) {
  // Longest first; among equal lengths the lower id first so the order does
  // not depend on the sort. The views point into the index, whose nodes
  // never move.
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < v.size(); ++id) {
    const TokenType t = types[id];
    if ((t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown) &&
        !v.tokens[id].empty()) {
      ids.push_back(id);
    }
  }
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return v.tokens[a].size() > v.tokens[b].size(); });
  for (int32_t id : ids) {
    const SpecialToken sp{id, index.find(v.tokens[id])->first};
    specials.push_back(sp);
    if (types[id] == TokenType::kUserDefined) user_defined.push_back(sp);
  }
}

void Tokenizer::Impl::build_spm(const Vocab& v) {
  spm.index = &index;
  spm.scores = scores;
  spm.unk = v.unk;
  // llama.cpp looks for <0xXX> first and then for the byte as a text.
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int32_t id = find_token(index, std::string_view(name, sizeof(name)));
    if (id < 0) id = find_token(index, std::string(1, static_cast<char>(b)));
    spm.byte_tokens[b] = id;
  }
}

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)), impl_(std::make_unique<Impl>()) {
  const Vocab& v = vocab_;
  Impl& im = *impl_;
  validate(v);
  const int32_t n = v.size();
  im.types = v.types.empty() ? std::vector<TokenType>(n, TokenType::kNormal) : v.types;
  im.scores = v.scores;
  im.index.reserve(n);
  for (int32_t id = 0; id < n; ++id) {
    const auto [it, inserted] = im.index.emplace(v.tokens[id], id);
    check(inserted, kWhere, "token '{}' appears twice (ids {} and {})", v.tokens[id], it->second, id);
  }
  im.build_specials(v);

  im.eog.assign(n, false);
  for (int32_t id : {v.eos, v.eot}) {
    if (id >= 0) im.eog[id] = true;
  }
  for (int32_t id : v.eog) im.eog[id] = true;

  im.bytes.reserve(n);
  for (int32_t id = 0; id < n; ++id) im.bytes.push_back(token_output(v.tokens[id], im.types[id], v.kind));

  if (v.kind == TokenizerKind::kSpm) {
    im.build_spm(v);
  } else {
    const auto pre = parse_pre_tokenizer(v.pre);
    check(pre.has_value(), kWhere, "unsupported BPE pre-tokenizer '{}'", v.pre);
    im.bpe.emplace(&im.index, v.merges, *pre, /*ignore_merges=*/*pre == PreTokenizer::kLlama3);
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& im = *impl_;
  // Without parse_special, user-defined tokens are still split out first
  // (as Hugging Face tokenizers do); control and unknown texts are not.
  const std::vector<Fragment> frags = split_special(text, parse_special ? im.specials : im.user_defined);

  std::vector<int32_t> out;
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos);
  if (vocab_.kind == TokenizerKind::kSpm) {
    // The space prefix goes before the first text and before text that
    // follows a special token.
    bool after_special = true;
    std::string piece;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
        after_special = true;
        continue;
      }
      piece.clear();
      if (vocab_.add_space_prefix && after_special) piece.push_back(' ');
      piece.append(text.substr(f.begin, f.end - f.begin));
      replace_all(&piece, " ", kSpaceMarker);
      spm_encode(im.spm, piece, &out);
      after_special = false;
    }
  } else {
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
      } else {
        im.bpe->encode(text.substr(f.begin, f.end - f.begin), &out);
      }
    }
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  check(id >= 0 && id < vocab_.size(), kWhere, "token id {} outside the vocabulary of {}", id, vocab_.size());
  return impl_->bytes[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  const bool strip_after_bos =
      vocab_.kind == TokenizerKind::kSpm && vocab_.add_space_prefix && !ids.empty() && ids[0] == vocab_.bos;
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = token_bytes(ids[i]);
    const bool strip = strip_after_bos && i == 1 && !piece.empty() && piece[0] == ' ';
    out.append(piece, strip ? 1 : 0);
  }
  return out;
}

bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < vocab_.size() && impl_->eog[id]; }

int32_t Tokenizer::token_id(std::string_view text) const { return find_token(impl_->index, text); }

}  // namespace chorus
