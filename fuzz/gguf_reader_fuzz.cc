// libFuzzer target for the GGUF reader. Any input must either parse or end in
// chorus::Error; a parsed file is then used the way the model loader uses
// one: metadata rendered, every tensor's bytes read (ASan flags any read past
// the input) and the first block of each tensor of a supported type
// dequantized.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "gguf/types.h"
#include "util/error.h"

namespace {

// Runs `f`, which may reject its input only by throwing Error.
template <typename F>
void allow_error(F&& f) {
  try {
    f();
  } catch (const chorus::Error&) {
  }
}

// Typed getters on arbitrary keys: each either returns or throws Error.
void touch_getters(const chorus::gguf::Reader& r, std::string_view key) {
  allow_error([&] { (void)r.get_uint(key); });
  allow_error([&] { (void)r.get_int(key); });
  allow_error([&] { (void)r.get_float(key); });
  allow_error([&] { (void)r.get_bool(key); });
  allow_error([&] { (void)r.get_string(key); });
  allow_error([&] { (void)r.get_int_array(key); });
  allow_error([&] { (void)r.get_float_array(key); });
  allow_error([&] { (void)r.get_string_array(key); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace chorus::gguf;
  try {
    const Reader r = Reader::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
    for (const auto& [key, value] : r.metadata()) {
      (void)value.to_string();
      (void)value.array_size();
      touch_getters(r, key);
    }
    uint8_t sum = 0;
    std::vector<float> block;
    for (const TensorInfo& t : r.tensors()) {
      for (size_t i = 0; i < t.n_bytes; ++i) sum ^= t.data[i];
      (void)t.rows();
      const TypeTraits& traits = type_traits(t.type);
      if (!traits.supported) continue;
      block.resize(static_cast<size_t>(traits.block_size));
      dequantize_row(t.type, t.data, block.data(), traits.block_size);
    }
    volatile uint8_t sink = sum;
    (void)sink;
  } catch (const chorus::Error&) {
  }
  return 0;
}
