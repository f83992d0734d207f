// Forecast embedding files: round trip, the fingerprint, and every way a file
// can fail to fit a model or be broken.
#include "model/forecast.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/writer.h"
#include "test_util/error_of.h"
#include "util/error.h"

namespace chorus {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.gguf";

class ForecastFile : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(kModel);
    dir_ = fs::path(::testing::TempDir()) / ("chorus_forecast_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  ForecastEmbeddings sample(int count) const {
    ForecastEmbeddings f = make_forecast(*model_, count);
    for (size_t i = 0; i < f.embd.size(); ++i) f.embd[i] = 0.01f * static_cast<float>(i) - 1.0f;
    f.method = "test";
    f.adapter = "style";
    return f;
  }

  std::unique_ptr<Model> model_;
  fs::path dir_;
};

using test_util::error_of;

TEST_F(ForecastFile, RoundTrips) {
  const ForecastEmbeddings f = sample(4);
  const std::string path = file("f.gguf");
  write_forecast(path, f);
  const ForecastEmbeddings g = load_forecast(path, *model_);
  EXPECT_EQ(g.path, path);
  EXPECT_EQ(g.count, 4);
  EXPECT_EQ(g.dim, 64);
  EXPECT_EQ(g.base_n_layers, 5);
  EXPECT_EQ(g.base_n_vocab, 512);
  EXPECT_EQ(g.base_fingerprint, f.base_fingerprint);
  EXPECT_EQ(g.adapter, "style");
  EXPECT_EQ(g.method, "test");
  EXPECT_EQ(g.embd, f.embd);
  EXPECT_EQ(g.row(2)[0], f.embd[64]);
}

TEST_F(ForecastFile, FingerprintIsFnv1aOfTheOutputNorm) {
  const std::string fp = forecast_fingerprint(*model_);
  ASSERT_EQ(fp.size(), 16u);
  EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos);
  // An independent FNV-1a over the same bytes.
  const float* w = reinterpret_cast<const float*>(model_->weights.output_norm.data);
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(w);
  for (int i = 0; i < 64 * 4; ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  char expect[17];
  std::snprintf(expect, sizeof expect, "%016llx", static_cast<unsigned long long>(h));
  EXPECT_EQ(fp, expect);
  // The same model in llama2.c form has the same fingerprint.
  const auto bin = load_model(std::string(CHORUS_SOURCE_DIR) + "/models/stories260K.bin",
                              std::string(CHORUS_SOURCE_DIR) + "/models/tok512.bin");
  EXPECT_EQ(forecast_fingerprint(*bin), fp);
}

