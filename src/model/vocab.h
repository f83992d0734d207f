// The vocabulary of a model: pieces, scores, token types, merges and special
// ids, independent of the file it came from (GGUF or llama2.c tokenizer.bin).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace chorus {

namespace gguf { class Reader; }

enum class TokenizerKind { kSpm, kBpe };

// Token types as GGUF stores them (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3,
  kUserDefined = 4, kUnused = 5, kByte = 6,
};

struct Vocab {
  TokenizerKind kind = TokenizerKind::kSpm;
  std::string pre = "default";  // BPE pre-tokenizer name ("llama3", ...)
  std::vector<std::string> tokens;
  std::vector<float> scores;        // SPM merge priority (may be empty for BPE)
  std::vector<TokenType> types;
  std::vector<std::string> merges;  // BPE merges "a b", highest priority first
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1;
  // Further end-of-generation tokens besides eos and eot (e.g. <|eom_id|>),
  // found by their text the way llama.cpp does.
  std::vector<int32_t> eog;
  bool add_bos = true;
  bool add_eos = false;
  bool add_space_prefix = true;  // SPM: prepend "▁" to the text
  // The model's chat template (GGUF tokenizer.chat_template, Jinja source);
  // empty when the file has none. src/chat recognises and formats it.
  std::string chat_template;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
};

// Reads tokenizer.ggml.* keys. Throws Error naming the file on missing or
// inconsistent keys (e.g. scores of another length than tokens).
Vocab load_vocab(const gguf::Reader& file);

// Reads a llama2.c tokenizer.bin for a vocabulary of n_vocab tokens.
Vocab load_llama2c_vocab(const std::string& path, int n_vocab);

}  // namespace chorus
