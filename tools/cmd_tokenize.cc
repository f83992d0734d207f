// `chorus tokenize`: prints the tokens of a text, like llama.cpp's
// llama-tokenize, so tokenization can be checked from outside.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "gguf/reader.h"
#include "model/model.h"
#include "tools/commands.h"
#include "util/error.h"

namespace chorus::tools {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  bool ids_only = false;
  bool no_bos = false;
  bool parse_special = false;
};

// Shows a piece with control characters escaped so one token is one line.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  return in.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

int run_tokenize(const TokenizeArgs& a) {
  // A GGUF needs only its vocabulary here, so vocabulary-only files work too.
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> vocab_only;
  if (is_gguf_file(a.model)) {
    vocab_only = std::make_unique<Tokenizer>(load_vocab(gguf::Reader::open(a.model)));
  } else {
    model = load_model(a.model, a.tokenizer);
  }
  const Tokenizer& tok = vocab_only ? *vocab_only : *model->tokenizer;
  const auto ids = tok.encode(a.prompt, !a.no_bos, a.parse_special);
  if (a.ids_only) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
    std::printf("%s]\n", line.c_str());
    return 0;
  }
  for (int32_t id : ids) {
    // Control tokens have no bytes; show their name as llama-tokenize does.
    std::string piece = tok.token_bytes(id);
    if (piece.empty()) piece = tok.vocab().tokens[id];
    std::printf("%6d -> '%s'\n", id, printable(piece).c_str());
  }
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, Command* selected) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("-m,--model", args->model, "GGUF or llama2.c model (its vocabulary is used)")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.bin for a llama2.c model");
  cmd->add_option("-p,--prompt", args->prompt, "Text to tokenize")->required();
  cmd->add_flag("--ids", args->ids_only, "Print only the ids, as [1, 2, 3]");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add the BOS token");
  cmd->add_flag("--parse-special", args->parse_special, "Recognise special token texts such as <s>");
  cmd->callback([args, selected] { *selected = [args] { return run_tokenize(*args); }; });
}

}  // namespace chorus::tools
