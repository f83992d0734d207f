// libFuzzer target for the safetensors reader. Any input must either parse
// or end in chorus::Error; a parsed file is then used the way the PEFT loader
// uses one: every tensor's bytes read (ASan flags any read past the input)
// and each tensor converted to f32, which must succeed exactly for the
// readable dtypes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "model/safetensors.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using chorus::SafetensorsFile;
  try {
    const SafetensorsFile f = SafetensorsFile::parse(std::span<const uint8_t>(data, size), "fuzz");
    uint8_t sum = 0;
    for (const auto& t : f.tensors()) {
      for (size_t i = 0; i < t.n_bytes; ++i) sum ^= t.data[i];
      if (f.find(t.name) == nullptr) std::abort();  // every tensor is findable by name
      const bool readable = SafetensorsFile::readable_dtype(t.dtype);
      try {
        if (f.read_f32(t).size() != static_cast<size_t>(t.n_elements)) std::abort();
        if (!readable) std::abort();  // other dtypes must be refused
      } catch (const chorus::Error&) {
        if (readable) std::abort();
      }
    }
    for (const auto& [key, value] : f.metadata())
      sum ^= static_cast<uint8_t>(key.size() + value.size());
    volatile uint8_t sink = sum;
    (void)sink;
  } catch (const chorus::Error&) {
  }
  return 0;
}
