// Tests of the tensor type table: ggml's block geometry, names and row sizes.
#include "gguf/types.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace chorus::gguf {
namespace {

struct Expected {
  TensorType type;
  const char* name;
  int64_t block_size;
  size_t block_bytes;
  bool supported;
};

// Sizes as ggml-common.h's static_asserts state them.
constexpr Expected kExpected[] = {
    {TensorType::kF32, "f32", 1, 4, true},          {TensorType::kF16, "f16", 1, 2, true},
    {TensorType::kBF16, "bf16", 1, 2, true},        {TensorType::kQ4_0, "q4_0", 32, 18, true},
    {TensorType::kQ4_1, "q4_1", 32, 20, true},      {TensorType::kQ5_0, "q5_0", 32, 22, true},
    {TensorType::kQ5_1, "q5_1", 32, 24, true},      {TensorType::kQ8_0, "q8_0", 32, 34, true},
    {TensorType::kQ8_1, "q8_1", 32, 36, true},      {TensorType::kQ2_K, "q2_K", 256, 84, true},
    {TensorType::kQ3_K, "q3_K", 256, 110, true},    {TensorType::kQ4_K, "q4_K", 256, 144, true},
    {TensorType::kQ5_K, "q5_K", 256, 176, true},    {TensorType::kQ6_K, "q6_K", 256, 210, true},
    {TensorType::kQ8_K, "q8_K", 256, 292, true},    {TensorType::kIQ4_XS, "iq4_xs", 256, 136, false},
    {TensorType::kIQ4_NL, "iq4_nl", 32, 18, false}, {TensorType::kIQ2_XXS, "iq2_xxs", 256, 66, false},
    {TensorType::kIQ3_S, "iq3_s", 256, 110, false}, {TensorType::kF64, "f64", 1, 8, false},
    {TensorType::kMXFP4, "mxfp4", 32, 17, false},
};

TEST(Types, Traits) {
  for (const Expected& e : kExpected) {
    const TypeTraits& t = type_traits(e.type);
    EXPECT_EQ(t.name, e.name);
    EXPECT_EQ(t.block_size, e.block_size) << e.name;
    EXPECT_EQ(t.block_bytes, e.block_bytes) << e.name;
    EXPECT_EQ(t.supported, e.supported) << e.name;
    EXPECT_EQ(find_type_traits(static_cast<uint32_t>(e.type)), &t);
    EXPECT_EQ(type_name(e.type), e.name);
  }
}

TEST(Types, UnknownCodes) {
  for (uint32_t code : {4u, 5u, 31u, 32u, 33u, 36u, 38u, 40u, 1000u, 0xFFFFFFFFu}) {
    EXPECT_EQ(find_type_traits(code), nullptr) << code;
    EXPECT_THROW(type_traits(static_cast<TensorType>(code)), Error) << code;
    EXPECT_EQ(type_name(static_cast<TensorType>(code)), "unknown");
  }
}

TEST(Types, RowBytes) {
  EXPECT_EQ(row_bytes(TensorType::kF32, 64), 256u);
  EXPECT_EQ(row_bytes(TensorType::kQ4_0, 4096), 128u * 18u);
  EXPECT_EQ(row_bytes(TensorType::kQ4_K, 4096), 16u * 144u);
  EXPECT_EQ(row_bytes(TensorType::kQ6_K, 0), 0u);
  EXPECT_THROW(row_bytes(TensorType::kQ4_K, 4000), Error);
  EXPECT_THROW(row_bytes(TensorType::kF32, -1), Error);
  EXPECT_THROW(row_bytes(TensorType::kF32, int64_t{1} << 62), Error);  // 2^64 bytes
}

TEST(Types, ParseNames) {
  EXPECT_EQ(parse_type_name("q4_K"), TensorType::kQ4_K);
  EXPECT_EQ(parse_type_name("Q4_K"), TensorType::kQ4_K);
  EXPECT_EQ(parse_type_name("q4_k"), TensorType::kQ4_K);
  EXPECT_EQ(parse_type_name("F16"), TensorType::kF16);
  EXPECT_EQ(parse_type_name("bf16"), TensorType::kBF16);
  EXPECT_EQ(parse_type_name("q8_0"), TensorType::kQ8_0);
  EXPECT_THROW(parse_type_name("q4"), Error);
  EXPECT_THROW(parse_type_name(""), Error);
}

TEST(Types, ValueTypeNames) {
  EXPECT_EQ(value_type_name(ValueType::kUint8), "uint8");
  EXPECT_EQ(value_type_name(ValueType::kFloat64), "float64");
  EXPECT_EQ(value_type_name(ValueType::kArray), "array");
  EXPECT_EQ(value_type_name(static_cast<ValueType>(13)), "unknown");
}

}  // namespace
}  // namespace chorus::gguf
