// GGUF value and tensor type codes (the on-disk numbering of GGUF v3) and the
// block geometry of each tensor type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chorus::gguf {

enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5,
  kFloat32 = 6, kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11,
  kFloat64 = 12,
};

enum class TensorType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ8_1 = 9, kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14,
  kQ8_K = 15, kBF16 = 30,
  // Known to GGUF but not dequantized by chorus (supported = false): listed so
  // that files holding them still open, show in `chorus info`, and fail with a
  // clear message only when such a tensor is actually used.
  kIQ2_XXS = 16, kIQ2_XS = 17, kIQ3_XXS = 18, kIQ1_S = 19, kIQ4_NL = 20,
  kIQ3_S = 21, kIQ2_S = 22, kIQ4_XS = 23, kI8 = 24, kI16 = 25, kI32 = 26,
  kI64 = 27, kF64 = 28, kIQ1_M = 29, kTQ1_0 = 34, kTQ2_0 = 35, kMXFP4 = 39,
};

struct TypeTraits {
  std::string_view name;  // as llama.cpp prints it: "f32", "q4_0", "q4_K", ...
  int64_t block_size;     // elements per block (1 for plain floats)
  size_t block_bytes;     // bytes per block
  bool supported;         // chorus can dequantize it
};

// "uint32", "string", "array", ...; "unknown" for codes outside the enum.
std::string_view value_type_name(ValueType type);

// Traits of a type code read from a file; nullptr when the code is unknown.
const TypeTraits* find_type_traits(uint32_t code);
// Traits of a known type (throws Error for unknown codes).
const TypeTraits& type_traits(TensorType type);
// Bytes of a row of n elements (n must be a multiple of the block size).
size_t row_bytes(TensorType type, int64_t n);
std::string_view type_name(TensorType type);
// Parses "q4_0", "Q4_K", "f16", ... (case-insensitive); throws Error if unknown.
TensorType parse_type_name(std::string_view name);

}  // namespace chorus::gguf
