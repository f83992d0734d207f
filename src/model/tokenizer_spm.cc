// SentencePiece-style encoding (see tokenizer_spm.h).
#include "model/tokenizer_spm.h"

#include <algorithm>
#include <queue>

#include "model/unicode.h"

namespace chorus {
namespace {

// A run of bytes of the text in a doubly linked list of live symbols; merged
// symbols keep their slot with n = 0.
struct Symbol {
  int32_t prev, next;
  size_t start, n;
};

struct Bigram {
  float score;
  int32_t left, right;
  size_t size;  // bytes of both symbols when queued; stale if they changed

  // Best score first; on ties the leftmost pair, as in llama.cpp.
  bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
};

class SpmSession {
 public:
  SpmSession(const SpmModel& model, std::string_view text) : model_(model), text_(text) {}

  void run(std::vector<int32_t>* out) {
    for (size_t offs = 0; offs < text_.size();) {
      const size_t n = std::min(unicode::sequence_length(text_[offs]), text_.size() - offs);
      const auto index = static_cast<int32_t>(symbols_.size());
      symbols_.push_back({index - 1, offs + n == text_.size() ? -1 : index + 1, offs, n});
      offs += n;
    }
    for (int32_t i = 1; i < static_cast<int32_t>(symbols_.size()); ++i) try_add_bigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram b = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[b.left];
      Symbol& right = symbols_[b.right];
      // Symbols only grow, so an unchanged total size means neither side
      // has been merged into something else since the pair was queued.
      if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = b.left;
      try_add_bigram(left.prev, b.left);
      try_add_bigram(b.left, left.next);
    }

    if (symbols_.empty()) return;
    for (int32_t i = 0; i != -1; i = symbols_[i].next) emit(symbols_[i], out);
  }

 private:
  std::string_view text_of(const Symbol& s, size_t n) const { return text_.substr(s.start, n); }

  void try_add_bigram(int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const size_t size = symbols_[left].n + symbols_[right].n;
    const int32_t id = find_token(*model_.index, text_of(symbols_[left], size));
    if (id < 0) return;
    const float score = model_.scores.empty() ? 0.0f : model_.scores[id];
    queue_.push({score, left, right, size});
  }

  // Every merged symbol is a token by construction, so only single
  // characters can miss the vocabulary; they fall back to byte tokens.
  // (llama.cpp also keeps a reverse-merge map for re-splitting, which can
  // never be consulted for that reason.)
  void emit(const Symbol& s, std::vector<int32_t>* out) const {
    const std::string_view piece = text_of(s, s.n);
    const int32_t id = find_token(*model_.index, piece);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
    for (char c : piece) {
      const int32_t byte_id = model_.byte_tokens[static_cast<uint8_t>(c)];
      if (byte_id >= 0) {
        out->push_back(byte_id);
      } else if (model_.unk >= 0) {
        out->push_back(model_.unk);
      }
    }
  }

  const SpmModel& model_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram> queue_;
};

}  // namespace

void spm_encode(const SpmModel& model, std::string_view text, std::vector<int32_t>* out) {
  SpmSession(model, text).run(out);
}

}  // namespace chorus
