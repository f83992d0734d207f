// Command-line flags that chorus run and chorus serve share: adapters
// (--lora NAME=PATH[:SCALE]) and DS2D (--ds2d[=auto] and its options), and
// their translation into RuntimeOptions.
#pragma once

#include <CLI/CLI.hpp>
#include <exception>
#include <set>
#include <string>
#include <vector>

#include "chorus/chorus.h"
#include "util/error.h"

namespace chorus::tools {

// NAME=PATH[:SCALE]; a trailing ":number" is the scale, so paths may hold ':'.
inline AdapterFile parse_lora(const std::string& spec) {
  const size_t eq = spec.find('=');
  check(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--lora",
        "'{}' is not NAME=PATH[:SCALE]", spec);
  AdapterFile f{spec.substr(0, eq), spec.substr(eq + 1), 1.0f};
  check(f.name != "none", "--lora", "'none' is reserved (it means the base model)");
  const size_t colon = f.path.rfind(':');
  if (colon != std::string::npos) {
    const std::string tail = f.path.substr(colon + 1);
    size_t used = 0;
    float scale = 0;
    try {
      scale = std::stof(tail, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == tail.size() && used > 0) {
      f.scale = scale;
      f.path.resize(colon);
    }
  }
  return f;
}

// Every --lora, with distinct names.
inline std::vector<AdapterFile> parse_loras(const std::vector<std::string>& specs) {
  std::vector<AdapterFile> files;
  std::set<std::string> names;
  for (const std::string& spec : specs) {
    files.push_back(parse_lora(spec));
    check(names.insert(files.back().name).second, "--lora", "two adapters are named '{}'", files.back().name);
  }
  return files;
}

// --kv-type (RuntimeOptions::kv_type, EngineOptions::kv_type), for every
// command that runs the model.
inline void add_kv_type_flag(CLI::App* cmd, std::string* kv_type) {
  cmd->add_option("--kv-type", *kv_type,
                  "KV cache type: f16 (half the bytes; each value rounded once when stored) or f32")
      ->capture_default_str();
}

struct Ds2dFlags {
  std::string mode;  // "" (off), "on" or "auto" (plain decoding, with a warning, when it does not fit)
  std::vector<std::string> forecasts;
  int budget = 32;
  float row_cost = -1.0f;
  bool no_ngram = false;
};

inline void add_ds2d_flags(CLI::App* cmd, Ds2dFlags* f) {
  cmd->add_flag("--ds2d{on}", f->mode,
                "Self-speculative decoding (DS2D): draft token trees from forecast embeddings and "
                "n-grams, verify them in the next pass; output is identical to plain decoding. "
                "--ds2d=auto decodes plainly (with a warning) when the forecasts or options do not fit");
  cmd->add_option("--ds2d-forecast", f->forecasts,
                  "Forecast GGUF (chorus forecast derive / train/forecast_train.py); repeat for "
                  "per-adapter files. Default: the files found beside the model and each "
                  "adapter (models/README.md); 'none': n-gram drafts only");
  cmd->add_option("--ds2d-budget", f->budget, "DS2D rows per stream and step")->capture_default_str();
  cmd->add_option("--ds2d-row-cost", f->row_cost,
                  "Cost of one more row relative to a 1-row step (-1: measure; 0: always fill "
                  "the budget)")
      ->capture_default_str();
  cmd->add_flag("--ds2d-no-ngram", f->no_ngram, "No n-gram branches in DS2D trees");
}

inline SpeculationOptions speculation_options(const Ds2dFlags& f) {
  check(f.mode.empty() || f.mode == "on" || f.mode == "auto", "--ds2d", "must be on or auto, got '{}'", f.mode);
  check(!f.mode.empty() || f.forecasts.empty(), "--ds2d-forecast", "needs --ds2d");
  SpeculationOptions s;
  s.enabled = !f.mode.empty();
  s.fallback_to_plain = f.mode == "auto";
  const bool none = f.forecasts.size() == 1 && f.forecasts[0] == "none";
  s.forecasts = none ? std::vector<std::string>{} : f.forecasts;
  s.find_forecasts = !none;
  s.budget = f.budget;
  s.row_cost = f.row_cost;
  s.ngram = !f.no_ngram;
  return s;
}

}  // namespace chorus::tools
