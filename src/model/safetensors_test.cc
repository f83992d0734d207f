// The safetensors reader against files of our writer and hand-made headers:
// round trips, and every malformed header or truncation is an Error.
#include "model/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "test_util/error_of.h"
#include "util/error.h"
#include "util/half.h"

namespace chorus {
namespace {

using ::testing::HasSubstr;

using test_util::error_of;

// An image with `header` as its JSON and `data_bytes` zero bytes of data.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  return error_of([&] { SafetensorsFile::parse(bytes, "bad.safetensors"); });
}

SafetensorsWriter sample_writer() {
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  const std::vector<float> a{1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, 65504.0f};
  w.add_f32("a", {2, 3}, a);
  w.add_f16("b", {3, 2}, a);
  std::vector<uint8_t> bf(a.size() * 2);
  for (size_t i = 0; i < a.size(); ++i) {
    const uint16_t h = f32_to_bf16(a[i]);
    std::memcpy(bf.data() + 2 * i, &h, 2);
  }
  w.add("c", "BF16", {6}, bf);
  w.add("empty", "F32", {0, 4}, {});
  const int64_t ids[2] = {7, -1};
  w.add("ids", "I64", {2}, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ids), 16));
  return w;
}

TEST(Safetensors, RoundTripInMemory) {
  const std::vector<uint8_t> bytes = sample_writer().serialize();
  EXPECT_EQ((bytes[0] | bytes[1] << 8) % 8, 0) << "header padded to 8 bytes";
  const SafetensorsFile f = SafetensorsFile::parse(bytes, "mem");
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.metadata().at("format"), "pt");

  const SafetensorsTensor* a = f.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, "F32");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->n_elements, 6);
  EXPECT_EQ(a->n_bytes, 24u);
  EXPECT_EQ(f.read_f32(*a), (std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, 65504.0f}));

  const std::vector<float> b = f.read_f32(*f.find("b"));
  EXPECT_EQ(b[1], -2.5f);
  EXPECT_EQ(b[4], f16_to_f32(f32_to_f16(1e-3f)));
  const std::vector<float> c = f.read_f32(*f.find("c"));
  EXPECT_EQ(c[2], 3.25f);
  EXPECT_EQ(c[5], bf16_to_f32(f32_to_bf16(65504.0f)));
  EXPECT_EQ(f.find("empty")->n_elements, 0);
  EXPECT_TRUE(f.read_f32(*f.find("empty")).empty());
  EXPECT_EQ(f.find("missing"), nullptr);

  // Tensors come in data order, back to back.
  size_t offset = 0;
  for (const auto& t : f.tensors()) {
    EXPECT_EQ(t.offset, offset) << t.name;
    offset += t.n_bytes;
  }
  EXPECT_EQ(f.data_offset() + offset, bytes.size());
}

TEST(Safetensors, RoundTripThroughAFile) {
  const std::string path =
      ::testing::TempDir() + "/st_roundtrip_" + std::to_string(::getpid()) + ".safetensors";
  sample_writer().write(path);
  {
    const SafetensorsFile f = SafetensorsFile::open(path);
    EXPECT_EQ(f.path(), path);
    EXPECT_EQ(f.read_f32(*f.find("a"))[2], 3.25f);
  }
  std::filesystem::remove(path);
}

TEST(Safetensors, OtherDtypesAreRejectedWhenReadNamingTheTensor) {
  const std::vector<uint8_t> bytes = sample_writer().serialize();
  const SafetensorsFile f = SafetensorsFile::parse(bytes, "x.safetensors");
  const std::string e = error_of([&] { f.read_f32(*f.find("ids")); });
  EXPECT_THAT(e, HasSubstr("x.safetensors"));
  EXPECT_THAT(e, HasSubstr("'ids'"));
  EXPECT_THAT(e, HasSubstr("I64"));
}

TEST(Safetensors, WriterRejectsMisuse) {
  SafetensorsWriter w;
  const float v[2] = {1, 2};
  EXPECT_THAT(error_of([&] { w.add_f32("x", {3}, v); }), HasSubstr("x"));
  EXPECT_THAT(error_of([&] { w.add("x", "Q4", {2}, {}); }), HasSubstr("Q4"));
  w.add_f32("x", {2}, v);
  EXPECT_THAT(error_of([&] { w.add_f32("x", {2}, v); }), HasSubstr("duplicate"));
  EXPECT_THAT(error_of([&] { w.write("/nonexistent-dir/x.safetensors"); }),
              HasSubstr("/nonexistent-dir/x.safetensors"));
}

