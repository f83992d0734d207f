// Block geometry of every GGUF tensor type, as ggml defines it. The reader
// sizes and bounds-checks tensors with this table, so a wrong entry here
// would reject (or misread) real files.
#include "gguf/types.h"

#include <array>
#include <cctype>
#include <string>

#include "util/error.h"

namespace chorus::gguf {
namespace {

constexpr int64_t kQK = 32;    // elements per block of the legacy formats
constexpr int64_t kQKK = 256;  // elements per super-block of the K formats

struct Entry {
  uint32_t code;
  TypeTraits traits;
};

// Bytes per block follow ggml-common.h's block_* structs (sizes in comments
// are field by field).
constexpr Entry kEntries[] = {
    {0, {"f32", 1, 4, true}},
    {1, {"f16", 1, 2, true}},
    {2, {"q4_0", kQK, 2 + 16, true}},                   // d, qs[16]
    {3, {"q4_1", kQK, 2 + 2 + 16, true}},               // d, m, qs[16]
    {6, {"q5_0", kQK, 2 + 4 + 16, true}},               // d, qh[4], qs[16]
    {7, {"q5_1", kQK, 2 + 2 + 4 + 16, true}},           // d, m, qh[4], qs[16]
    {8, {"q8_0", kQK, 2 + 32, true}},                   // d, qs[32]
    {9, {"q8_1", kQK, 2 + 2 + 32, true}},               // d, s, qs[32]
    {10, {"q2_K", kQKK, 16 + 64 + 2 + 2, true}},        // scales, qs, d, dmin
    {11, {"q3_K", kQKK, 32 + 64 + 12 + 2, true}},       // hmask, qs, scales, d
    {12, {"q4_K", kQKK, 2 + 2 + 12 + 128, true}},       // d, dmin, scales, qs
    {13, {"q5_K", kQKK, 2 + 2 + 12 + 32 + 128, true}},  // d, dmin, scales, qh, qs
    {14, {"q6_K", kQKK, 128 + 64 + 16 + 2, true}},      // ql, qh, scales, d
    {15, {"q8_K", kQKK, 4 + 256 + 32, true}},           // f32 d, qs, bsums[16]
    {16, {"iq2_xxs", kQKK, 2 + 64, false}},
    {17, {"iq2_xs", kQKK, 2 + 64 + 8, false}},
    {18, {"iq3_xxs", kQKK, 2 + 96, false}},
    {19, {"iq1_s", kQKK, 2 + 32 + 16, false}},
    {20, {"iq4_nl", kQK, 2 + 16, false}},
    {21, {"iq3_s", kQKK, 2 + 64 + 8 + 32 + 4, false}},
    {22, {"iq2_s", kQKK, 2 + 64 + 8 + 8, false}},
    {23, {"iq4_xs", kQKK, 2 + 2 + 4 + 128, false}},
    {24, {"i8", 1, 1, false}},
    {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},
    {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},
    {29, {"iq1_m", kQKK, 32 + 16 + 8, false}},
    {30, {"bf16", 1, 2, true}},
    {34, {"tq1_0", kQKK, 48 + 4 + 2, false}},
    {35, {"tq2_0", kQKK, 64 + 2, false}},
    {39, {"mxfp4", kQK, 1 + 16, false}},
};

constexpr uint32_t kMaxCode = 39;

// Dense lookup by code; codes ggml retired (4, 5, 31..33, 36..38) stay empty.
constexpr std::array<const TypeTraits*, kMaxCode + 1> make_index() {
  std::array<const TypeTraits*, kMaxCode + 1> index{};
  for (const Entry& e : kEntries) index[e.code] = &e.traits;
  return index;
}

constexpr auto kIndex = make_index();

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "unknown";
}

const TypeTraits* find_type_traits(uint32_t code) { return code <= kMaxCode ? kIndex[code] : nullptr; }

const TypeTraits& type_traits(TensorType type) {
  const TypeTraits* t = find_type_traits(static_cast<uint32_t>(type));
  if (t == nullptr) {
    throw Error("", fmt::format("unknown tensor type code {}", static_cast<uint32_t>(type)));
  }
  return *t;
}

size_t row_bytes(TensorType type, int64_t n) {
  const TypeTraits& t = type_traits(type);
  check(n >= 0 && n % t.block_size == 0, "",
        "a row of {} elements is not a whole number of {} blocks ({} elements each)", n, t.name, t.block_size);
  const uint64_t blocks = static_cast<uint64_t>(n / t.block_size);
  uint64_t bytes = 0;
  check(!__builtin_mul_overflow(blocks, static_cast<uint64_t>(t.block_bytes), &bytes) && bytes <= SIZE_MAX, "",
        "a row of {} {} elements is too large", n, t.name);
  return static_cast<size_t>(bytes);
}

std::string_view type_name(TensorType type) {
  const TypeTraits* t = find_type_traits(static_cast<uint32_t>(type));
  return t != nullptr ? t->name : std::string_view("unknown");
}

TensorType parse_type_name(std::string_view name) {
  const std::string want = lower(name);
  for (const Entry& e : kEntries) {
    if (lower(e.traits.name) == want) return static_cast<TensorType>(e.code);
  }
  throw Error("", fmt::format("unknown tensor type '{}' (expected f32, f16, bf16, q8_0, q4_0, q4_1, q4_K, ...)", name));
}

}  // namespace chorus::gguf
