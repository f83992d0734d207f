// Tests of the GGUF writer: everything written reads back identically
// (every value type, several tensor types and shapes), the layout is the
// standard one, and failures to write name the path.
#include "gguf/writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "util/error.h"

namespace chorus::gguf {
namespace {

namespace fs = std::filesystem;

// A fresh path in the temp directory, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_((fs::temp_directory_path() / ("chorus_gguf_" + std::to_string(::getpid()) + "_" + name)).string()) {
    fs::remove(path_);
  }
  ~TempFile() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST(Writer, EveryValueTypeRoundTrips) {
  Writer w;
  w.set("u8", Value{ValueType::kUint8, ValueType::kUint32, uint64_t{255}});
  w.set("i8", Value{ValueType::kInt8, ValueType::kUint32, int64_t{-128}});
  w.set("u16", Value{ValueType::kUint16, ValueType::kUint32, uint64_t{65535}});
  w.set("i16", Value{ValueType::kInt16, ValueType::kUint32, int64_t{-32768}});
  w.set_uint32("u32", 4000000000u);
  w.set_int32("i32", -2000000000);
  w.set_float32("f32", 0.1f);
  w.set_bool("bool", true);
  w.set_string("str", "llama \"quoted\"\n");
  w.set_uint64("u64", std::numeric_limits<uint64_t>::max());
  w.set("i64", Value{ValueType::kInt64, ValueType::kUint32, std::numeric_limits<int64_t>::min()});
  w.set("f64", Value{ValueType::kFloat64, ValueType::kUint32, 0.1});
  w.set_string_array("strs", {"a", "", "\xE2\x96\x81the"});
  w.set_float32_array("f32s", {1.5f, -2.25f});
  w.set_int32_array("i32s", {-1, 0, 7});
  w.set("u8s", Value{ValueType::kArray, ValueType::kUint8, std::vector<uint64_t>{0, 1, 255}});
  w.set("i16s", Value{ValueType::kArray, ValueType::kInt16, std::vector<int64_t>{-32768, 32767}});
  w.set("u64s", Value{ValueType::kArray, ValueType::kUint64, std::vector<uint64_t>{1ull << 40}});
  w.set("f64s", Value{ValueType::kArray, ValueType::kFloat64, std::vector<double>{0.1, -1e300}});
  w.set("bools", Value{ValueType::kArray, ValueType::kBool, std::vector<bool>{true, false, true}});
  w.set("empty", Value{ValueType::kArray, ValueType::kInt32, std::vector<int64_t>{}});
  w.set_uint32("u32", 7);  // replaces, keeps its place

  TempFile f("values.gguf");
  w.write(f.path());
  const Reader r = Reader::open(f.path());
  EXPECT_EQ(r.version(), 3u);
  ASSERT_EQ(r.metadata().size(), 21u);
  EXPECT_EQ(r.metadata()[4].first, "u32");
  EXPECT_EQ(r.get_uint("u8"), 255u);
  EXPECT_EQ(r.find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(r.get_int("i8"), -128);
  EXPECT_EQ(r.find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(r.get_uint("u16"), 65535u);
  EXPECT_EQ(r.get_int("i16"), -32768);
  EXPECT_EQ(r.get_uint("u32"), 7u);
  EXPECT_EQ(r.find("u32")->type, ValueType::kUint32);
  EXPECT_EQ(r.get_int("i32"), -2000000000);
  EXPECT_EQ(r.get_float("f32"), static_cast<double>(0.1f));
  EXPECT_EQ(r.find("f32")->type, ValueType::kFloat32);
  EXPECT_TRUE(r.get_bool("bool"));
  EXPECT_EQ(r.get_string("str"), "llama \"quoted\"\n");
  EXPECT_EQ(r.find("str")->to_string(), "\"llama \\\"quoted\\\"\\n\"");
  EXPECT_EQ(r.get_uint("u64"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(r.get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.get_float("f64"), 0.1);
  EXPECT_EQ(r.find("f64")->type, ValueType::kFloat64);
  EXPECT_EQ(r.get_string_array("strs"), (std::vector<std::string>{"a", "", "\xE2\x96\x81the"}));
  EXPECT_EQ(r.get_float_array("f32s"), (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(r.find("f32s")->elem_type, ValueType::kFloat32);
  EXPECT_EQ(r.get_int_array("i32s"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(r.find("i32s")->elem_type, ValueType::kInt32);
  EXPECT_EQ(r.get_int_array("u8s"), (std::vector<int64_t>{0, 1, 255}));
  EXPECT_EQ(r.find("u8s")->elem_type, ValueType::kUint8);
  EXPECT_EQ(r.get_int_array("i16s"), (std::vector<int64_t>{-32768, 32767}));
  EXPECT_EQ(r.get_float_array("u64s"), (std::vector<double>{1099511627776.0}));
  EXPECT_EQ(r.get_float_array("f64s"), (std::vector<double>{0.1, -1e300}));
  EXPECT_EQ(std::get<std::vector<bool>>(r.find("bools")->data), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(r.find("empty")->array_size(), 0u);
  EXPECT_EQ(r.find("empty")->elem_type, ValueType::kInt32);
  EXPECT_TRUE(r.tensors().empty());
}

TEST(Writer, TensorsRoundTrip) {
  std::vector<float> emb(64 * 4);
  for (size_t i = 0; i < emb.size(); ++i) emb[i] = static_cast<float>(i) * 0.25f - 7.0f;
  std::vector<float> big(256 * 2);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::sin(static_cast<float>(i));

  Writer w;
  w.set_string("general.architecture", "llama");
  w.add_tensor("emb", TensorType::kF32, {64, 4}, [&](std::span<uint8_t> dst) {
    ASSERT_EQ(dst.size(), emb.size() * 4);
    std::memcpy(dst.data(), emb.data(), dst.size());
  });
  w.add_tensor("norm", TensorType::kF16, {3}, [](std::span<uint8_t> dst) {  // 6 bytes: padding follows
    const std::vector<float> v = {1.0f, 2.0f, -0.5f};
    quantize_row(TensorType::kF16, v.data(), dst.data(), 3);
  });
  w.add_tensor("q8", TensorType::kQ8_0, {64, 2},
               [&](std::span<uint8_t> dst) { quantize_row(TensorType::kQ8_0, emb.data(), dst.data(), 128); });
  w.add_tensor("q4k", TensorType::kQ4_K, {256, 2},
               [&](std::span<uint8_t> dst) { quantize_row(TensorType::kQ4_K, big.data(), dst.data(), 512); });
  const std::vector<uint8_t> raw = {1, 2, 3, 4, 5, 6, 7, 8};
  w.add_tensor("bf", TensorType::kBF16, {2, 1, 1, 2}, raw);

  std::vector<std::pair<size_t, size_t>> progress;
  TempFile f("tensors.gguf");
  w.write(f.path(), [&](size_t done, size_t total) { progress.emplace_back(done, total); });
  EXPECT_EQ(progress, (std::vector<std::pair<size_t, size_t>>{{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}}));

  const Reader r = Reader::open(f.path());
  ASSERT_EQ(r.tensors().size(), 5u);
  EXPECT_EQ(r.tensors()[0].name, "emb");
  EXPECT_EQ(r.tensors()[4].name, "bf");
  EXPECT_EQ(r.data_offset() % 32, 0u);
  for (const TensorInfo& t : r.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;

  const TensorInfo& e = r.tensor("emb");
  EXPECT_EQ(e.dims, (std::vector<int64_t>{64, 4}));
  std::vector<float> got(emb.size());
  dequantize_row(e.type, e.data, got.data(), e.n_elements);
  EXPECT_EQ(got, emb);

  const TensorInfo& n = r.tensor("norm");
  EXPECT_EQ(n.type, TensorType::kF16);
  EXPECT_EQ(n.offset, 1024u);
  float norm[3];
  dequantize_row(n.type, n.data, norm, 3);
  EXPECT_EQ(norm[0], 1.0f);
  EXPECT_EQ(norm[2], -0.5f);

  const TensorInfo& q8 = r.tensor("q8");
  EXPECT_EQ(q8.offset, 1024u + 32u);  // 6 bytes padded to 32
  EXPECT_EQ(q8.n_bytes, 4u * 34u);
  std::vector<float> q8v(128);
  dequantize_row(q8.type, q8.data, q8v.data(), 128);
  for (int i = 0; i < 128; ++i) EXPECT_NEAR(q8v[i], emb[i], 0.11f) << i;  // half a step of 24.75/127

  const TensorInfo& q4k = r.tensor("q4k");
  EXPECT_EQ(q4k.n_bytes, 2u * 144u);
  std::vector<float> q4v(512);
  dequantize_row(q4k.type, q4k.data, q4v.data(), 512);
  for (int i = 0; i < 512; ++i) EXPECT_NEAR(q4v[i], big[i], 0.15f) << i;

  const TensorInfo& bf = r.tensor("bf");
  EXPECT_EQ(bf.dims, (std::vector<int64_t>{2, 1, 1, 2}));
  EXPECT_EQ(bf.rows(), 2);
  EXPECT_EQ(std::vector<uint8_t>(bf.data, bf.data + bf.n_bytes), raw);
  // The file ends with the last tensor padded to the alignment.
  EXPECT_EQ(r.file_size(), r.data_offset() + bf.offset + 32);
}

TEST(Writer, HeaderLayout) {
  Writer w;
  w.set_uint32("k", 0x01020304u);
  w.add_tensor("t", TensorType::kF32, {8}, std::vector<uint8_t>(32, 0xAB));
  TempFile f("layout.gguf");
  w.write(f.path());
  const std::vector<uint8_t> b = read_all(f.path());
  const std::vector<uint8_t> expect_head = {
      'G', 'G', 'U', 'F', 3, 0, 0, 0,       // magic, version 3
      1,   0,   0,   0,   0, 0, 0, 0,       // 1 tensor
      1,   0,   0,   0,   0, 0, 0, 0,       // 1 key
      1,   0,   0,   0,   0, 0, 0, 0, 'k',  // key "k"
      4,   0,   0,   0,   4, 3, 2, 1,       // uint32 0x01020304
      1,   0,   0,   0,   0, 0, 0, 0, 't',  // tensor "t"
      1,   0,   0,   0,                     // 1 dim
      8,   0,   0,   0,   0, 0, 0, 0,       // 8
      0,   0,   0,   0,                     // f32
      0,   0,   0,   0,   0, 0, 0, 0,       // offset 0
  };
  ASSERT_EQ(b.size(), 96u + 32u);
  EXPECT_EQ(std::vector<uint8_t>(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(expect_head.size())), expect_head);
  for (size_t i = expect_head.size(); i < 96; ++i) EXPECT_EQ(b[i], 0) << i;  // padding
  for (size_t i = 96; i < b.size(); ++i) EXPECT_EQ(b[i], 0xAB) << i;
}

TEST(Writer, CustomAlignment) {
  Writer w;
  w.set_uint32("general.alignment", 64);
  w.add_tensor("a", TensorType::kF32, {1}, std::vector<uint8_t>(4, 1));
  w.add_tensor("b", TensorType::kF32, {1}, std::vector<uint8_t>(4, 2));
  TempFile f("align.gguf");
  w.write(f.path());
  const Reader r = Reader::open(f.path());
  EXPECT_EQ(r.alignment(), 64u);
  EXPECT_EQ(r.tensor("b").offset, 64u);
  EXPECT_EQ(r.tensor("b").data[0], 2);

  Writer bad;
  bad.set_uint32("general.alignment", 24);
  TempFile g("align_bad.gguf");
  EXPECT_THROW(bad.write(g.path()), Error);
}

TEST(Writer, CannotWriteNamesThePath) {
  Writer w;
  w.set_string("general.architecture", "llama");
  const std::string path = "/nonexistent_dir_for_chorus/out.gguf";
  try {
    w.write(path);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), path);
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
  }
}

TEST(Writer, DiskFullIsAnError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  Writer w;
  w.add_tensor("t", TensorType::kF32, {1 << 20}, [](std::span<uint8_t>) {});
  try {
    w.write("/dev/full");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), "/dev/full");
    EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists("/dev/full"));  // a device is never removed as a partial file
}

TEST(Writer, FailedFillRemovesThePartialFile) {
  Writer w;
  w.add_tensor("ok", TensorType::kF32, {8}, [](std::span<uint8_t>) {});
  w.add_tensor("bad", TensorType::kF32, {8}, [](std::span<uint8_t>) { throw Error("bad", "cannot make data"); });
  TempFile f("partial.gguf");
  EXPECT_THROW(w.write(f.path()), Error);
  EXPECT_FALSE(fs::exists(f.path()));
}

TEST(Writer, RejectsBadTensorsAndValues) {
  Writer w;
  auto none = [](std::span<uint8_t>) {};
  EXPECT_THROW(w.add_tensor("q", TensorType::kQ4_0, {16}, none), Error);  // not whole blocks
  EXPECT_THROW(w.add_tensor("z", TensorType::kF32, {4, 0}, none), Error);
  EXPECT_THROW(w.add_tensor("n", TensorType::kF32, {-4}, none), Error);
  EXPECT_THROW(w.add_tensor("d", TensorType::kF32, {}, none), Error);
  EXPECT_THROW(w.add_tensor("d5", TensorType::kF32, {1, 1, 1, 1, 1}, none), Error);
  EXPECT_THROW(w.add_tensor("u", static_cast<TensorType>(4), {32}, none), Error);
  EXPECT_THROW(w.add_tensor(std::string(64, 'x'), TensorType::kF32, {1}, none), Error);
  EXPECT_THROW(w.add_tensor("s", TensorType::kF32, {4}, std::vector<uint8_t>(15)), Error);
  EXPECT_THROW(w.add_tensor("huge", TensorType::kF32, {1ll << 62, 1ll << 62}, none), Error);
  w.add_tensor("t", TensorType::kF32, {4}, none);
  EXPECT_THROW(w.add_tensor("t", TensorType::kF32, {4}, none), Error);

  TempFile f("badvalue.gguf");
  Writer v1;
  v1.set("k", Value{ValueType::kUint8, ValueType::kUint32, uint64_t{256}});  // does not fit
  try {
    v1.write(f.path());
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.where(), f.path() + ": key 'k'");
    EXPECT_NE(std::string(e.what()).find("256 does not fit uint8"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(f.path()));
  Writer v2;
  v2.set("k", Value{ValueType::kString, ValueType::kUint32, uint64_t{1}});  // data does not match type
  EXPECT_THROW(v2.write(f.path()), Error);
  Writer v3;
  v3.set("k", Value{ValueType::kArray, ValueType::kFloat32, std::vector<int64_t>{1}});
  EXPECT_THROW(v3.write(f.path()), Error);
  Writer v4;
  v4.set("k", Value{ValueType::kArray, ValueType::kArray, std::vector<int64_t>{}});
  EXPECT_THROW(v4.write(f.path()), Error);
}

}  // namespace
}  // namespace chorus::gguf
