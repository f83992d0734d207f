// Byte-level BPE encoding (see tokenizer_bpe.h).
#include "model/tokenizer_bpe.h"

#include <algorithm>
#include <queue>

#include "model/unicode.h"

namespace chorus {
namespace {

struct Symbol {
  int32_t prev, next;
  size_t start, n;  // bytes of the word; n = 0 once merged away
};

struct Bigram {
  int32_t rank;
  int32_t left, right;
  size_t size;  // bytes of both symbols when queued; stale if they changed

  // std::priority_queue pops the largest: make that the lowest rank, and on
  // ties the leftmost pair, as in llama.cpp.
  bool operator<(const Bigram& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
};

}  // namespace

BpeModel::BpeModel(const TokenIndex* index, const std::vector<std::string>& merges, PreTokenizer pre,
                   bool ignore_merges)
    : index_(index), pre_(pre), ignore_merges_(ignore_merges) {
  ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    // llama.cpp splits at the first space after the first byte; a merge
    // without one can never match and is skipped. The first of duplicate
    // merges wins.
    if (merges[i].find(' ', 1) == std::string::npos) continue;
    ranks_.emplace(merges[i], static_cast<int32_t>(i));
  }
}

int32_t BpeModel::rank(std::string_view left, std::string_view right, std::string* key) const {
  // A pair whose left side holds a space past its first byte was split
  // elsewhere when the merges were read, so it has no rank.
  if (left.find(' ', 1) != std::string_view::npos) return -1;
  key->assign(left);
  key->push_back(' ');
  key->append(right);
  return find_token(ranks_, *key);
}

void BpeModel::encode(std::string_view text, std::vector<int32_t>* out) const {
  for (const std::string& word : pretokenize(text, pre_)) encode_word(word, out);
}

void BpeModel::encode_word(const std::string& word, std::vector<int32_t>* out) const {
  if (ignore_merges_) {
    const int32_t id = find_token(*index_, word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const std::string_view w = word;
  std::vector<Symbol> symbols;
  for (size_t offs = 0; offs < w.size();) {
    const size_t n = std::min(unicode::sequence_length(w[offs]), w.size() - offs);
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offs + n == w.size() ? -1 : index + 1, offs, n});
    offs += n;
  }

  std::priority_queue<Bigram> queue;
  std::string key;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[left];
    const Symbol& r = symbols[right];
    const int32_t rk = rank(w.substr(l.start, l.n), w.substr(r.start, r.n), &key);
    if (rk >= 0) queue.push({rk, left, right, l.n + r.n});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& left = symbols[b.left];
    Symbol& right = symbols[b.right];
    if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = b.left;
    try_add(left.prev, b.left);
    try_add(b.left, left.next);
  }

  for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
    const std::string_view piece = w.substr(symbols[i].start, symbols[i].n);
    const int32_t id = find_token(*index_, piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // Like llama.cpp: fall back to single-byte tokens, dropping bytes that
    // have none.
    for (size_t k = 0; k < piece.size(); ++k) {
      const int32_t byte_id = find_token(*index_, piece.substr(k, 1));
      if (byte_id >= 0) out->push_back(byte_id);
    }
  }
}

}  // namespace chorus
