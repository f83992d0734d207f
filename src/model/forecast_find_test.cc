// Forecast files found by name beside a model or an adapter: the order of
// preference, companion LoRAs passed over, broken candidates reported, and
// the bundled files.
#include "model/forecast_find.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_data/stories260k.h"
#include "test_util/error_of.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;
using test_util::error_of;

class ForecastFind : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("chorus_forecast_find_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = (dir_ / "m.gguf").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Copies a bundled file into the temp dir under `name`; returns its path.
  std::string put(const std::string& bundled, const std::string& name) const {
    const fs::path to = dir_ / name;
    fs::copy_file(test_data::source_path(bundled), to, fs::copy_options::overwrite_existing);
    return to.string();
  }

  fs::path dir_;
  std::string model_;
};

TEST_F(ForecastFind, CandidatesBesideTheFileBestFirst) {
  EXPECT_EQ(forecast_candidates("a/b/m.gguf"),
            (std::vector<std::string>{"a/b/m.forecast-lora.gguf", "a/b/m.forecast.gguf",
                                      "a/b/m.forecast-derived.gguf"}));
  EXPECT_EQ(forecast_candidates("m.bin")[1], "m.forecast.gguf");
  // A PEFT directory is named as a whole, with or without the slash.
  EXPECT_EQ(forecast_candidates("a/dog/")[1], "a/dog.forecast.gguf");
  EXPECT_EQ(forecast_candidates("a/dog")[1], "a/dog.forecast.gguf");
}

TEST_F(ForecastFind, PrefersTrainedLoraThenEmbeddingsThenDerived) {
  EXPECT_EQ(find_forecast(model_), "");
  const std::string derived = put("models/stories260K.forecast-derived.gguf", "m.forecast-derived.gguf");
  EXPECT_EQ(find_forecast(model_), derived);
  const std::string trained = put("models/stories260K.forecast.gguf", "m.forecast.gguf");
  EXPECT_EQ(find_forecast(model_), trained);
  const std::string lora = put("models/stories260K.forecast-lora.gguf", "m.forecast-lora.gguf");
  EXPECT_EQ(find_forecast(model_), lora);
}

TEST_F(ForecastFind, PassesOverACompanionLoraUnderAForecastName) {
  put("models/adapters/dog.forecast-lora.gguf", "m.forecast-lora.gguf");  // a LoRA adapter
  EXPECT_EQ(find_forecast(model_), "");
  const std::string trained = put("models/adapters/dog.forecast.gguf", "m.forecast.gguf");
  EXPECT_EQ(find_forecast(model_), trained);
}

TEST_F(ForecastFind, ABrokenCandidateIsAnErrorNamingIt) {
  const std::string bad = (dir_ / "m.forecast.gguf").string();
  std::ofstream(bad) << "not a gguf";
  EXPECT_NE(error_of([&] { find_forecast(model_); }).find(bad), std::string::npos);
}

TEST_F(ForecastFind, BundledFiles) {
  const std::string models = test_data::source_path("models");
  EXPECT_EQ(find_forecast(models + "/stories260K.gguf"), models + "/stories260K.forecast-lora.gguf");
  EXPECT_EQ(find_forecast(models + "/stories260K.bin"), models + "/stories260K.forecast-lora.gguf");
  for (const char* style : {"dog", "sad", "bird"}) {
    EXPECT_EQ(find_forecast(models + "/adapters/" + style + ".gguf"),
              models + "/adapters/" + style + ".forecast.gguf");
  }
}

}  // namespace
}  // namespace chorus
