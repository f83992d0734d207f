// Reads a llama2.c tokenizer.bin into an SPM Vocab equal to what llama.cpp's
// converter makes of the same SentencePiece model, so both give the same ids.
//
// Layout: int32 max_token_length, then per token float32 score, int32 length
// and that many bytes. llama2.c's exporter wrote pieces with " " in place of
// SentencePiece's "▁" and BOS/EOS as "\n<s>\n" / "\n</s>\n"; both are undone.
#include <cstring>
#include <unordered_set>

#include "model/vocab.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace chorus {
namespace {

// Far above any real vocabulary; rejects garbage sizes before allocating.
constexpr int kMaxVocab = 1 << 24;

class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  template <typename T>
  T read(std::string_view what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what).data(), sizeof(T));
    return v;
  }

  std::span<const uint8_t> take(size_t n, std::string_view what) {
    check(n <= bytes_.size() - pos_, path_, "truncated: {} needs {} bytes at offset {}, file has {}", what, n,
          pos_, bytes_.size());
    const auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

bool is_byte_piece(const std::string& p) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

std::string to_sentencepiece(std::string piece) {
  if (piece == "\n<s>\n") return "<s>";
  if (piece == "\n</s>\n") return "</s>";
  std::string out;
  out.reserve(piece.size() + 8);
  for (char c : piece) {
    if (c == ' ') {
      out += "\xE2\x96\x81";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Vocab load_llama2c_vocab(const std::string& path, int n_vocab) {
  check(n_vocab > 0 && n_vocab <= kMaxVocab, path, "vocabulary size {} is not plausible", n_vocab);
  const MappedFile file(path);
  ByteReader in(file.bytes(), path);
  const auto max_len = in.read<int32_t>("max_token_length");
  check(max_len > 0, path, "max_token_length is {}; not a llama2.c tokenizer", max_len);

  Vocab v;
  v.kind = TokenizerKind::kSpm;
  v.tokens.reserve(n_vocab);
  v.scores.reserve(n_vocab);
  v.types.reserve(n_vocab);
  std::unordered_set<std::string> seen;
  for (int i = 0; i < n_vocab; ++i) {
    const std::string what = fmt::format("token {}", i);
    const auto score = in.read<float>(what);
    const auto len = in.read<int32_t>(what);
    check(len >= 0, path, "token {} has length {}", i, len);
    const auto raw = in.take(static_cast<size_t>(len), what);
    std::string piece = to_sentencepiece(std::string(raw.begin(), raw.end()));
    check(!piece.empty(), path, "token {} is empty", i);
    check(seen.insert(piece).second, path, "token '{}' (id {}) appears twice", piece, i);

    TokenType type = TokenType::kNormal;
    if (piece == "<unk>") {
      type = TokenType::kUnknown;
    } else if (piece == "<s>" || piece == "</s>") {
      type = TokenType::kControl;
    } else if (is_byte_piece(piece)) {
      type = TokenType::kByte;
    }
    v.tokens.push_back(std::move(piece));
    v.scores.push_back(score);
    v.types.push_back(type);
  }

  // SentencePiece's fixed ids, as llama.cpp assumes for "llama" vocabularies.
  auto id_if = [&](int32_t id, std::string_view text) {
    return id < n_vocab && v.tokens[id] == text ? id : -1;
  };
  v.unk = id_if(0, "<unk>");
  v.bos = id_if(1, "<s>");
  v.eos = id_if(2, "</s>");
  v.add_bos = v.bos >= 0;
  v.add_eos = false;
  v.add_space_prefix = true;
  return v;
}

}  // namespace chorus
