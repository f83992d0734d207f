// The adapters a benchmark runs with: the --lora files given, else `count`
// random adapters of rank `rank` for the model (written as GGUF adapters to
// a temporary directory, then loaded through the same path as user files).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "model/lora.h"

namespace chorus::tools {

// alpha <= 0 means 4 x rank; adapter i has seed seed0 + i.
inline std::vector<LoraAdapter> bench_adapters(const std::vector<std::string>& files, const ModelConfig& c,
                                               int count, int rank, float alpha, uint64_t seed0) {
  std::vector<LoraAdapter> out;
  for (const std::string& path : files) out.push_back(load_lora(path, c));
  if (!out.empty() || rank == 0) return out;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("chorus-bench-lora-{}", ::getpid());
  std::filesystem::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    SyntheticLoraSpec spec;
    spec.rank = rank;
    spec.alpha = alpha > 0 ? alpha : 4.0f * rank;
    spec.seed = seed0 + i;
    const std::string path = (dir / fmt::format("adapter{}.gguf", i)).string();
    write_synthetic_lora_gguf(path, c, spec);
    out.push_back(load_lora(path, c));
  }
  std::filesystem::remove_all(dir);
  return out;
}

}  // namespace chorus::tools
