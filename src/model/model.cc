// Model entry points shared by the loaders: format detection and weight view
// geometry.
#include "model/model.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "gguf/types.h"
#include "util/error.h"

namespace chorus {

size_t WeightView::row_bytes() const { return gguf::row_bytes(type, cols); }

std::unique_ptr<Model> load_model(const std::string& path, const std::string& tokenizer_path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), path, "cannot open: {}", std::strerror(errno));
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return load_gguf_model(path);
  return load_llama2c_model(path, tokenizer_path);
}

}  // namespace chorus
