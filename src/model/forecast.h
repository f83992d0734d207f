// DS2D forecast embeddings: m vectors of the model's width that stand in for
// the not-yet-known tokens after a real one. Fed as a chain after a real row
// (forecast k at position p + k, parent the previous one), their logits
// propose the tokens at p + 2 .. p + m + 1 (docs/ARCHITECTURE.md, DS2D).
//
// They live in a small GGUF of our own, tied to one base model (and
// optionally to the adapter they were trained with), written by
// `chorus forecast derive` and by the PyTorch training tool alike:
//   general.architecture = "chorus-forecast", general.type = "forecast"
//   chorus.forecast.count (u32) = m, chorus.forecast.dim (u32) = model dim
//   chorus.forecast.base.n_layers (u32), chorus.forecast.base.n_vocab (u32)
//   chorus.forecast.base.fingerprint (string): forecast_fingerprint() below
//   chorus.forecast.adapter (string, may be empty), chorus.forecast.method
//   tensor forecast.embd, F32, GGUF dims [dim, m] (m rows of dim floats).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"

namespace chorus {

struct ForecastEmbeddings {
  std::string path;  // where it was loaded from ("" when built in memory)
  int count = 0;     // m
  int dim = 0;
  int base_n_layers = 0;
  int base_n_vocab = 0;
  std::string base_fingerprint;  // 16 lowercase hex digits
  std::string adapter;           // adapter it was trained with, or ""
  std::string method;            // "derived-mean", "trained", ...
  std::vector<float> embd;       // [count][dim]
  // Optional companion LoRA (chorus.forecast.lora, a path relative to this
  // file) applied to forecast rows only: on small models embeddings alone
  // barely forecast. Real rows never use it, so output stays lossless.
  std::string lora_path;  // resolved; "" for none
  // The engine adapter slot holding the companion LoRA once loaded
  // (load_forecast_lora in decode/ds2d.h); -1: forecast rows use the
  // stream's own adapter.
  int lora_slot = -1;

  // Forecast k = 1..count (k = 1 follows the real row directly).
  const float* row(int k) const { return embd.data() + static_cast<size_t>(k - 1) * dim; }
  float* row(int k) { return embd.data() + static_cast<size_t>(k - 1) * dim; }
};

// 64-bit FNV-1a over the model's output_norm weights as little-endian f32
// bytes (dim floats), as 16 lowercase hex digits: cheap, and different for
// any two trained models while identical across quantizations of one
// (norm weights stay f32 in every converter we know of).
std::string forecast_fingerprint(const Model& model);

// An empty set of `count` zero vectors tied to `base` (fills every header
// field; the caller fills embd and method).
ForecastEmbeddings make_forecast(const Model& base, int count);

// Reads and checks the file on its own (keys, types, tensor shape, finite
// values). Throws Error naming the file and the field at fault.
ForecastEmbeddings load_forecast(const std::string& path);
// The same, then validate_forecast against `base`.
ForecastEmbeddings load_forecast(const std::string& path, const Model& base);

// Throws Error (file and field) unless the forecasts fit `base`: dim,
// layers, vocabulary and fingerprint.
void validate_forecast(const ForecastEmbeddings& f, const Model& base);
// The shape checks only, for code that has a config but not the weights
// (the decode loop sees just the engine).
void validate_forecast_shape(const ForecastEmbeddings& f, const ModelConfig& base);

// Writes the file. Throws Error when the set is inconsistent or the path
// cannot be written.
void write_forecast(const std::string& path, const ForecastEmbeddings& f);

}  // namespace chorus
