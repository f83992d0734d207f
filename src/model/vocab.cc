// Reads the tokenizer.ggml.* metadata of a GGUF file into a Vocab, with the
// defaults llama.cpp applies per tokenizer model when keys are absent.
#include "model/vocab.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "gguf/reader.h"
#include "model/bpe_pretokenizer.h"
#include "util/error.h"

namespace chorus {
namespace {

// Texts llama.cpp recognises as end-of-turn / end-of-generation tokens when
// the file does not name them; the first list, a subset of the second, in
// order of preference for eot.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>",      "_<EOT>",  "[EOT]",         "<end_of_utterance>",
};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",    "<|eom_id|>",         "<|im_end|>", "<|end|>", "<end_of_turn>",
    "<|endoftext|>", "<|end_of_text|>",    "<EOT>",      "_<EOT>",  "[EOT]",
    "[EOS]",         "<end_of_utterance>", "<eos>",
};

// An integer key as a signed value, whatever integer type the file used
// (ids are usually uint32, sometimes int32 with -1 for "none").
std::optional<int64_t> find_integer(const gguf::Reader& file, std::string_view key) {
  const gguf::Value* v = file.find(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&v->data)) {
    return *u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? -1 : static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&v->data)) return *i;
  throw Error(file.path(), fmt::format("key '{}' should be an integer, not {}", key, v->to_string()));
}

TokenType token_type_of(int64_t code) {
  return code >= 0 && code <= static_cast<int64_t>(TokenType::kByte) ? static_cast<TokenType>(code)
                                                                     : TokenType::kUndefined;
}

// Sets the defaults llama.cpp uses for each tokenizer model.
void set_model_defaults(const gguf::Reader& file, const std::string& model, Vocab* v) {
  const std::string& where = file.path();
  v->pre = file.find_string("tokenizer.ggml.pre").value_or("default");
  if (model == "llama") {
    v->kind = TokenizerKind::kSpm;
    v->bos = 1;
    v->eos = 2;
    v->unk = 0;
    v->add_bos = true;
    v->add_eos = false;
    v->add_space_prefix = true;
  } else if (model == "gpt2") {
    v->kind = TokenizerKind::kBpe;
    const auto pre = parse_pre_tokenizer(v->pre);
    check(pre.has_value(), where,
          "tokenizer.ggml.pre '{}' is not supported (chorus reads llama3, gpt-2 and default)", v->pre);
    v->bos = 11;  // llama.cpp's BPE defaults, from Falcon
    v->eos = 11;
    v->unk = -1;
    v->add_bos = *pre == PreTokenizer::kLlama3;
    v->add_eos = false;
    v->add_space_prefix = false;
  } else {
    throw Error(
        where,
        fmt::format("tokenizer.ggml.model '{}' is not supported (chorus reads 'llama' and 'gpt2')", model));
  }
}

void read_tokens(const gguf::Reader& file, Vocab* v) {
  const std::string& where = file.path();
  v->tokens = file.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v->tokens.size();
  check(n > 0, where, "tokenizer.ggml.tokens is empty");
  check(n <= static_cast<size_t>(std::numeric_limits<int32_t>::max()), where, "{} tokens are too many", n);

  std::unordered_set<std::string_view> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    // llama.cpp renames empty tokens so that each has a distinct text.
    if (v->tokens[i].empty()) v->tokens[i] = fmt::format("[EMPTY_{}]", i);
    check(seen.insert(v->tokens[i]).second, where,
          "token '{}' (id {}) appears twice in tokenizer.ggml.tokens", v->tokens[i], i);
  }

  v->scores.assign(n, 0.0f);
  if (file.has("tokenizer.ggml.scores")) {
    const std::vector<double> scores = file.get_float_array("tokenizer.ggml.scores");
    check(scores.size() == n, where, "tokenizer.ggml.scores has {} entries for {} tokens", scores.size(), n);
    for (size_t i = 0; i < n; ++i) v->scores[i] = static_cast<float>(scores[i]);
  }

  v->types.assign(n, TokenType::kNormal);
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
    check(types.size() == n, where, "tokenizer.ggml.token_type has {} entries for {} tokens", types.size(),
          n);
    for (size_t i = 0; i < n; ++i) v->types[i] = token_type_of(types[i]);
  }

  if (v->kind == TokenizerKind::kBpe) {
    check(file.has("tokenizer.ggml.merges"), where, "a gpt2 vocabulary needs tokenizer.ggml.merges");
    v->merges = file.get_string_array("tokenizer.ggml.merges");
  }
}

