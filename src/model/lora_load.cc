// Picking an adapter's file format from its path: a directory or a
// *.safetensors file is PEFT (adapter_config.json beside it), anything else
// must be a GGUF adapter.
#include <cstring>
#include <filesystem>
#include <string>

#include "gguf/reader.h"
#include "model/lora.h"
#include "model/lora_internal.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;

bool is_safetensors_name(const std::string& path) { return path.ends_with(".safetensors"); }

bool has_gguf_magic(const MappedFile& f) {
  return f.size() >= 4 && std::memcmp(f.data(), "GGUF", 4) == 0;
}

LoraAdapter read_any(const std::string& path, const ModelConfig* base) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return lora_internal::read_peft_dir(path, base);
  if (is_safetensors_name(path)) {
    const fs::path dir = fs::path(path).parent_path();
    return lora_internal::read_peft_lora((dir / "adapter_config.json").string(), path, base);
  }
  {
    const MappedFile f(path);  // throws Error naming the path when unreadable
    check(has_gguf_magic(f), path,
          "not a LoRA adapter: expected a PEFT directory, a .safetensors file or a GGUF adapter");
  }
  return lora_internal::read_gguf_lora(path, base);
}

}  // namespace

LoraAdapter load_lora(const std::string& path, const ModelConfig& base) {
  return read_any(path, &base);
}

LoraAdapter inspect_lora(const std::string& path) { return read_any(path, nullptr); }

bool is_lora_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec) || is_safetensors_name(path)) return true;
  try {
    const MappedFile f(path);
    if (!has_gguf_magic(f)) return false;
    const auto type = gguf::Reader::open(path).find_string("general.type");
    return type && *type == "adapter";
  } catch (const Error&) {
    return false;
  }
}

}  // namespace chorus