TEST_F(ForecastFile, RejectsEachMismatchWithTheBase) {
  struct Case {
    const char* name;
    void (*edit)(ForecastEmbeddings&);
    const char* field;
  };
  const Case cases[] = {
      {"dim",
       [](ForecastEmbeddings& f) {
         f.dim = 32;
         f.embd.resize(f.count * 32);
       },
       "chorus.forecast.dim = 32"},
      {"layers", [](ForecastEmbeddings& f) { f.base_n_layers = 6; },
       "chorus.forecast.base.n_layers = 6"},
      {"vocab", [](ForecastEmbeddings& f) { f.base_n_vocab = 32000; },
       "chorus.forecast.base.n_vocab = 32000"},
      {"fingerprint", [](ForecastEmbeddings& f) { f.base_fingerprint = "0123456789abcdef"; },
       "chorus.forecast.base.fingerprint = 0123456789abcdef"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ForecastEmbeddings f = sample(3);
    c.edit(f);
    const std::string path = file(std::string(c.name) + ".gguf");
    write_forecast(path, f);
    EXPECT_NO_THROW(load_forecast(path));  // fine on its own
    const std::string e = error_of([&] { load_forecast(path, *model_); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find(c.field), std::string::npos) << e;
  }
}

TEST_F(ForecastFile, RejectsTruncatedFiles) {
  const std::string path = file("full.gguf");
  write_forecast(path, sample(2));
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(bytes.size(), 512u);
  for (size_t n : {size_t{0}, size_t{3}, size_t{20}, size_t{100}, bytes.size() / 2,
                   bytes.size() - 4, bytes.size() - 1}) {
    SCOPED_TRACE(n);
    const std::string cut = file("cut.gguf");
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(n));
    const std::string e = error_of([&] { load_forecast(cut, *model_); });
    EXPECT_NE(e.find(cut), std::string::npos) << e;
  }
}

TEST_F(ForecastFile, RejectsMalformedContents) {
  // The model file itself is not a forecast file.
  EXPECT_NE(error_of([&] { load_forecast(kModel); }).find("general.architecture is 'llama'"),
            std::string::npos);

  auto write_with = [&](const std::string& name, auto&& edit) {
    const ForecastEmbeddings f = sample(2);
    gguf::Writer w;
    w.set_string("general.architecture", "chorus-forecast");
    w.set_string("general.type", "forecast");
    w.set_uint32("chorus.forecast.count", 2);
    w.set_uint32("chorus.forecast.dim", 64);
    w.set_uint32("chorus.forecast.base.n_layers", 5);
    w.set_uint32("chorus.forecast.base.n_vocab", 512);
    w.set_string("chorus.forecast.base.fingerprint", f.base_fingerprint);
    w.set_string("chorus.forecast.adapter", "");
    w.set_string("chorus.forecast.method", "x");
    std::vector<float> data = f.embd;
    std::vector<int64_t> dims = {64, 2};
    edit(w, data, dims);
    w.add_tensor("forecast.embd", gguf::TensorType::kF32, dims,
                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()),
                                          data.size() * sizeof(float)));
    const std::string path = file(name);
    w.write(path);
    return error_of([&] { load_forecast(path, *model_); });
  };
  using W = gguf::Writer;
  using V = std::vector<float>;
  using D = std::vector<int64_t>;
  EXPECT_EQ(write_with("ok.gguf", [](W&, V&, D&) {}), "");
  EXPECT_NE(write_with("type.gguf", [](W& w, V&, D&) { w.set_string("general.type", "model"); })
                .find("general.type is 'model'"),
            std::string::npos);
  EXPECT_NE(
      write_with("count0.gguf", [](W& w, V&, D&) { w.set_uint32("chorus.forecast.count", 0); })
          .find("chorus.forecast.count' = 0 is out of range"),
      std::string::npos);
  EXPECT_NE(write_with("count.gguf", [](W& w, V&, D&) { w.set_uint32("chorus.forecast.count", 3); })
                .find("expected [64, 3]"),
            std::string::npos);
  EXPECT_NE(write_with("dims.gguf",
                       [](W&, V& v, D& d) {
                         d = {32, 4};
                       })
                .find("tensor 'forecast.embd' has dims 32, 4"),
            std::string::npos);
  EXPECT_NE(write_with("nan.gguf", [](W&, V& v, D&) { v[70] = NAN; })
                .find("forecast 2, element 6 is not finite"),
            std::string::npos);
  EXPECT_NE(
      write_with("fp.gguf",
                 [](W& w, V&, D&) { w.set_string("chorus.forecast.base.fingerprint", "XYZ"); })
          .find("not 16 lowercase hex digits"),
      std::string::npos);
  EXPECT_NE(write_with("missing.gguf",
                       [](W& w, V&, D&) {
                         gguf::Writer fresh;
                         fresh.set_string("general.architecture", "chorus-forecast");
                         fresh.set_string("general.type", "forecast");
                         w = fresh;
                       })
                .find("key 'chorus.forecast.count' is missing"),
            std::string::npos);
}

TEST_F(ForecastFile, WriteRejectsInconsistentSets) {
  ForecastEmbeddings f = sample(2);
  f.embd.pop_back();
  EXPECT_NE(error_of([&] { write_forecast(file("x.gguf"), f); }).find("expected count 2 x dim 64"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_forecast(*model_, 0); }).find("forecast count"), std::string::npos);
}

}  // namespace
}  // namespace chorus
