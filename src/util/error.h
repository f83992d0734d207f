// The one error type of chorus (include/chorus/error.h, public) and check(),
// the internal shorthand that throws it. The CLI prints an Error on one line
// and exits non-zero; the C API turns it into a status code plus message.
#pragma once

#include <string>

#include <fmt/format.h>

#include "chorus/error.h"

namespace chorus {

// Throws Error(where, formatted message) unless `cond` holds.
template <typename... Args>
inline void check(bool cond, const std::string& where, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw Error(where, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace chorus
