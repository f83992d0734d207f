// Text <-> token ids, matching llama.cpp exactly for SentencePiece-style
// ("llama") and byte-level BPE ("gpt2", LLaMA 3 pre-tokenizer) vocabularies.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/vocab.h"

namespace chorus {

class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // add_special: prepend BOS (and append EOS) as the vocabulary asks.
  // parse_special: recognise control/user-defined token texts such as "<s>".
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special = false) const;

  // The raw bytes a token stands for ("▁" -> ' ', "<0x0A>" -> '\n', BPE byte
  // mapping undone). Control tokens give "". Bytes may be an incomplete UTF-8
  // sequence; use StreamDecoder to print safely.
  std::string token_bytes(int32_t id) const;
  // Whole-sequence decode: the concatenated token_bytes, not repaired. For
  // SPM, the space the prefix added is removed from the token after a
  // leading BOS, so decode(encode(x, true)) == x. (llama.cpp's
  // llama_detokenize keeps that space and instead strips it when there is no
  // BOS; it also tidies spaces before punctuation for BPE, which we do not,
  // so that decode and StreamDecoder agree byte for byte.)
  std::string decode(std::span<const int32_t> ids) const;

  const Vocab& vocab() const { return vocab_; }
  bool is_eog(int32_t id) const;  // end of generation (eos, eot, vocab().eog)
  // Id of the token whose text is exactly `text` (e.g. "<|eot_id|>"), or -1.
  int32_t token_id(std::string_view text) const;

 private:
  struct Impl;
  Vocab vocab_;
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into printable UTF-8: bytes of a character split
// across tokens are held back until the character is complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(&tok) {}
  // Returns the complete characters now ready; bytes that can never form a
  // character come out as U+FFFD at once. The text of a whole sequence
  // equals decode() of it, with invalid UTF-8 repaired.
  std::string push(int32_t id);
  std::string flush();           // whatever is left (invalid bytes as U+FFFD)

 private:
  const Tokenizer* tok_;
  std::string pending_;
  bool first_ = true;
  bool strip_space_ = false;  // next token follows a leading SPM BOS
};

}  // namespace chorus
