// The message of the chorus::Error a call throws, for tests that check
// what a bad input is told.
#pragma once

#include <string>

#include "util/error.h"

namespace chorus::test_util {

// The message of the Error thrown by f, or "" when none is thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace chorus::test_util
