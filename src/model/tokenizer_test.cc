// Tokenizers: conformance with llama.cpp's test-tokenizer-0 vectors for the
// LLaMA SPM and LLaMA 3 BPE vocabularies, round trips, streaming decode,
// llama2.c vocabularies, and rejection of broken inputs.
#include "model/tokenizer.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gguf/reader.h"
#include "gguf/writer.h"
#include "model/bpe_pretokenizer.h"
#include "model/unicode.h"
#include "model/vocab.h"
#include "util/error.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;

const std::string kRoot = CHORUS_SOURCE_DIR;
const std::string kSpmVocab = kRoot + "/tests/data/vocab/ggml-vocab-llama-spm.gguf";
const std::string kBpeVocab = kRoot + "/tests/data/vocab/ggml-vocab-llama-bpe.gguf";
const std::string kStoriesGguf = kRoot + "/models/stories260K.gguf";
const std::string kTok512 = kRoot + "/models/tok512.bin";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class TempDir {
 public:
  TempDir()
      : path_(fs::path(::testing::TempDir()) / ("chorus_tokenizer_test_" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads <vocab>.inp/.out the way llama.cpp's test-tokenizer-0 does: inputs
// are separated by "\n__ggml_vocab_test__\n" (the file ends with one, so no
// input keeps a trailing newline of its own beyond what it contains), and
// each output line holds the expected ids, without BOS.
std::vector<Case> read_cases(const std::string& vocab_path) {
  const std::string inp = read_file(vocab_path + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream out(vocab_path + ".out");
  std::vector<Case> cases;
  std::string line;
  for (size_t i = 0; std::getline(out, line); ++i) {
    Case c;
    c.text = i < texts.size() ? texts[i] : std::string();
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << "input and output files disagree on the number of tests";
  return cases;
}

// The big vocabularies are loaded once for all tests.
const Tokenizer& spm() {
  static const Tokenizer tok(load_vocab(gguf::Reader::open(kSpmVocab)));
  return tok;
}
const Tokenizer& bpe() {
  static const Tokenizer tok(load_vocab(gguf::Reader::open(kBpeVocab)));
  return tok;
}
const Tokenizer& stories() {
  static const Tokenizer tok(load_vocab(gguf::Reader::open(kStoriesGguf)));
  return tok;
}

void expect_conformance(const Tokenizer& tok, const std::string& vocab_path) {
  const std::vector<Case> cases = read_cases(vocab_path);
  ASSERT_EQ(cases.size(), 46u);
  size_t passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    // llama.cpp's test: add_special = false, parse_special = false.
    const std::vector<int32_t> got = tok.encode(cases[i].text, false, false);
    EXPECT_EQ(got, cases[i].ids) << "input " << i << ": '" << cases[i].text << "'";
    passed += got == cases[i].ids;
  }
  std::printf("[ conformance ] %s: %zu/%zu inputs match llama.cpp\n", fs::path(vocab_path).filename().c_str(),
              passed, cases.size());
  EXPECT_EQ(passed, cases.size());
}

std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  StreamDecoder dec(tok);
  std::string out;
  for (int32_t id : ids) out += dec.push(id);
  return out + dec.flush();
}

std::vector<int32_t> ids_of(std::initializer_list<int32_t> ids) { return ids; }

// ---------------------------------------------------------------------------
// Conformance with llama.cpp.

TEST(TokenizerConformance, LlamaSpmMatchesLlamaCpp) { expect_conformance(spm(), kSpmVocab); }

TEST(TokenizerConformance, LlamaBpeMatchesLlamaCpp) { expect_conformance(bpe(), kBpeVocab); }

TEST(TokenizerConformance, VocabularyMetadata) {
  const Vocab& s = spm().vocab();
  EXPECT_EQ(s.kind, TokenizerKind::kSpm);
  EXPECT_EQ(s.size(), 32000);
  EXPECT_EQ(s.bos, 1);
  EXPECT_EQ(s.eos, 2);
  EXPECT_EQ(s.unk, 0);
  EXPECT_TRUE(s.add_bos);
  EXPECT_FALSE(s.add_eos);
  EXPECT_TRUE(s.add_space_prefix);

  const Vocab& b = bpe().vocab();
  EXPECT_EQ(b.kind, TokenizerKind::kBpe);
  EXPECT_EQ(b.pre, "llama-bpe");
  EXPECT_EQ(b.size(), 128256);
  EXPECT_EQ(b.merges.size(), 280147u);
  EXPECT_EQ(b.bos, 128000);
  EXPECT_EQ(b.eos, 128001);
  EXPECT_EQ(b.eot, 128009);  // <|eot_id|>, found by its text
  EXPECT_TRUE(b.add_bos);
  EXPECT_FALSE(b.add_space_prefix);

  // 0xFFFFFFFF ids in the file mean "none".
  EXPECT_EQ(stories().vocab().pad, -1);
}

TEST(TokenizerConformance, AddSpecialPrependsBos) {
  EXPECT_EQ(spm().encode("Hello world", true), ids_of({1, 15043, 3186}));
  EXPECT_EQ(spm().encode("", true), ids_of({1}));
  EXPECT_EQ(spm().encode("", false), ids_of({}));
  EXPECT_EQ(bpe().encode("Hello world", true), ids_of({128000, 9906, 1917}));
  EXPECT_EQ(bpe().encode("", true), ids_of({128000}));
}

// ---------------------------------------------------------------------------
// Special tokens.

TEST(TokenizerSpecial, ParseSpecialSplitsControlTokens) {
  // Text after a special token gets the SPM space prefix again (llama.cpp).
  EXPECT_EQ(spm().encode("<s>Hello", false, true), ids_of({1, 15043}));
  EXPECT_EQ(spm().encode("Hello</s>", false, true), ids_of({15043, 2}));
  const auto spelled = spm().encode("<s>Hello", false, false);
  EXPECT_EQ(std::count(spelled.begin(), spelled.end(), 1), 0);

  const std::vector<int32_t> chat =
      bpe().encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", true, true);
  EXPECT_EQ(chat, ids_of({128000, 128006, 882, 128007, 271, 13347, 128009}));
  const auto plain = bpe().encode("<|eot_id|>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 128009), 0);
}

TEST(TokenizerSpecial, EndOfGeneration) {
  EXPECT_TRUE(spm().is_eog(2));
  EXPECT_FALSE(spm().is_eog(1));
  EXPECT_FALSE(spm().is_eog(15043));
  EXPECT_FALSE(spm().is_eog(-1));
  EXPECT_FALSE(spm().is_eog(1 << 30));
  EXPECT_TRUE(bpe().is_eog(128001));  // <|end_of_text|>
  EXPECT_TRUE(bpe().is_eog(128009));  // <|eot_id|>
  EXPECT_FALSE(bpe().is_eog(128000));
  EXPECT_EQ(bpe().token_id("<|eot_id|>"), 128009);
  EXPECT_EQ(bpe().token_id("no such token"), -1);
}

// ---------------------------------------------------------------------------
// Decoding.

TEST(TokenizerDecode, TokenBytes) {
  EXPECT_EQ(spm().token_bytes(15043), " Hello");
  EXPECT_EQ(spm().token_bytes(13), "\n");     // <0x0A>
  EXPECT_EQ(spm().token_bytes(243), "\xF0");  // <0xF0>
  EXPECT_EQ(spm().token_bytes(1), "");        // control
  EXPECT_EQ(spm().token_bytes(0), "");        // unknown
  EXPECT_EQ(bpe().token_bytes(22691), " Hello");
  EXPECT_EQ(bpe().token_bytes(198), "\n");
  EXPECT_EQ(bpe().token_bytes(128000), "");
  EXPECT_THROW(spm().token_bytes(32000), Error);
  EXPECT_THROW(spm().token_bytes(-1), Error);
}

TEST(TokenizerDecode, RoundTripsEveryConformanceInput) {
  for (const auto* vocab : {&kSpmVocab, &kBpeVocab}) {
    const Tokenizer& tok = vocab == &kSpmVocab ? spm() : bpe();
    for (const Case& c : read_cases(*vocab)) {
      // With BOS the SPM space prefix is dropped again; without it the
      // decoded text keeps it.
      EXPECT_EQ(tok.decode(tok.encode(c.text, true)), c.text) << *vocab << ": '" << c.text << "'";
      const std::string prefix = tok.vocab().add_space_prefix && !c.text.empty() ? " " : "";
      EXPECT_EQ(tok.decode(tok.encode(c.text, false)), prefix + c.text) << *vocab << ": '" << c.text << "'";
      // The inputs are valid UTF-8, so streaming gives the same text.
      const std::vector<int32_t> ids = tok.encode(c.text, true);
      EXPECT_EQ(stream(tok, ids), tok.decode(ids)) << *vocab << ": '" << c.text << "'";
    }
  }
}

TEST(TokenizerDecode, StreamHoldsBackSplitCharacters) {
  // The llama is not in the SPM vocabulary: four byte tokens.
  const std::vector<int32_t> ids = spm().encode("🦙", true);
  ASSERT_EQ(ids, ids_of({1, 29871, 243, 162, 169, 156}));
  StreamDecoder dec(spm());
  EXPECT_EQ(dec.push(ids[0]), "");
  EXPECT_EQ(dec.push(ids[1]), "");  // the prefix space after BOS is dropped
  EXPECT_EQ(dec.push(ids[2]), "");
  EXPECT_EQ(dec.push(ids[3]), "");
  EXPECT_EQ(dec.push(ids[4]), "");
  EXPECT_EQ(dec.push(ids[5]), "🦙");
  EXPECT_EQ(dec.push(15043), " Hello");
  EXPECT_EQ(dec.flush(), "");
}

TEST(TokenizerDecode, StreamReplacesInvalidBytes) {
  StreamDecoder dec(spm());
  EXPECT_EQ(dec.push(15043), " Hello");      // no BOS first: the space stays
  EXPECT_EQ(dec.push(243), "");              // <0xF0>: a 4-byte lead
  EXPECT_EQ(dec.push(162), "");              // <0x9F>
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");    // cut off: one U+FFFD
  EXPECT_EQ(dec.push(162), "\xEF\xBF\xBD");  // a lone continuation byte can never complete
  EXPECT_EQ(dec.push(243), "");
  EXPECT_EQ(dec.push(3186), "\xEF\xBF\xBD world");  // the lead is broken by ' '
  EXPECT_EQ(dec.flush(), "");
}

TEST(TokenizerDecode, ValidUtf8Repair) {
  std::string out;
  EXPECT_EQ(unicode::append_valid_utf8("a\xC3\xA9z", true, &out), 4u);
  EXPECT_EQ(out, "a\xC3\xA9z");
  out.clear();
  EXPECT_EQ(unicode::append_valid_utf8("a\xE2\x82", true, &out), 1u);  // held back
  EXPECT_EQ(out, "a");
  out.clear();
  // An overlong '/', a surrogate and a code point above U+10FFFF.
  unicode::append_valid_utf8("\xC0\xAF\xED\xA0\x80\xF4\x90\x80\x80", false, &out);
  std::string expected;
  for (int i = 0; i < 9; ++i) expected += "\xEF\xBF\xBD";  // one per byte: none starts a valid sequence
  EXPECT_EQ(out, expected);
}

// ---------------------------------------------------------------------------
// Pieces of the BPE pipeline.

std::vector<std::string> words(std::string_view text, PreTokenizer kind) {
  std::vector<std::string> out;
  for (const std::string& w : pretokenize(text, kind)) {
    std::string bytes;  // undo the byte mapping to compare readable text
    for (size_t pos = 0; pos < w.size();)
      bytes.push_back(static_cast<char>(unicode::cpt_to_byte(unicode::decode_one(w, &pos))));
    out.push_back(bytes);
  }
  return out;
}

using Words = std::vector<std::string>;

TEST(BpePreTokenizer, Llama3) {
  EXPECT_EQ(words("Hello world", PreTokenizer::kLlama3), (Words{"Hello", " world"}));
  EXPECT_EQ(words("I'VE 12345 ok", PreTokenizer::kLlama3), (Words{"I", "'VE", " ", "123", "45", " ok"}));
  EXPECT_EQ(words("a  \n\n  b", PreTokenizer::kLlama3), (Words{"a", "  \n\n", " ", " b"}));
  EXPECT_EQ(words("x...!\n\ny   ", PreTokenizer::kLlama3), (Words{"x", "...!\n\n", "y", "   "}));
  EXPECT_EQ(words("(нещо)", PreTokenizer::kLlama3), (Words{"(нещо", ")"}));
  EXPECT_EQ(words("", PreTokenizer::kLlama3), Words{});
}

TEST(BpePreTokenizer, Gpt2AndDefault) {
  EXPECT_EQ(words("Hello  world's", PreTokenizer::kGpt2), (Words{"Hello", " ", " world", "'s"}));
  EXPECT_EQ(words("I'VE", PreTokenizer::kGpt2), (Words{"I", "'", "VE"}));  // case-sensitive
  EXPECT_EQ(words("a+b=12345,x", PreTokenizer::kDefault), (Words{"a", "+", "b", "=", "123", "45", ",", "x"}));
}

TEST(BpePreTokenizer, Names) {
  EXPECT_EQ(parse_pre_tokenizer("llama-bpe"), PreTokenizer::kLlama3);
  EXPECT_EQ(parse_pre_tokenizer("llama3"), PreTokenizer::kLlama3);
  EXPECT_EQ(parse_pre_tokenizer("gpt-2"), PreTokenizer::kGpt2);
  EXPECT_EQ(parse_pre_tokenizer("default"), PreTokenizer::kDefault);
  EXPECT_EQ(parse_pre_tokenizer("qwen2"), std::nullopt);
}

TEST(Unicode, ByteMappingIsABijection) {
  for (int b = 0; b < 256; ++b)
    EXPECT_EQ(unicode::cpt_to_byte(unicode::byte_to_cpt(static_cast<uint8_t>(b))), b);
  EXPECT_EQ(unicode::byte_to_cpt(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(unicode::byte_to_cpt('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(unicode::byte_to_cpt('A'), static_cast<uint32_t>('A'));
  EXPECT_EQ(unicode::cpt_to_byte(0x4E00), -1);
}

TEST(Unicode, LenientDecodeLikeLlamaCpp) {
  EXPECT_EQ(unicode::decode(std::string{'a', '\xFF', 'b'}), (std::vector<uint32_t>{'a', 0xFFFD, 'b'}));
  EXPECT_EQ(unicode::decode("\xE2\x82"), (std::vector<uint32_t>{0xFFFD, 0xFFFD}));
  EXPECT_EQ(unicode::decode("\xE2\x82\xAC"), (std::vector<uint32_t>{0x20AC}));
  EXPECT_TRUE(unicode::flags(0x0439).letter());  // й
  EXPECT_TRUE(unicode::flags(0x0663).number());  // Arabic-Indic three
  EXPECT_TRUE(unicode::flags(0x3000).whitespace);
  EXPECT_FALSE(unicode::flags(0x1F999).letter());
}

// A hand-made vocabulary pins the merge order: lowest rank first, and on a
// tie the leftmost pair.
TEST(BpeMerges, RankOrder) {
  Vocab v;
  v.kind = TokenizerKind::kBpe;
  v.pre = "gpt-2";
  v.tokens = {"a", "b", "c", "ab", "bc", "abc", "aa", "aaa"};
  v.merges = {"b c", "a b", "a bc", "a a", "aa a"};
  v.add_bos = false;
  const Tokenizer tok(std::move(v));
  EXPECT_EQ(tok.encode("abc", false), ids_of({5}));  // b+c first, then a+bc
  EXPECT_EQ(tok.encode("ab", false), ids_of({3}));
  EXPECT_EQ(tok.encode("aaaa", false), ids_of({6, 6}));  // leftmost a+a, then the next pair
  EXPECT_EQ(tok.encode("aaa", false), ids_of({7}));
  EXPECT_EQ(tok.encode("abd", false), ids_of({3}));  // 'd' has no token and no byte token: dropped
}

// ---------------------------------------------------------------------------
// llama2.c tokenizer.bin.

TEST(Llama2cVocab, MatchesTheGgufVocabulary) {
  const Vocab bin = load_llama2c_vocab(kTok512, 512);
  const Vocab& gguf = stories().vocab();
  EXPECT_EQ(bin.tokens, gguf.tokens);
  EXPECT_EQ(bin.scores, gguf.scores);
  EXPECT_EQ(bin.types, gguf.types);
  EXPECT_EQ(bin.bos, 1);
  EXPECT_EQ(bin.eos, 2);
  EXPECT_EQ(bin.unk, 0);

  const Tokenizer tok(bin);
  const std::vector<std::string> sentences = {
      "Once upon a time",
      "Once upon a time, there was a little girl named Lily. She loved to play outside.",
      "\"Can I have the red ball?\" asked Tom.\n\nMom said yes!",
      "  two leading spaces, a tab\tand émojis 🦙🚀",
      "",
  };
  for (const std::string& s : sentences) {
    EXPECT_EQ(tok.encode(s, true), stories().encode(s, true)) << s;
    EXPECT_EQ(tok.decode(tok.encode(s, true)), s);
  }
  for (const Case& c : read_cases(kSpmVocab))
    EXPECT_EQ(tok.encode(c.text, false), stories().encode(c.text, false));
  EXPECT_EQ(tok.encode("Once upon a time", true), ids_of({1, 403, 407, 261, 378}));
}

TEST(Llama2cVocab, RejectsBrokenFiles) {
  const TempDir dir;
  const std::string good = read_file(kTok512);
  for (size_t len :
       {size_t{0}, size_t{3}, size_t{4}, size_t{9}, size_t{12}, good.size() / 2, good.size() - 1}) {
    const std::string path = dir.file("cut_" + std::to_string(len) + ".bin");
    write_file(path, std::string_view(good).substr(0, len));
    EXPECT_THROW(load_llama2c_vocab(path, 512), Error) << "truncated to " << len;
  }
  EXPECT_THROW(load_llama2c_vocab(kTok512, 513), Error);  // more tokens than the file holds
  EXPECT_THROW(load_llama2c_vocab(kTok512, 0), Error);
  EXPECT_THROW(load_llama2c_vocab(kTok512, -5), Error);
  EXPECT_THROW(load_llama2c_vocab(dir.file("missing.bin"), 512), Error);

  std::string negative = good;  // token 0's length field set to -1
  const int32_t minus_one = -1;
  std::memcpy(negative.data() + 8, &minus_one, 4);
  write_file(dir.file("negative.bin"), negative);
  EXPECT_THROW(load_llama2c_vocab(dir.file("negative.bin"), 512), Error);

  const std::string garbage(4096, '\xA5');
  write_file(dir.file("garbage.bin"), garbage);
  EXPECT_THROW(load_llama2c_vocab(dir.file("garbage.bin"), 512), Error);
}

// ---------------------------------------------------------------------------
// GGUF metadata errors.

std::string write_vocab_gguf(const TempDir& dir, const std::string& name,
                             const std::function<void(gguf::Writer&)>& edit) {
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "b", "▁a"});
  w.set_float32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3});
  w.set_int32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1});
  edit(w);
  const std::string path = dir.file(name);
  w.write(path);
  return path;
}

std::string load_error(const std::string& path) {
  try {
    load_vocab(gguf::Reader::open(path));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GgufVocab, LoadsASmallVocabulary) {
  const TempDir dir;
  const Vocab v = load_vocab(gguf::Reader::open(write_vocab_gguf(dir, "ok.gguf", [](gguf::Writer&) {})));
  EXPECT_EQ(v.size(), 6);
  EXPECT_EQ(v.bos, 1);  // llama.cpp's SPM defaults
  EXPECT_EQ(v.eos, 2);
  const Tokenizer tok(v);
  EXPECT_EQ(tok.encode("a", true), ids_of({1, 5}));
}

TEST(GgufVocab, RejectsBadMetadata) {
  const TempDir dir;
  struct Bad {
    std::string name;
    std::function<void(gguf::Writer&)> edit;
    std::string message;  // part of the error
  };
  const std::vector<Bad> bads = {
      {"bert.gguf", [](gguf::Writer& w) { w.set_string("tokenizer.ggml.model", "bert"); }, "'bert'"},
      {"scores.gguf",
       [](gguf::Writer& w) {
         w.set_float32_array("tokenizer.ggml.scores", {0, 0});
       },
       "tokenizer.ggml.scores"},
      {"types.gguf", [](gguf::Writer& w) { w.set_int32_array("tokenizer.ggml.token_type", {1}); },
       "tokenizer.ggml.token_type"},
      {"dup.gguf",
       [](gguf::Writer& w) {
         w.set_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "a", "b"});
       },
       "twice"},
      {"nomerges.gguf", [](gguf::Writer& w) { w.set_string("tokenizer.ggml.model", "gpt2"); },
       "tokenizer.ggml.merges"},
      {"pre.gguf",
       [](gguf::Writer& w) {
         w.set_string("tokenizer.ggml.model", "gpt2");
         w.set_string("tokenizer.ggml.pre", "qwen2");
       },
       "'qwen2'"},
      {"nobos.gguf",
       [](gguf::Writer& w) {
         w.set_string_array("tokenizer.ggml.tokens", {"x"});
         w.set_float32_array("tokenizer.ggml.scores", {0});
         w.set_int32_array("tokenizer.ggml.token_type", {1});
       },
       "bos"},
  };
  for (const Bad& b : bads) {
    const std::string path = write_vocab_gguf(dir, b.name, b.edit);
    const std::string err = load_error(path);
    EXPECT_NE(err.find(path), std::string::npos) << b.name << ": " << err;
    EXPECT_NE(err.find(b.message), std::string::npos) << b.name << ": " << err;
  }

  // No tokenizer.ggml.model at all.
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  const std::string path = dir.file("nomodel.gguf");
  w.write(path);
  EXPECT_NE(load_error(path).find("tokenizer.ggml.model"), std::string::npos);
}

TEST(TokenizerValidation, RejectsInconsistentVocab) {
  Vocab v;
  v.tokens = {"a", "b", "a"};
  v.add_bos = false;
  EXPECT_THROW(Tokenizer{v}, Error);  // duplicate
  v.tokens = {"a", "b"};
  v.add_bos = true;
  v.bos = -1;
  EXPECT_THROW(Tokenizer{v}, Error);  // add_bos without bos
  v.bos = 7;
  EXPECT_THROW(Tokenizer{v}, Error);  // out of range
  v.bos = 0;
  v.scores = {1.0f};
  EXPECT_THROW(Tokenizer{v}, Error);  // scores of another length
  v.scores.clear();
  v.kind = TokenizerKind::kBpe;
  v.pre = "unknown";
  EXPECT_THROW(Tokenizer{v}, Error);
}

}  // namespace
}  // namespace chorus
