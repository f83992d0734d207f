// Forecast embedding files; see forecast.h for the format.
#include "model/forecast.h"

#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "gguf/quants.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "util/error.h"

namespace chorus {
namespace {

constexpr const char* kArchitecture = "chorus-forecast";
constexpr const char* kType = "forecast";
constexpr const char* kTensor = "forecast.embd";
// More forecasts than this cannot pay off inside any sane row budget; the
// bound keeps a corrupt count from sizing allocations.
constexpr uint64_t kMaxCount = 256;
constexpr uint64_t kMaxDim = 1 << 16;

std::string where_of(const ForecastEmbeddings& f) {
  return f.path.empty() ? std::string("forecast embeddings") : f.path;
}

std::string hex64(uint64_t h) { return fmt::format("{:016x}", h); }

// A u32 metadata field in [lo, hi], as an int.
int read_count(const gguf::Reader& r, const char* key, uint64_t lo, uint64_t hi) {
  const uint64_t v = r.get_uint(key);
  check(v >= lo && v <= hi, r.path(), "key '{}' = {} is out of range [{}, {}]", key, v, lo, hi);
  return static_cast<int>(v);
}

}  // namespace

std::string forecast_fingerprint(const Model& model) {
  const WeightView& w = model.weights.output_norm;
  const int dim = model.config.dim;
  check(w.data != nullptr && w.rows * w.cols == dim, model.path,
        "output_norm has {} x {} elements, expected {}", w.rows, w.cols, dim);
  std::vector<float> v(dim);
  gguf::dequantize_row(w.type, w.data, v.data(), dim);
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis
  for (float x : v) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    for (int b = 0; b < 4; ++b) {  // little-endian bytes, whatever the host
      h ^= (bits >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ull;  // FNV prime
    }
  }
  return hex64(h);
}

ForecastEmbeddings make_forecast(const Model& base, int count) {
  check(count >= 1 && static_cast<uint64_t>(count) <= kMaxCount, "forecast count",
        "must be 1..{}, got {}", kMaxCount, count);
  ForecastEmbeddings f;
  f.count = count;
  f.dim = base.config.dim;
  f.base_n_layers = base.config.n_layers;
  f.base_n_vocab = base.config.n_vocab;
  f.base_fingerprint = forecast_fingerprint(base);
  f.embd.assign(static_cast<size_t>(count) * f.dim, 0.0f);
  return f;
}

ForecastEmbeddings load_forecast(const std::string& path) {
  const gguf::Reader r = gguf::Reader::open(path);
  const std::string arch = r.get_string("general.architecture");
  check(arch == kArchitecture, path,
        "general.architecture is '{}', expected '{}' (not a forecast embedding file)", arch,
        kArchitecture);
  const std::string type = r.get_string("general.type");
  check(type == kType, path, "general.type is '{}', expected '{}'", type, kType);

  ForecastEmbeddings f;
  f.path = path;
  f.count = read_count(r, "chorus.forecast.count", 1, kMaxCount);
  f.dim = read_count(r, "chorus.forecast.dim", 1, kMaxDim);
  f.base_n_layers = read_count(r, "chorus.forecast.base.n_layers", 1, 1 << 16);
  f.base_n_vocab = read_count(r, "chorus.forecast.base.n_vocab", 1, 1u << 31);
  f.base_fingerprint = r.get_string("chorus.forecast.base.fingerprint");
  check(f.base_fingerprint.size() == 16 &&
            f.base_fingerprint.find_first_not_of("0123456789abcdef") == std::string::npos,
        path, "key 'chorus.forecast.base.fingerprint' = '{}' is not 16 lowercase hex digits",
        f.base_fingerprint);
  f.adapter = r.get_string("chorus.forecast.adapter");
  f.method = r.get_string("chorus.forecast.method");
  if (const auto lora = r.find_string("chorus.forecast.lora"); lora && !lora->empty()) {
    const std::filesystem::path rel(*lora);
    f.lora_path = rel.is_absolute() ? rel.string()
                                    : (std::filesystem::path(path).parent_path() / rel).string();
  }

  const gguf::TensorInfo& t = r.tensor(kTensor);
  check(t.type == gguf::TensorType::kF32, path, "tensor '{}' is {}, expected F32", kTensor,
        gguf::type_name(t.type));
  check(t.dims.size() == 2 && t.dims[0] == f.dim && t.dims[1] == f.count, path,
        "tensor '{}' has dims {}, expected [{}, {}] (chorus.forecast.dim, .count)", kTensor,
        fmt::join(t.dims, ", "), f.dim, f.count);
  f.embd.resize(static_cast<size_t>(f.count) * f.dim);
  std::memcpy(f.embd.data(), t.data, f.embd.size() * sizeof(float));
  for (size_t i = 0; i < f.embd.size(); ++i) {
    check(std::isfinite(f.embd[i]), path, "tensor '{}': forecast {}, element {} is not finite",
          kTensor, i / f.dim + 1, i % f.dim);
  }
  return f;
}

ForecastEmbeddings load_forecast(const std::string& path, const Model& base) {
  ForecastEmbeddings f = load_forecast(path);
  validate_forecast(f, base);
  return f;
}

void validate_forecast_shape(const ForecastEmbeddings& f, const ModelConfig& base) {
  const std::string where = where_of(f);
  check(f.dim == base.dim, where,
        "chorus.forecast.dim = {} does not match the model's dim = {} (forecasts for another "
        "model)",
        f.dim, base.dim);
  check(f.base_n_layers == base.n_layers, where,
        "chorus.forecast.base.n_layers = {} does not match the model's {} layers", f.base_n_layers,
        base.n_layers);
  check(f.base_n_vocab == base.n_vocab, where,
        "chorus.forecast.base.n_vocab = {} does not match the model's vocabulary of {}",
        f.base_n_vocab, base.n_vocab);
  check(f.count >= 1 && f.embd.size() == static_cast<size_t>(f.count) * f.dim, where,
        "holds {} floats, expected count {} x dim {}", f.embd.size(), f.count, f.dim);
}

void validate_forecast(const ForecastEmbeddings& f, const Model& base) {
  validate_forecast_shape(f, base.config);
  const std::string fp = forecast_fingerprint(base);
  check(f.base_fingerprint == fp, where_of(f),
        "chorus.forecast.base.fingerprint = {} does not match the model's {} (forecasts made "
        "for another model)",
        f.base_fingerprint, fp);
}

void write_forecast(const std::string& path, const ForecastEmbeddings& f) {
  check(f.count >= 1 && static_cast<uint64_t>(f.count) <= kMaxCount, path,
        "forecast count must be 1..{}, got {}", kMaxCount, f.count);
  check(f.dim >= 1 && f.embd.size() == static_cast<size_t>(f.count) * f.dim, path,
        "holds {} floats, expected count {} x dim {}", f.embd.size(), f.count, f.dim);
  check(f.base_fingerprint.size() == 16, path, "base fingerprint '{}' is not 16 hex digits",
        f.base_fingerprint);
  gguf::Writer w;
  w.set_string("general.architecture", kArchitecture);
  w.set_string("general.type", kType);
  w.set_uint32("chorus.forecast.count", static_cast<uint32_t>(f.count));
  w.set_uint32("chorus.forecast.dim", static_cast<uint32_t>(f.dim));
  w.set_uint32("chorus.forecast.base.n_layers", static_cast<uint32_t>(f.base_n_layers));
  w.set_uint32("chorus.forecast.base.n_vocab", static_cast<uint32_t>(f.base_n_vocab));
  w.set_string("chorus.forecast.base.fingerprint", f.base_fingerprint);
  w.set_string("chorus.forecast.adapter", f.adapter);
  w.set_string("chorus.forecast.method", f.method);
  const auto* bytes = reinterpret_cast<const uint8_t*>(f.embd.data());
  w.add_tensor(kTensor, gguf::TensorType::kF32, {f.dim, f.count},
               std::span<const uint8_t>(bytes, f.embd.size() * sizeof(float)));
  w.write(path);
}

}  // namespace chorus
