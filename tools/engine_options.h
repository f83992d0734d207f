// Parsing of the engine options the tools share (--weights, --output-head).
#pragma once

#include <string>

#include "engine/engine.h"
#include "util/error.h"

namespace chorus::tools {

inline WeightFormat parse_weight_format(const std::string& s, const char* option) {
  if (s == "auto") return WeightFormat::kAuto;
  if (s == "int4") return WeightFormat::kInt4;
  if (s == "int8") return WeightFormat::kInt8;
  if (s == "f32") return WeightFormat::kF32;
  throw Error(option, "unknown format '" + s + "' (expected auto, int4, int8 or f32)");
}

}  // namespace chorus::tools
