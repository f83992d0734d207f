// gguf::Value helpers: array length and the one-line rendering `chorus info`
// prints for each metadata key.
#include <fmt/format.h>

#include <string>
#include <type_traits>
#include <variant>

#include "gguf/reader.h"

namespace chorus::gguf {
namespace {

// Quotes a string and escapes what would break a one-line listing.
void append_quoted(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Float32 values are held as double; print them as the float they were so
// 1e-5f reads "1e-05", not "9.999999747378752e-06".
std::string format_float(double v, ValueType type) {
  if (type == ValueType::kFloat32) return fmt::format("{}", static_cast<float>(v));
  return fmt::format("{}", v);
}

template <typename T>
void append_item(std::string& out, const T& v, ValueType type) {
  if constexpr (std::is_same_v<T, std::string>) {
    append_quoted(out, v);
  } else if constexpr (std::is_same_v<T, double>) {
    out += format_float(v, type);
  } else if constexpr (std::is_same_v<T, bool>) {
    out += v ? "true" : "false";
  } else {
    out += fmt::format("{}", v);
  }
}

}  // namespace

size_t Value::array_size() const {
  return std::visit(
      [](const auto& v) -> size_t {
        using T = std::decay_t<decltype(v)>;
        if constexpr (requires { v.size(); } && !std::is_same_v<T, std::string>) {
          return v.size();
        } else {
          return 0;
        }
      },
      data);
}

std::string Value::to_string(size_t max_items) const {
  std::string out;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (requires { v.size(); } && !std::is_same_v<T, std::string>) {
          out += '[';
          const size_t shown = v.size() < max_items ? v.size() : max_items;
          for (size_t i = 0; i < shown; ++i) {
            if (i > 0) out += ", ";
            append_item(out, static_cast<typename T::value_type>(v[i]), elem_type);
          }
          if (shown < v.size()) out += fmt::format("{}... {} more", shown > 0 ? ", " : "", v.size() - shown);
          out += ']';
        } else {
          append_item(out, v, type);
        }
      },
      data);
  return out;
}

}  // namespace chorus::gguf
