// Forecast files found by name; see forecast_find.h.
#include "model/forecast_find.h"

#include <filesystem>

#include "gguf/reader.h"

namespace chorus {

std::vector<std::string> forecast_candidates(const std::string& path) {
  const std::filesystem::path p(path);
  // A directory (a PEFT adapter) is named as a whole: x/dog/ -> x/dog.forecast.gguf.
  const std::filesystem::path named = p.has_filename() ? p : p.parent_path();
  const std::filesystem::path dir = named.parent_path();
  const std::string stem = named.stem().string();
  std::vector<std::string> out;
  for (const char* suffix : {".forecast-lora.gguf", ".forecast.gguf", ".forecast-derived.gguf"}) {
    out.push_back((dir / (stem + suffix)).string());
  }
  return out;
}

std::string find_forecast(const std::string& path) {
  for (const std::string& candidate : forecast_candidates(path)) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(candidate, ec)) continue;
    const gguf::Reader r = gguf::Reader::open(candidate);
    if (r.find_string("general.type").value_or("") == "forecast") return candidate;
  }
  return "";
}

}  // namespace chorus
