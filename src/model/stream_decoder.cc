// StreamDecoder: token-by-token text for printing while generating. Byte
// tokens can split one character across several tokens, so an incomplete
// UTF-8 sequence is held back until its last byte arrives.
#include "model/tokenizer.h"
#include "model/unicode.h"

namespace chorus {

std::string StreamDecoder::push(int32_t id) {
  std::string bytes = tok_->token_bytes(id);
  if (strip_space_ && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
  strip_space_ = false;
  if (first_) {
    // Same rule as Tokenizer::decode: the SPM space prefix is dropped from
    // the token after a leading BOS.
    const Vocab& v = tok_->vocab();
    strip_space_ = v.kind == TokenizerKind::kSpm && v.add_space_prefix && id == v.bos;
    first_ = false;
  }
  pending_ += bytes;
  std::string out;
  const size_t used = unicode::append_valid_utf8(pending_, /*hold_incomplete=*/true, &out);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  unicode::append_valid_utf8(pending_, /*hold_incomplete=*/false, &out);
  pending_.clear();
  return out;
}

}  // namespace chorus
