// How the KV cache stores keys and values: f16 (the default, half the bytes
// and half the memory traffic of attention) or f32. A value is rounded once,
// when its cell is written; attention then widens it exactly, so an f16
// cache gives the bits an f32 cache holding the same rounded values gives.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/half.h"

namespace chorus {

enum class KvType : uint8_t { kF32, kF16 };

inline std::string_view kv_type_name(KvType t) { return t == KvType::kF16 ? "f16" : "f32"; }

// "f16" or "f32" (options and flags); anything else is an Error naming `option`.
inline KvType parse_kv_type(std::string_view s, const char* option) {
  if (s == "f16") return KvType::kF16;
  if (s == "f32") return KvType::kF32;
  throw Error(option, "unknown KV cache type '" + std::string(s) + "' (expected f16 or f32)");
}

inline size_t kv_type_bytes(KvType t) { return t == KvType::kF16 ? 2 : 4; }

// The value a cache of type t holds for x (what attention reads back).
inline float kv_round(KvType t, float x) { return t == KvType::kF16 ? f16_to_f32(f32_to_f16(x)) : x; }

}  // namespace chorus
