// Tests of the GGUF reader: the stories260K model shipped in models/, and
// hand-built images, valid and broken, which must all end in either a parsed
// file or a chorus::Error that says what is wrong.
#include "gguf/reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "util/error.h"

namespace chorus::gguf {
namespace {

// Checks that an error message contains `sub`, printing it otherwise.
#define EXPECT_HAS(message, sub)                                     \
  do {                                                               \
    const std::string m_ = (message);                                \
    EXPECT_NE(m_.find(sub), std::string::npos) << "message: " << m_; \
  } while (0)

const std::string kStories = std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf";

// Builds GGUF images byte by byte, so tests can write what the writer never
// would.
class Bytes {
 public:
  Bytes& u8(uint8_t v) { return raw(&v, 1); }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    raw("GGUF", 4);
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  Bytes& kv_str(const std::string& key, const std::string& v) { return str(key).u32(8).str(v); }
  Bytes& tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(size_t alignment = 32) {
    while (b_.size() % alignment != 0) b_.push_back(0);
    return *this;
  }
  Bytes& fill(size_t n, uint8_t v = 0) {
    b_.insert(b_.end(), n, v);
    return *this;
  }
  Bytes& raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
    return *this;
  }
  size_t size() const { return b_.size(); }
  const std::vector<uint8_t>& data() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// A small valid file: two keys, an f32 [4, 2] tensor and a q8_0 [32] tensor.
Bytes small_file() {
  Bytes b;
  b.header(2, 2).kv_str("general.architecture", "llama").kv_u32("llama.block_count", 3);
  b.tensor("a", {4, 2}, 0, 0).tensor("b", {32}, 8, 32);
  b.pad();
  for (int i = 0; i < 8; ++i) b.f32(static_cast<float>(i) + 0.5f);
  b.pad();
  const uint16_t d = 0x3C00;  // 1.0
  b.raw(&d, 2);
  for (int j = 0; j < 32; ++j) b.u8(static_cast<uint8_t>(j));
  return b;
}

Reader parse(const Bytes& b) { return Reader::parse(b.data(), "test.gguf"); }

// Parses and returns the error message ("" when parsing succeeded).
std::string parse_error(const Bytes& b) {
  try {
    parse(b);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Reader, Stories260K) {
  const Reader r = Reader::open(kStories);
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.alignment(), 32u);
  EXPECT_EQ(r.file_size(), 1185376u);
  EXPECT_EQ(r.data_offset(), 14176u);
  EXPECT_EQ(r.metadata().size(), 19u);
  EXPECT_EQ(r.metadata()[0].first, "tokenizer.ggml.tokens");
  EXPECT_EQ(r.get_string("general.architecture"), "llama");
  EXPECT_EQ(r.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(r.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(r.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(r.get_uint("tokenizer.ggml.padding_token_id"), 4294967295u);
  EXPECT_FLOAT_EQ(static_cast<float>(r.get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(r.get_float("llama.context_length"), 2048.0);  // integers read as numbers too

  const auto& tokens = r.get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(r.get_float_array("tokenizer.ggml.scores").size(), 512u);
  const std::vector<int64_t> types = r.get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(types.size(), 512u);
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(types[3], 6);
  EXPECT_EQ(r.find("tokenizer.ggml.tokens")->array_size(), 512u);
  EXPECT_EQ(r.find("tokenizer.ggml.tokens")->to_string(2), "[\"<unk>\", \"<s>\", ... 510 more]");
  EXPECT_EQ(r.find("llama.attention.layer_norm_rms_epsilon")->to_string(), "1e-05");

  ASSERT_EQ(r.tensors().size(), 48u);
  const TensorInfo& emb = r.tensor("token_embd.weight");
  EXPECT_EQ(emb.dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb.type, TensorType::kF32);
  EXPECT_EQ(emb.cols(), 64);
  EXPECT_EQ(emb.rows(), 512);
  EXPECT_EQ(emb.n_elements, 64 * 512);
  EXPECT_EQ(emb.n_bytes, 64u * 512u * 4u);
  EXPECT_EQ(emb.offset, 0u);
  const TensorInfo& down = r.tensor("blk.4.ffn_down.weight");
  EXPECT_EQ(down.dims, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(down.offset, 1082880u);
  const TensorInfo& norm = r.tensor("blk.4.ffn_norm.weight");
  EXPECT_EQ(norm.dims, (std::vector<int64_t>{64}));
  EXPECT_EQ(norm.rows(), 1);
  EXPECT_EQ(norm.data + norm.n_bytes, emb.data - r.data_offset() + r.file_size());  // last tensor ends the file
  EXPECT_EQ(r.find_tensor("nope"), nullptr);
  EXPECT_THROW(r.tensor("nope"), Error);
}

TEST(Reader, Stories260KTypedGetterErrors) {
  const Reader r = Reader::open(kStories);
  EXPECT_FALSE(r.has("general.alignment"));
  EXPECT_FALSE(r.find_uint("general.alignment").has_value());
  EXPECT_EQ(r.find_string("general.name"), "llama");
  try {
    r.get_string("llama.block_count");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "stories260K.gguf");
    EXPECT_HAS(std::string(e.what()), "key 'llama.block_count' is uint32, expected a string");
  }
  try {
    r.get_uint("llama.missing");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "key 'llama.missing' is missing");
  }
  EXPECT_THROW(r.get_bool("general.architecture"), Error);
  EXPECT_THROW(r.find_float("general.architecture"), Error);
  EXPECT_THROW(r.get_string_array("tokenizer.ggml.scores"), Error);
  EXPECT_THROW(r.get_int_array("tokenizer.ggml.scores"), Error);
  EXPECT_THROW(r.get_float_array("general.name"), Error);
}

TEST(Reader, NonexistentPath) {
  try {
    Reader::open("/nonexistent/dir/model.gguf");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), "/nonexistent/dir/model.gguf");
  }
}

TEST(Reader, SmallFile) {
  const Bytes b = small_file();
  const Reader r = parse(b);
  EXPECT_EQ(r.path(), "test.gguf");
  ASSERT_EQ(r.tensors().size(), 2u);
  const TensorInfo& a = r.tensor("a");
  EXPECT_EQ(a.n_bytes, 32u);
  float first;
  std::memcpy(&first, a.data, 4);
  EXPECT_EQ(first, 0.5f);
  const TensorInfo& q = r.tensor("b");
  EXPECT_EQ(q.type, TensorType::kQ8_0);
  EXPECT_EQ(q.n_bytes, 34u);
  EXPECT_EQ(q.data[2 + 31], 31);
  EXPECT_EQ(q.data + q.n_bytes, b.data().data() + b.size());
}

TEST(Reader, EveryTruncationThrows) {
  const Bytes b = small_file();
  for (size_t n = 0; n < b.size(); ++n) {
    const std::vector<uint8_t> prefix(b.data().begin(), b.data().begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(Reader::parse(prefix, "cut.gguf"), Error) << "prefix of " << n << " bytes";
  }
}

TEST(Reader, ByteFlipsThrowOnlyErrors) {
  // Every single-byte change either still parses or throws Error; nothing
  // else escapes (checked for crashes under the sanitizers too).
  const Bytes b = small_file();
  for (size_t i = 0; i < b.size(); ++i) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0x01}, uint8_t{0x7F}, uint8_t{0x80}, uint8_t{0xFF}}) {
      std::vector<uint8_t> m = b.data();
      m[i] = v;
      try {
        Reader::parse(m, "flip.gguf");
      } catch (const Error&) {
      }
    }
  }
}

TEST(Reader, BadMagicAndVersions) {
  Bytes wrong;
  wrong.raw("GGML", 4).u32(3).u64(0).u64(0);
  EXPECT_HAS(parse_error(wrong), "not a GGUF file");
  EXPECT_HAS(parse_error(Bytes().raw("GG", 2)), "too small");

  EXPECT_HAS(parse_error(Bytes().header(0, 0, 1)), "GGUF v1 is not supported");
  EXPECT_HAS(parse_error(Bytes().header(0, 0, 4)), "unsupported GGUF version 4");
  EXPECT_HAS(parse_error(Bytes().header(0, 0, 0x03000000)), "big-endian");
  EXPECT_EQ(parse_error(Bytes().header(0, 0, 2)), "");
  EXPECT_EQ(parse(Bytes().header(0, 0, 2)).version(), 2u);
}

TEST(Reader, ErrorsNameFileAndPlace) {
  Bytes b;
  b.header(0, 1).str("general.name").u32(8).u64(1000).raw("abc", 3);
  const std::string msg = parse_error(b);
  EXPECT_HAS(msg, "test.gguf: key 'general.name'");
  EXPECT_HAS(msg, "offset 48");  // 24 header + 8 + 12 key + 4 type
  EXPECT_HAS(msg, "1000");
}

TEST(Reader, HugeCountsAndLengthsAreRejectedCheaply) {
  const uint64_t huge = std::numeric_limits<uint64_t>::max();
  EXPECT_HAS(parse_error(Bytes().header(huge, 0)), "tensor count");
  EXPECT_HAS(parse_error(Bytes().header(0, huge)), "metadata key count");
  EXPECT_HAS(parse_error(Bytes().header(1ull << 40, 0).fill(64)), "tensor count");
  // Key length.
  EXPECT_HAS(parse_error(Bytes().header(0, 1).u64(huge).fill(16)), "key name");
  EXPECT_HAS(parse_error(Bytes().header(0, 1).u64(1ull << 62).fill(16)), "claims");
  // String value length.
  EXPECT_HAS(parse_error(Bytes().header(0, 1).str("k").u32(8).u64(huge - 3)), "key 'k'");
  // Array counts: each element needs at least one byte (eight for strings).
  for (uint32_t elem : {0u, 7u, 8u, 10u, 12u}) {
    Bytes b;
    b.header(0, 1).str("k").u32(9).u32(elem).u64(1ull << 61).fill(64);
    SCOPED_TRACE(elem);
    EXPECT_HAS(parse_error(b), "array length");
  }
  Bytes strings;  // 2 strings claimed, 8 bytes left: cannot fit
  strings.header(0, 1).str("k").u32(9).u32(8).u64(2).u64(0);
  EXPECT_HAS(parse_error(strings), "array length");
  // Tensor name length.
  EXPECT_HAS(parse_error(Bytes().header(1, 0).u64(huge).fill(40)), "tensor #0");
}

TEST(Reader, ValueTypeErrors) {
  EXPECT_HAS(parse_error(Bytes().header(0, 1).str("k").u32(13).u32(0)), "unknown value type 13");
  EXPECT_HAS(parse_error(Bytes().header(0, 1).str("k").u32(9).u32(9).u64(1)), "arrays of arrays");
  EXPECT_HAS(parse_error(Bytes().header(0, 1).str("k").u32(9).u32(99).u64(0)), "unknown array element type 99");
  Bytes dup;
  dup.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  EXPECT_HAS(parse_error(dup), "key 'k': duplicate key");

  Bytes control;  // names from the file cannot break the one-line message
  control.header(0, 2).kv_u32("a\nb", 1).kv_u32("a\nb", 2);
  const std::string msg = parse_error(control);
  EXPECT_HAS(msg, "key 'a\\x0ab': duplicate key");
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  Bytes long_name;
  long_name.header(0, 1).str(std::string(5000, 'k')).u32(99);
  EXPECT_HAS(parse_error(long_name), "...(5000 bytes)': unknown value type 99");
  EXPECT_LT(parse_error(long_name).size(), 300u);
}

TEST(Reader, EmptyArraysAndAllScalarTypes) {
  Bytes b;
  b.header(0, 14);
  b.str("u8").u32(0).u8(200);
  b.str("i8").u32(1).u8(0xFE);
  b.str("u16").u32(2).u8(0x34).u8(0x12);
  b.str("i16").u32(3).u8(0xFF).u8(0xFF);
  b.str("u32").u32(4).u32(4000000000u);
  b.str("i32").u32(5).u32(static_cast<uint32_t>(-7));
  b.str("f32").u32(6).f32(1.5f);
  b.str("bool").u32(7).u8(1);
  b.str("str").u32(8).str("h\xC3\xA9llo");
  b.str("u64").u32(10).u64(~0ull);
  b.str("i64").u32(11).u64(static_cast<uint64_t>(-5ll));
  const double pi = 3.25;
  b.str("f64").u32(12).raw(&pi, 8);
  b.str("empty").u32(9).u32(8).u64(0);
  b.str("bools").u32(9).u32(7).u64(3).u8(1).u8(0).u8(2);
  const Reader r = parse(b);
  EXPECT_EQ(r.get_uint("u8"), 200u);
  EXPECT_EQ(r.get_int("i8"), -2);
  EXPECT_EQ(r.get_uint("u16"), 0x1234u);
  EXPECT_EQ(r.get_int("i16"), -1);
  EXPECT_EQ(r.get_uint("u32"), 4000000000u);
  EXPECT_EQ(r.get_int("i32"), -7);
  EXPECT_EQ(r.get_float("f32"), 1.5);
  EXPECT_TRUE(r.get_bool("bool"));
  EXPECT_EQ(r.get_string("str"), "h\xC3\xA9llo");
  EXPECT_EQ(r.get_uint("u64"), ~0ull);
  EXPECT_EQ(r.get_int("i64"), -5);
  EXPECT_EQ(r.get_float("f64"), 3.25);
  EXPECT_TRUE(r.get_string_array("empty").empty());
  EXPECT_EQ(r.find("empty")->to_string(), "[]");
  EXPECT_EQ(r.find("bools")->to_string(), "[true, false, true]");
  EXPECT_EQ(r.find("i8")->type, ValueType::kInt8);
  // Conversions that do not fit throw.
  EXPECT_THROW(r.get_uint("i8"), Error);
  EXPECT_THROW(r.get_int("u64"), Error);
  EXPECT_THROW(r.get_uint("f32"), Error);
  EXPECT_THROW(r.get_bool("u8"), Error);
}

TEST(Reader, TensorDirectoryErrors) {
  auto one_tensor = [](std::vector<uint64_t> dims, uint32_t type, uint64_t offset, size_t data = 64) {
    Bytes b;
    b.header(1, 0).tensor("w", std::move(dims), type, offset).pad().fill(data);
    return parse_error(b);
  };
  EXPECT_EQ(one_tensor({16}, 0, 0), "");
  EXPECT_HAS(one_tensor({16}, 5, 0), "tensor 'w': unknown tensor type code 5");
  EXPECT_HAS(one_tensor({16}, 1000, 0), "unknown tensor type code 1000");
  EXPECT_HAS(one_tensor({16}, 0, 4), "not a multiple of the alignment 32");
  EXPECT_HAS(one_tensor({16}, 0, 32), "runs past the end");
  EXPECT_HAS(one_tensor({16}, 0, 1ull << 63), "runs past the end");
  EXPECT_HAS(one_tensor({17}, 0, 0), "runs past the end");  // 68 bytes > 64
  EXPECT_HAS(one_tensor({16}, 2, 0), "row length 16 is not a multiple of the q4_0 block size 32");
  EXPECT_HAS(one_tensor({0}, 0, 0), "dimension 0 is 0");
  EXPECT_HAS(one_tensor({4, 0}, 0, 0), "dimension 1 is 0");
  EXPECT_HAS(one_tensor({1ull << 40, 1ull << 40}, 0, 0), "overflows");
  EXPECT_HAS(one_tensor({~0ull}, 0, 0), "overflows");
  EXPECT_HAS(one_tensor({1ull << 62}, 0, 0), "more bytes than the file holds");
  EXPECT_HAS(one_tensor({256, 1ull << 50}, 12, 0), "more bytes than the file holds");

  Bytes no_dims;
  no_dims.header(1, 0).str("w").u32(0).u32(0).u64(0).pad().fill(32);
  EXPECT_HAS(parse_error(no_dims), "has 0 dimensions");
  Bytes five_dims;
  five_dims.header(1, 0).tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad().fill(32);
  EXPECT_HAS(parse_error(five_dims), "has 5 dimensions");

  Bytes dup;
  dup.header(2, 0).tensor("w", {8}, 0, 0).tensor("w", {8}, 0, 32).pad().fill(64);
  EXPECT_HAS(parse_error(dup), "tensor 'w': duplicate tensor name");

  Bytes apart;  // 32 bytes each
  apart.header(2, 0).tensor("x", {8}, 0, 0).tensor("y", {8}, 0, 32).pad().fill(64);
  EXPECT_EQ(parse_error(apart), "");
  Bytes reversed;  // directory order does not have to follow data order
  reversed.header(2, 0).tensor("x", {8}, 0, 32).tensor("y", {8}, 0, 0).pad().fill(64);
  EXPECT_EQ(parse_error(reversed), "");
  Bytes overlapping;  // x covers [0, 96), y starts at 64
  overlapping.header(2, 0).tensor("x", {24}, 0, 0).tensor("y", {16}, 0, 64).pad().fill(160);
  EXPECT_HAS(parse_error(overlapping), "tensor 'y': data at offset 64 overlaps tensor 'x'");
}

TEST(Reader, DataSectionPastEndOfFile) {
  Bytes b;
  b.header(1, 0).tensor("w", {1}, 0, 0);  // no padding, no data
  EXPECT_HAS(parse_error(b), "past the end of the file");
}

TEST(Reader, Alignment) {
  Bytes b;
  b.header(1, 1).kv_u32("general.alignment", 64).tensor("w", {4}, 0, 64);
  b.pad(64).fill(64).f32(1.0f).f32(2.0f).f32(3.0f).f32(4.0f);
  const Reader r = parse(b);
  EXPECT_EQ(r.alignment(), 64u);
  EXPECT_EQ(r.data_offset() % 64, 0u);
  float v;
  std::memcpy(&v, r.tensor("w").data + 12, 4);
  EXPECT_EQ(v, 4.0f);

  EXPECT_HAS(parse_error(Bytes().header(0, 1).kv_u32("general.alignment", 48)), "not a power of two");
  EXPECT_HAS(parse_error(Bytes().header(0, 1).kv_u32("general.alignment", 0)), "not a power of two");
  EXPECT_HAS(parse_error(Bytes().header(0, 1).kv_str("general.alignment", "32")), "general.alignment: is string");
}

}  // namespace
}  // namespace chorus::gguf
