// Finding the DS2D forecast files that belong to a model or an adapter by
// their names, so `--ds2d` needs no `--ds2d-forecast` (models/README.md).
//
// Beside DIR/STEM.EXT (a model or adapter file; STEM is its name without the
// last extension), the candidates, best first, are
//   DIR/STEM.forecast-lora.gguf     trained embeddings with a forecast LoRA
//   DIR/STEM.forecast.gguf          trained embeddings (which may name a LoRA)
//   DIR/STEM.forecast-derived.gguf  training-free ones (chorus forecast derive)
// and the first that exists and is a forecast file is taken. A file under one
// of these names that is something else (an adapter's companion LoRA is
// often called STEM.forecast-lora.gguf) is passed over.
#pragma once

#include <string>
#include <vector>

namespace chorus {

// The candidate paths beside `path`, best first.
std::vector<std::string> forecast_candidates(const std::string& path);

// The first candidate that exists and holds general.type = forecast, or ""
// when none does. Throws Error naming the file when a candidate exists but
// is not a readable GGUF.
std::string find_forecast(const std::string& path);

}  // namespace chorus