TEST(Safetensors, EmptyHeaderIsAValidEmptyFile) {
  const SafetensorsFile f = SafetensorsFile::parse(image("{}", 0));
  EXPECT_TRUE(f.tensors().empty());
}

struct BadCase {
  const char* what;
  std::string header;
  size_t data_bytes;
  const char* message;  // a fragment the error must contain
};

TEST(Safetensors, MalformedHeadersAreErrors) {
  const std::vector<BadCase> cases = {
      {"not json", "{\"a\": ", 0, "not valid JSON"},
      {"json array", "[1, 2]", 0, "not a JSON object"},
      {"entry not an object", R"({"t": 5})", 0, "'t'"},
      {"missing dtype", R"({"t": {"shape": [1], "data_offsets": [0, 4]}})", 4, "dtype"},
      {"unknown dtype", R"({"t": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}})", 4, "Q4"},
      {"negative dim", R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
       "shape"},
      {"float dim", R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4,
       "shape"},
      {"missing shape", R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})", 4, "shape"},
      {"missing offsets", R"({"t": {"dtype": "F32", "shape": [1]}})", 4, "data_offsets"},
      {"three offsets", R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})", 4,
       "data_offsets"},
      {"reversed offsets", R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4,
       "end before"},
      {"byte count", R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", 4,
       "needs 8"},
      {"overflowing shape",
       R"({"t": {"dtype": "F32", "shape": [4611686018427387904, 4611686018427387904], "data_offsets": [0, 0]}})",
       0, "too many elements"},
      {"empty by a zero dim despite huge others",
       R"({"t": {"dtype": "F32", "shape": [4611686018427387904, 0, 4611686018427387904], "data_offsets": [0, 4]}})",
       4, "needs 0"},
      {"element count times size overflows",
       R"({"t": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0,
       "too many elements"},
      {"huge offsets",
       R"({"t": {"dtype": "U8", "shape": [1], "data_offsets": [18446744073709551614, 18446744073709551615]}})",
       0, "'t'"},
      {"past the end", R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
       "past the end"},
      {"gap",
       R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
       12, "gap"},
      {"overlap",
       R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
       8, "overlaps"},
      {"first tensor not at 0", R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
       8, "gap"},
      {"trailing bytes", R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8,
       "after the last tensor"},
      {"metadata not an object", R"({"__metadata__": [1]})", 0, "__metadata__"},
      {"metadata value not a string", R"({"__metadata__": {"k": 1}})", 0, "'k'"},
  };
  for (const BadCase& c : cases) {
    const std::string e = parse_error(image(c.header, c.data_bytes));
    EXPECT_THAT(e, HasSubstr("bad.safetensors")) << c.what;
    EXPECT_THAT(e, HasSubstr(c.message)) << c.what;
  }
}

TEST(Safetensors, BadLengthPrefixesAreErrors) {
  EXPECT_THAT(parse_error({1, 2, 3}), HasSubstr("too short"));
  std::vector<uint8_t> bytes = image("{}", 0);
  bytes[0] = 200;  // header longer than the file
  EXPECT_THAT(parse_error(bytes), HasSubstr("past the end of the file"));
  bytes = image("{}", 0);
  bytes[7] = 0x80;  // 2^63
  EXPECT_THAT(parse_error(bytes), HasSubstr("absurd"));
}

TEST(Safetensors, TensorErrorsNameTheTensor) {
  const std::string e = parse_error(
      image(R"({"lora_B": {"dtype": "F32", "shape": [3], "data_offsets": [0, 4]}})", 4));
  EXPECT_THAT(e, HasSubstr("bad.safetensors: tensor 'lora_B'"));
}

TEST(Safetensors, EveryTruncatedPrefixIsRejected) {
  const std::vector<uint8_t> bytes = sample_writer().serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    EXPECT_THAT(parse_error(prefix), HasSubstr("bad.safetensors")) << "prefix of " << n << " bytes";
  }
}

}  // namespace
}  // namespace chorus
