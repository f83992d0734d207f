// The one error type of chorus: what failed and where (file, tensor, field).
// The CLI prints it on one line and exits non-zero; the C API turns it into a
// status code plus message.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace chorus {

class Error : public std::runtime_error {
 public:
  // `where` names the thing at fault (a path, "path: tensor 'x'", an option);
  // `what` says what is wrong with it.
  Error(std::string where, const std::string& what)
      : std::runtime_error(where.empty() ? what : where + ": " + what), where_(std::move(where)) {}
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

// Throws Error(where, formatted message) unless `cond` holds.
template <typename... Args>
inline void check(bool cond, const std::string& where, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw Error(where, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace chorus