// Special ids: an id outside the vocabulary (some files carry 0xFFFFFFFF or
// the vocabulary size for "none") is ignored and the default kept, which is
// itself dropped when out of range, as in llama.cpp.
void read_special_ids(const gguf::Reader& file, Vocab* v) {
  const int64_t n = v->size();
  auto read_id = [&](std::string_view key, int32_t* id) {
    if (*id >= n) *id = -1;
    if (const auto x = find_integer(file, key); x && *x >= 0 && *x < n) *id = static_cast<int32_t>(*x);
  };
  read_id("tokenizer.ggml.bos_token_id", &v->bos);
  read_id("tokenizer.ggml.eos_token_id", &v->eos);
  read_id("tokenizer.ggml.unknown_token_id", &v->unk);
  read_id("tokenizer.ggml.padding_token_id", &v->pad);
  read_id("tokenizer.ggml.eot_token_id", &v->eot);

  if (const auto b = file.find_bool("tokenizer.ggml.add_bos_token")) v->add_bos = *b;
  if (const auto b = file.find_bool("tokenizer.ggml.add_eos_token")) v->add_eos = *b;
  if (const auto b = file.find_bool("tokenizer.ggml.add_space_prefix")) v->add_space_prefix = *b;
  check(!v->add_bos || v->bos >= 0, file.path(),
        "tokenizer.ggml.add_bos_token is true but there is no bos token");
  check(!v->add_eos || v->eos >= 0, file.path(),
        "tokenizer.ggml.add_eos_token is true but there is no eos token");
}

// End-of-generation tokens the file does not name, found by their text.
// Like llama.cpp, such a token is made a control token so it is neither
// printed nor produced from plain text.
void find_end_tokens(const gguf::Reader& file, Vocab* v) {
  std::unordered_map<std::string_view, int32_t> present;  // candidate text -> id
  for (int32_t i = 0; i < v->size(); ++i) {
    const std::string_view t = v->tokens[i];
    if (std::find(std::begin(kEogTexts), std::end(kEogTexts), t) != std::end(kEogTexts)) present[t] = i;
  }
  auto id_of = [&](std::string_view text) {
    const auto it = present.find(text);
    return it == present.end() ? -1 : it->second;
  };
  if (v->eot < 0) {
    for (std::string_view text : kEotTexts) {
      if ((v->eot = id_of(text)) >= 0) break;
    }
  }
  for (std::string_view text : kEogTexts) {
    const int32_t id = id_of(text);
    if (id < 0) continue;
    v->types[id] = TokenType::kControl;
    if (id != v->eos && id != v->eot) v->eog.push_back(id);
  }
  if (const auto eom = find_integer(file, "tokenizer.ggml.eom_token_id");
      eom && *eom >= 0 && *eom < v->size()) {
    v->eog.push_back(static_cast<int32_t>(*eom));
  }
}

}  // namespace

Vocab load_vocab(const gguf::Reader& file) {
  Vocab v;
  set_model_defaults(file, file.get_string("tokenizer.ggml.model"), &v);
  read_tokens(file, &v);
  read_special_ids(file, &v);
  find_end_tokens(file, &v);
  v.chat_template = file.find_string("tokenizer.chat_template").value_or("");
  return v;
}

}  // namespace chorus
