// The --lora NAME=PATH[:SCALE] option of chorus run and chorus serve.
#pragma once

#include <exception>
#include <string>

#include "chorus/chorus.h"
#include "util/error.h"

namespace chorus::tools {

// NAME=PATH[:SCALE]; a trailing ":number" is the scale, so paths may hold ':'.
inline AdapterFile parse_lora(const std::string& spec) {
  const size_t eq = spec.find('=');
  check(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--lora",
        "'{}' is not NAME=PATH[:SCALE]", spec);
  AdapterFile f{spec.substr(0, eq), spec.substr(eq + 1), 1.0f};
  check(f.name != "none", "--lora", "'none' is reserved (it means the base model)");
  const size_t colon = f.path.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = f.path.substr(colon + 1);
    size_t used = 0;
    float scale = 0;
    try {
      scale = std::stof(tail, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == tail.size() && used > 0) {
      f.scale = scale;
      f.path.resize(colon);
    }
  }
  return f;
}

}  // namespace chorus::tools
