// A request the client got wrong: the handlers answer it with `status` and
// OpenAI's error body ({"error": {"message", "type", "param", "code"}}).
#pragma once

#include <string>

namespace chorus::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the offending field, "" when none
  std::string type = "invalid_request_error";
};

[[noreturn]] inline void bad_request(std::string param, std::string message, int status = 400) {
  throw ApiError{status, std::move(message), std::move(param)};
}

}  // namespace chorus::server
