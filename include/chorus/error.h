// chorus::Error, the one exception type of chorus: what failed and where
// (a file, "path: tensor 'x'", an option or request field). Public so that
// C++ users can catch it and read where() without any internal header.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace chorus {

class Error : public std::runtime_error {
 public:
  // `where` names the thing at fault; `what` says what is wrong with it.
  // what() is "where: what" (just `what` when where is empty).
  Error(std::string where, const std::string& what)
      : std::runtime_error(where.empty() ? what : where + ": " + what), where_(std::move(where)) {}
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

}  // namespace chorus
